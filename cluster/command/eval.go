package command

import (
	"gantry/eval/compare"
	"gantry/eval/dataset"
	"gantry/eval/run"
)

// Dataset is the payload of PutDataset: a dataset's content, which
// becomes its next version unless it equals the latest.
type Dataset struct {
	Dataset dataset.Dataset `json:"dataset"`
	// IfVersion, when set, must be the dataset's latest version when the
	// command applies (0: the dataset does not exist yet), so a case added
	// to what a client read never drops a case added in between.
	IfVersion *int `json:"if_version,omitempty"`
}

// Run is the payload of RecordRun: a finished run's summary and each
// case's outcome over its repeats, which comparisons pair.
type Run struct {
	Summary     run.Summary       `json:"summary"`
	DatasetHash string            `json:"dataset_hash"`
	Repeat      int               `json:"repeat"`
	Outcomes    []run.CaseOutcome `json:"outcomes"`
}

// Verdict is the payload of RecordVerdict: compare two recorded runs of a
// feature. The state machine computes the verdict itself from the runs it
// holds, so the promotion gate reads what the cluster worked out.
type Verdict struct {
	Feature      string             `json:"feature"`
	BaselineRun  string             `json:"baseline_run"`
	CandidateRun string             `json:"candidate_run"`
	Thresholds   compare.Thresholds `json:"thresholds"`
}

// Canary is the payload of CanaryBegin and CanaryDecide. CanaryBegin
// starts the analysis of the feature's live canary from the cluster's
// counters at the command's time; CanaryDecide looks again at the command's
// time and, when the analysis decides, records the decision and acts on
// it as the feature's canary policy says. Versions name the canary and
// production releases the proposer saw, so a look at a canary that ended
// in between changes nothing.
type Canary struct {
	Feature    string `json:"feature"`
	Canary     int    `json:"canary"`
	Production int    `json:"production"`
}
