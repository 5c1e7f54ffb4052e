package plan

import "time"

// Step results, as in the -o json document.
const (
	StepOK        = "ok"
	StepUnchanged = "unchanged"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
)

// StepResult is what one step did.
type StepResult struct {
	Name     string
	Result   string
	Duration time.Duration
	Err      error
}
