package release

import (
	"hash/fnv"

	"gantry/config"
)

// Assign picks the release a user sees: the canary for about CanaryWeight
// percent of users, production for the rest. The choice hashes the feature
// and the user, so one user always sees one release for as long as the
// labels stay put, different features split users independently, and a
// user on the canary stays on it when its weight grows. An empty user id
// cannot be sticky and always gets production; callers without a user
// should pass a session or request id.
func Assign(feature string, labels config.Labels, userID string) (version int, label string) {
	if labels.Canary == 0 || labels.CanaryWeight <= 0 || userID == "" {
		return labels.Production, config.LabelProduction
	}
	if Bucket(feature, userID) < labels.CanaryWeight {
		return labels.Canary, config.LabelCanary
	}
	return labels.Production, config.LabelProduction
}

// Bucket is the user's stable position in 0..99 for a feature.
func Bucket(feature, userID string) int {
	h := fnv.New64a()
	h.Write([]byte(feature))
	h.Write([]byte{0})
	h.Write([]byte(userID))
	return int(mix(h.Sum64()) % 100)
}

// mix is the splitmix64 finaliser: FNV alone leaves ids that differ in their
// last character in neighbouring buckets.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
