package api

import (
	"net/url"
	"strconv"
	"time"

	"gantry/config"
	"gantry/eval/canary"
	"gantry/eval/compare"
	"gantry/eval/dataset"
	"gantry/eval/run"
)

// Evaluation endpoints of the admin API:
//
//	POST   /admin/v1/datasets?file=NAME.yaml           a dataset file (YAML or JSONL) -> DatasetPushResult
//	GET    /admin/v1/datasets                          Datasets
//	GET    /admin/v1/datasets/{name}?version=N         DatasetVersion (default the latest)
//	DELETE /admin/v1/datasets/{name}                   -> DatasetPushResult
//	POST   /admin/v1/datasets/{name}/cases/from-trace  FromTrace -> DatasetPushResult
//	POST   /admin/v1/evals/runs                        RunRecord -> Run
//	GET    /admin/v1/evals/runs?feature=&release=&dataset=  Runs, newest first
//	GET    /admin/v1/evals/runs/{id}                   Run with its outcomes
//	POST   /admin/v1/evals/compare                     Compare -> Verdict
//	GET    /admin/v1/evals/verdicts?feature=&candidate=  Verdicts, newest first
//	GET    /admin/v1/features/{name}/gate?version=N    Gate
//	GET    /admin/v1/features/{name}/canary            Canary
//
// Runs run where `gantry eval run` runs, against the gateway; the cluster
// keeps their summaries and outcomes and works out verdicts from them.

// Paths of the evaluation endpoints.
const (
	PathDatasets = Prefix + "/datasets"
	PathRuns     = Prefix + "/evals/runs"
	PathCompare  = Prefix + "/evals/compare"
	PathVerdicts = Prefix + "/evals/verdicts"
)

// DatasetPath is the path of one dataset, at a version when version > 0.
func DatasetPath(name string, version int) string {
	p := PathDatasets + "/" + url.PathEscape(name)
	if version > 0 {
		p += "?version=" + strconv.Itoa(version)
	}
	return p
}

// FromTracePath is where a trace is turned into a case of a dataset.
func FromTracePath(name string) string { return DatasetPath(name, 0) + "/cases/from-trace" }

// RunPath is the path of one recorded run.
func RunPath(id string) string { return PathRuns + "/" + url.PathEscape(id) }

// GatePath is the path of a release's standing against its feature's
// promotion gate.
func GatePath(feature string, version int) string {
	return PathFeatures + "/" + url.PathEscape(feature) + "/gate?version=" + strconv.Itoa(version)
}

// CanaryPath is the path of a feature's canary analysis.
func CanaryPath(feature string) string {
	return PathFeatures + "/" + url.PathEscape(feature) + "/canary"
}

// DatasetPushResult answers a push, a delete or a case added from a trace.
type DatasetPushResult struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Hash    string `json:"hash"`
	Cases   int    `json:"cases"`
	// Changed is false when the content equals the latest version's, which
	// then stays the latest.
	Changed bool   `json:"changed"`
	Index   uint64 `json:"index"`
	// Case is the case a trace became.
	Case *dataset.Case `json:"case,omitempty"`
}

// DatasetInfo is one dataset in the list.
type DatasetInfo struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Version     int            `json:"version"` // the latest
	Versions    []int          `json:"versions"`
	Hash        string         `json:"hash"`
	Created     time.Time      `json:"created"`
	Cases       int            `json:"cases"`
	Critical    int            `json:"critical"`
	Tags        map[string]int `json:"tags,omitempty"`
}

// Datasets is the dataset list.
type Datasets struct {
	Datasets []DatasetInfo `json:"datasets"`
}

// DatasetVersion is one version of a dataset with its content.
type DatasetVersion struct {
	Name     string          `json:"name"`
	Version  int             `json:"version"`
	Versions []int           `json:"versions"`
	Hash     string          `json:"hash"`
	Created  time.Time       `json:"created"`
	Dataset  dataset.Dataset `json:"dataset"`
}

// FromTrace asks to turn a trace of the agent's store into a case.
type FromTrace struct {
	TraceID string `json:"trace_id"`
	// Critical marks the new case critical.
	Critical bool `json:"critical,omitempty"`
}

// RunRecord is what `gantry eval run` records once a run is finished: its
// summary and each case's outcome over the repeats.
type RunRecord struct {
	Summary     run.Summary       `json:"summary"`
	DatasetHash string            `json:"dataset_hash"`
	Repeat      int               `json:"repeat"`
	Outcomes    []run.CaseOutcome `json:"outcomes"`
}

// Run is a recorded run. Outcomes is left out of lists, and is empty once
// the cluster keeps only the run's summary.
type Run struct {
	Summary     run.Summary       `json:"summary"`
	DatasetHash string            `json:"dataset_hash"`
	Repeat      int               `json:"repeat"`
	Recorded    time.Time         `json:"recorded"`
	RecordedBy  string            `json:"recorded_by"`
	Index       uint64            `json:"index"`
	Comparable  bool              `json:"comparable"` // the cluster keeps its outcomes
	Outcomes    []run.CaseOutcome `json:"outcomes,omitempty"`
}

// Runs is the run list, newest first.
type Runs struct {
	Runs []Run `json:"runs"`
}

// Compare asks the cluster to compare two recorded runs of a feature.
type Compare struct {
	Feature      string             `json:"feature"`
	BaselineRun  string             `json:"baseline_run"`
	CandidateRun string             `json:"candidate_run"`
	Thresholds   compare.Thresholds `json:"thresholds"`
}

// Verdict is a comparison's verdict as the cluster recorded it: the
// numbers behind it, and how many case ids its lists left out.
type Verdict struct {
	compare.Verdict
	Omitted    int       `json:"omitted,omitempty"`
	Recorded   time.Time `json:"recorded"`
	RecordedBy string    `json:"recorded_by"`
	Index      uint64    `json:"index"`
}

// Verdicts is the verdict list, newest first.
type Verdicts struct {
	Verdicts []Verdict `json:"verdicts"`
}

// Gate is a release's standing against its feature's promotion gate.
type Gate struct {
	Feature string `json:"feature"`
	Version int    `json:"version"`
	// Gated is set when the feature gates promotion on Dataset.
	Gated   bool   `json:"gated"`
	Dataset string `json:"dataset,omitempty"`
	// Verdict is the release's latest comparison on the dataset.
	Verdict *Verdict `json:"verdict,omitempty"`
	// Refusal says why a promotion would be refused; empty when allowed.
	Refusal string `json:"refusal,omitempty"`
}

// Canary is the analysis of a feature's canary: the last decision taken,
// and, while the canary is live and undecided, the look the agent took
// now at the cluster's counters.
type Canary struct {
	Feature    string               `json:"feature"`
	Live       bool                 `json:"live"`
	Canary     int                  `json:"canary"`
	Production int                  `json:"production"`
	Weight     int                  `json:"weight"`
	Policy     *config.CanaryPolicy `json:"policy,omitempty"`
	// OnRegression is what a regression does: rollback or alert.
	OnRegression string `json:"on_regression"`
	// Analysed is set when the cluster has an analysis of this canary
	// (or of the last one, when none is live).
	Analysed bool      `json:"analysed"`
	Began    time.Time `json:"began,omitzero"`
	// Decision is the look that decided, once one did; Action what it
	// did: rolled_back, alerted or passed.
	Decision *canary.Decision `json:"decision,omitempty"`
	Action   string           `json:"action,omitempty"`
	Decided  time.Time        `json:"decided,omitzero"`
	// Now is the look at this moment, while undecided.
	Now *canary.Decision `json:"now,omitempty"`
}

// Error code of a promotion the evaluation gate refuses.
const CodeGated = "gated" // 409: the release's latest comparison is a regression or missing
