package api

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with the desired state, located by file, guest
// and field so that a user can go straight to it.
type Problem struct {
	File  string
	Guest string
	Field string
	Msg   string
	// Warning marks a problem that does not stop a load (an unknown field
	// close to a known one) unless the caller is strict.
	Warning bool `json:"warning,omitempty"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.File == "" {
		b.Reset()
		b.WriteString("config")
	}
	switch p.Guest {
	case "":
	case "vm_defaults":
		b.WriteString(": vm_defaults")
	default:
		fmt.Fprintf(&b, ": guest %s", p.Guest)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, ": field %s", p.Field)
	}
	b.WriteString(": ")
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// InvalidError is the error for a desired state with problems. Retrying
// cannot fix it: the files must change.
type InvalidError struct {
	Problems []Problem
	// Warnings found in the same load, shown with the problems.
	Warnings []Problem
}

func (e *InvalidError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}
