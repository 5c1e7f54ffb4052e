package plan

import (
	"fmt"
	"runtime/debug"
)

// PanicError is a panic caught inside one action. It fails that action
// only: phoenix runs as root in the middle of clones, and a bug in one
// guest's workflow must not leave the others half made.
type PanicError struct {
	Value any
	// Stack is where it happened, for the log.
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("internal error: panic: %v", e.Value) }

// Recovered turns a recovered value into a *PanicError with the stack.
func Recovered(v any) *PanicError { return &PanicError{Value: v, Stack: debug.Stack()} }
