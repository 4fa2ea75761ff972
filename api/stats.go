package api

import "time"

// PathReleaseStats is where the cluster-wide counters of every release are
// read: GET, query window (seconds, 60 to 900, default 300), feature, and
// consistent=1 for a linearizable read.
const PathReleaseStats = Prefix + "/releases/stats"

// ClusterReleaseStats is one release's traffic as every agent of the
// cluster committed it. Percentiles come from merged latency sketches, so
// they are within 1% of the cluster's true percentiles.
type ClusterReleaseStats struct {
	Feature string `json:"feature"`
	Release string `json:"release"` // release id, e.g. support-answer@v2
	Version int    `json:"version"`
	Label   string `json:"label,omitempty"` // the label pointing at it now
	// Total counts every call since the release first served.
	Total Stats `json:"total"`
	// Window counts the calls of the whole minutes that overlap the last
	// WindowSeconds, so up to a minute more.
	Window Stats `json:"window"`
	// Updated is when the last batch that counted here was cut.
	Updated time.Time `json:"updated"`
}

// ClusterStats answers PathReleaseStats. Counts lag the traffic by up to
// SyncSeconds: each agent commits what it counted that often.
type ClusterStats struct {
	Node          string                `json:"node"` // agent that answered
	Time          time.Time             `json:"time"`
	Index         uint64                `json:"index"` // state index read
	WindowSeconds int                   `json:"window_s"`
	SyncSeconds   int                   `json:"sync_s"`
	Releases      []ClusterReleaseStats `json:"releases"`
}
