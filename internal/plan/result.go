package plan

import "time"

// ResultDoc is the -o json document of a verb (schemas/result.schema.json).
type ResultDoc struct {
	Verb           string      `json:"verb"`
	Targets        []string    `json:"targets"`
	DryRun         bool        `json:"dry_run"`
	OK             bool        `json:"ok"`
	ElapsedMS      int64       `json:"elapsed_ms"`
	CriticalPathMS int64       `json:"critical_path_ms"`
	Error          string      `json:"error,omitempty"`
	Actions        []ActionDoc `json:"actions"`
}

// ActionDoc is one action of a ResultDoc.
type ActionDoc struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Action     string    `json:"action"`
	Reason     string    `json:"reason"`
	Result     string    `json:"result"`
	DurationMS int64     `json:"duration_ms"`
	Steps      []StepDoc `json:"steps,omitempty"`
	Error      string    `json:"error,omitempty"`
	// Changes lists, in a dry run, what the action would change.
	Changes []Change `json:"changes,omitempty"`
}

// StepDoc is one workflow step of an ActionDoc.
type StepDoc struct {
	Name       string `json:"name"`
	Result     string `json:"result"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// Doc renders an outcome; with outcome nil it renders the plan as planned
// (a dry run).
func Doc(p *Plan, o *Outcome) ResultDoc {
	d := ResultDoc{Verb: p.Verb, Targets: ids(p), DryRun: o == nil, OK: true, Actions: []ActionDoc{}}
	if o != nil {
		d.OK = o.OK()
		d.ElapsedMS = ms(o.Elapsed)
		d.CriticalPathMS = ms(o.CriticalPath)
	}
	for i, a := range p.Actions {
		ad := ActionDoc{ID: a.ID.String(), Kind: string(a.Kind), Action: a.Action, Reason: a.Reason, Result: ResultPlanned}
		if o == nil {
			ad.Changes = a.Changes
		}
		if o != nil {
			r := o.Results[i]
			ad.Result, ad.DurationMS = r.Result, ms(r.Duration)
			if r.Err != nil {
				ad.Error = r.Err.Error()
			}
			for _, s := range r.Steps {
				sd := StepDoc{Name: s.Name, Result: s.Result, DurationMS: ms(s.Duration)}
				if s.Err != nil {
					sd.Error = s.Err.Error()
				}
				ad.Steps = append(ad.Steps, sd)
			}
		}
		d.Actions = append(d.Actions, ad)
	}
	return d
}

func ids(p *Plan) []string {
	out := make([]string, len(p.Targets))
	for i, t := range p.Targets {
		out[i] = t.String()
	}
	return out
}

func ms(d time.Duration) int64 { return d.Milliseconds() }
