package guest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// recorder is every transport at once; it records what the protocol asks
// of them as one line per call.
type recorder struct {
	calls []string
	files map[string]string
	// fail makes the call whose line starts with it fail.
	fail string
	// pings answer "not running" this many times before the agent is up.
	pings int
	reply func(argv []string) *AgentReply
}

func (r *recorder) record(line string) error {
	r.calls = append(r.calls, line)
	if r.fail != "" && strings.HasPrefix(line, r.fail) {
		return errors.New("transport: boom")
	}
	return nil
}

func (r *recorder) Push(_ context.Context, id api.ID, f File) error {
	data, err := f.Content()
	if err != nil {
		return err
	}
	if err := r.record(fmt.Sprintf("push %s %s %s", id, f.Dest, f.Perms())); err != nil {
		return err
	}
	r.files[f.Dest] = string(data)
	return nil
}

func (r *recorder) Exec(_ context.Context, id api.ID, argv []string) error {
	return r.record(fmt.Sprintf("exec %s %s", id, strings.Join(argv, " ")))
}

type agent struct{ *recorder }

func (a agent) Ping(context.Context, api.ID) error {
	if err := a.record("ping"); err != nil {
		return err
	}
	if a.pings > 0 {
		a.pings--
		return errors.New("500 QEMU guest agent is not running")
	}
	return nil
}

func (a agent) Exec(_ context.Context, id api.ID, argv []string, stdin []byte) (*AgentReply, error) {
	line := fmt.Sprintf("agent %s %s", id, strings.Join(argv, " "))
	if err := a.record(line); err != nil {
		return nil, err
	}
	if stdin != nil {
		a.files[argv[len(argv)-1]] = string(stdin)
	}
	if a.reply != nil {
		if rep := a.reply(argv); rep != nil {
			return rep, nil
		}
	}
	return &AgentReply{Command: strings.Join(argv, " "), Exited: true, ExitCode: new(0)}, nil
}

func (r *recorder) RunScript(_ context.Context, id api.ID, c *Checked, args []string) error {
	return r.record(fmt.Sprintf("node %s %s %s", id, c.Rel, strings.Join(args, " ")))
}

// guestKind and the kinds, named short for the tables.
type guestKind = api.Kind

const (
	lxc = api.KindLXC
	vm  = api.KindVM
)

// cancelled is a context that has ended.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func newRunner(t *testing.T) (*Runner, *recorder, string) {
	root := t.TempDir()
	rec := &recorder{files: map[string]string{}}
	return &Runner{ScriptsDir: root, Container: rec, Agent: agent{rec}, Node: rec,
		AgentWait: time.Minute, AgentPoll: time.Millisecond, MaxAgentInput: 64}, rec, root
}
