package guest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// File is one file put into a guest.
type File struct {
	// Src is the file on this host; empty when Data is the content.
	Src  string
	Data []byte
	// Dest is its absolute path in the guest.
	Dest string
	Mode os.FileMode
}

// Content is the file's bytes: Data, or Src read.
func (f File) Content() ([]byte, error) {
	if f.Src == "" {
		return f.Data, nil
	}
	return os.ReadFile(f.Src)
}

// Perms is Mode as install(1) and pct push take it: 0600.
func (f File) Perms() string { return fmt.Sprintf("%04o", f.Mode.Perm()) }

// Container reaches inside a running container.
type Container interface {
	// Push writes f into the container, private to root unless f.Mode
	// says otherwise.
	Push(ctx context.Context, id api.ID, f File) error
	// Exec runs argv in the container; a non-zero exit is an error
	// carrying the output's tail.
	Exec(ctx context.Context, id api.ID, argv []string) error
}

// Agent reaches inside a running VM through its QEMU guest agent.
type Agent interface {
	// Ping returns nil once the agent answers. While the agent is not
	// running yet, its error says "guest agent is not running", as
	// Proxmox's does.
	Ping(ctx context.Context, id api.ID) error
	// Exec runs argv through the agent with stdin (nil: none) and returns
	// what the agent reports; the error is the transport's own failure.
	Exec(ctx context.Context, id api.ID, argv []string, stdin []byte) (*AgentReply, error)
}

// Node runs one of the old tree's host-side scripts on the Proxmox node
// that holds guest id: they drive the guest themselves with pct given its
// ID, so they must run where the guest is.
type Node interface {
	RunScript(ctx context.Context, id api.ID, script *Checked, args []string) error
}

// AgentReply is what a guest agent says about a command it ran.
type AgentReply struct {
	// Command is the command as the transport shows it in messages, and
	// Via how it got there ("guest agent"), when Command does not say.
	Command, Via string
	// Exited is false when the transport stopped waiting, after Waited.
	Exited bool
	Waited time.Duration
	// ExitCode is nil when a signal (Signal) ended the command.
	ExitCode *int
	Signal   *int
	// Output is its stdout and stderr.
	Output []byte
}

// Err is nil for a command that exited 0, else why it did not.
func (r *AgentReply) Err() error {
	via := ""
	if r.Via != "" {
		via = " (" + r.Via + ")"
	}
	switch {
	case !r.Exited:
		return fmt.Errorf("`%s`%s: still running after %s", r.Command, via, r.Waited)
	case r.ExitCode != nil && *r.ExitCode == 0:
		return nil
	}
	e := &ExitError{Command: r.Command, Via: r.Via, Code: -1, Signal: -1, Output: Tail(r.Output)}
	if r.ExitCode != nil {
		e.Code = *r.ExitCode
	} else if r.Signal != nil {
		e.Signal = *r.Signal
	}
	return e
}

// ExitError is a command in a guest that exited non-zero or was killed.
type ExitError struct {
	Command, Via string
	// Code is the exit status; -1 when a signal ended the command.
	Code int
	// Signal is the signal that ended it, -1 when unknown or none.
	Signal int
	// Output is the tail of its output.
	Output string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString("`" + e.Command + "`")
	if e.Via != "" {
		b.WriteString(" (" + e.Via + ")")
	}
	if e.Code >= 0 {
		fmt.Fprintf(&b, " exited %d", e.Code)
	} else {
		fmt.Fprintf(&b, " was killed by signal %d", e.Signal)
	}
	if e.Output != "" {
		b.WriteString(": " + e.Output)
	}
	return b.String()
}

// Output quoted in errors: the last lines, which is where tools and
// scripts say what went wrong.
const (
	tailLines = 20
	tailBytes = 2000
)

// Tail is the end of a command's output for an error message. Several
// lines start on a line of their own so they read as the tool printed
// them.
func Tail(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	cut := false
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
		cut = true
	}
	s = strings.Join(lines, "\n")
	if len(s) > tailBytes {
		s = s[len(s)-tailBytes:]
		cut = true
	}
	if cut {
		s = "..." + s
	}
	if strings.Contains(s, "\n") {
		return "\n" + s
	}
	return s
}
