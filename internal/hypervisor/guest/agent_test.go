package guest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// TestRunner_agentReplies: what the agent says about a command becomes
// the error, naming the command and how it ended.
func TestRunner_agentReplies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reply   *AgentReply
		wantErr string
	}{
		{"exit code", &AgentReply{Command: "curl", Via: "guest agent", Exited: true, ExitCode: new(7), Output: []byte("a\nrefused\n")},
			"`curl` (guest agent) exited 7: \na\nrefused"},
		{"signal", &AgentReply{Command: "curl", Exited: true, Signal: new(9)}, "`curl` was killed by signal 9"},
		{"stopped waiting", &AgentReply{Command: "curl", Waited: 30 * time.Second}, "`curl`: still running after 30s"},
		{"exit 0", &AgentReply{Command: "curl", Exited: true, ExitCode: new(0), Output: []byte("fine")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, rec, _ := newRunner(t)
			rec.reply = func([]string) *AgentReply { return tc.reply }
			err := r.Run(t.Context(), vm, 101, hypervisor.Script{Command: []string{"curl"}})
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v; want %q", err, tc.wantErr)
			}
			if want := []string{"ping", "agent 101 curl"}; !reflect.DeepEqual(rec.calls, want) {
				t.Errorf("calls %q, want %q", rec.calls, want)
			}
		})
	}
}

func TestRunner_waitsForALateAgent(t *testing.T) {
	cmd := hypervisor.Script{Kind: hypervisor.HealthScript, Name: "up", Command: []string{"true"}}

	r, rec, _ := newRunner(t)
	rec.pings = 3
	if err := r.Run(t.Context(), vm, 200, cmd); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ping", "ping", "ping", "ping", "agent 200 true"}; !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("calls %q, want %q", rec.calls, want)
	}

	r, rec, _ = newRunner(t)
	r.AgentWait, r.AgentHint = 20*time.Millisecond, ", or raise --wait"
	rec.pings = 1 << 30
	err := r.Run(t.Context(), vm, 200, cmd)
	for _, w := range []string{"did not answer within 20ms", "QEMU guest agent is not running", "install qemu-guest-agent", "agent: 1", "or raise --wait"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("err %v lacks %q", err, w)
		}
	}
	if n := len(rec.calls); n < 2 || rec.calls[n-1] != "ping" {
		t.Errorf("calls %q: want several pings and no exec", rec.calls)
	}

	r, rec, _ = newRunner(t)
	rec.pings = 1 << 30
	if err := r.Run(cancelled(), vm, 200, cmd); err == nil || !strings.Contains(err.Error(), "waiting for the guest agent: context canceled") {
		t.Errorf("cancelled wait: %v", err)
	}
}
