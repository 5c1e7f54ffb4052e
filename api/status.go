package api

import "time"

// Phase is where a guest stands in its life as phoenix sees it.
type Phase string

const (
	// PhasePending: never applied by phoenix.
	PhasePending Phase = "Pending"
	// PhaseProvisioning: a workflow is running on the guest.
	PhaseProvisioning Phase = "Provisioning"
	// PhaseReady: the last workflow finished and the guest matches its spec.
	PhaseReady Phase = "Ready"
	// PhaseFailed: the last workflow failed; LastError says why.
	PhaseFailed Phase = "Failed"
	// PhaseOrphaned: the guest is no longer in the files; phoenix leaves it alone.
	PhaseOrphaned Phase = "Orphaned"
	// PhaseUnknown: the recorded status could not be read (a corrupt file);
	// only status shows it, and the next successful write replaces it.
	PhaseUnknown Phase = "Unknown"
)

// ConditionReady is the condition type that summarises a guest's state.
const ConditionReady = "Ready"

// Reasons of the Ready condition.
const (
	// ReasonNeverApplied: phoenix has not run a workflow on the guest yet.
	ReasonNeverApplied = "NeverApplied"
	// ReasonProgressing: a workflow is running.
	ReasonProgressing = "Progressing"
	// ReasonSucceeded: the last workflow finished.
	ReasonSucceeded = "ReconciliationSucceeded"
	// ReasonFailed: the last workflow failed.
	ReasonFailed = "ReconciliationFailed"
	// ReasonInternalError: phoenix itself failed (a panic) while working on
	// the guest; the stack is in the log.
	ReasonInternalError = "InternalError"
	// ReasonOrphaned: the guest was removed from the files.
	ReasonOrphaned = "RemovedFromConfig"
	// ReasonScriptsMissing: a script the guest's workflow would run is
	// missing or may not be run; nothing was done on the host.
	ReasonScriptsMissing = "ScriptsMissing"
)

// ConditionDrifted is True while the guest on the host differs from the
// desired state it was last applied with (someone changed it by hand); the
// message names the keys.
const ConditionDrifted = "Drifted"

// Reasons of the Drifted condition.
const (
	// ReasonHostDrift: keys differ on the host.
	ReasonHostDrift = "HostDrift"
	// ReasonInSync: the host matches again.
	ReasonInSync = "InSync"
)

// Condition is a Kubernetes-style observation about a guest.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// StepRecord is one step of the last workflow run on a guest.
type StepRecord struct {
	Name       string `json:"name"`
	Result     string `json:"result"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// Status is what phoenix records about a guest in <state-dir>/status/<id>.json.
type Status struct {
	ID                    string       `json:"id"`
	Kind                  Kind         `json:"kind"`
	Phase                 Phase        `json:"phase"`
	ObservedSpecHash      string       `json:"observedSpecHash,omitempty"`
	LastAppliedAt         *time.Time   `json:"lastAppliedAt,omitempty"`
	LastHandledConvergeAt string       `json:"lastHandledConvergeAt,omitempty"`
	LastError             string       `json:"lastError,omitempty"`
	Conditions            []Condition  `json:"conditions,omitempty"`
	LastSteps             []StepRecord `json:"lastSteps,omitempty"`
}

// SetReady sets the Ready condition, moving its transition time only when
// its status changes.
func (s *Status) SetReady(status, reason, message string, now time.Time) {
	s.SetCondition(ConditionReady, status, reason, message, now)
}

// SetCondition sets a condition, moving its transition time only when its
// status changes.
func (s *Status) SetCondition(typ, status, reason, message string, now time.Time) {
	for i := range s.Conditions {
		c := &s.Conditions[i]
		if c.Type != typ {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, message
		return
	}
	s.Conditions = append(s.Conditions, Condition{Type: typ, Status: status, Reason: reason, Message: message, LastTransitionTime: now})
}

// Condition returns the condition of that type, or nil.
func (s *Status) Condition(typ string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == typ {
			return &s.Conditions[i]
		}
	}
	return nil
}
