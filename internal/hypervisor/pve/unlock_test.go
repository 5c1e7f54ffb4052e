package pve

import (
	"strings"
	"testing"
)

func TestUnlockHint(t *testing.T) {
	for _, tt := range []struct {
		argv   []string
		output string
		want   string
	}{
		{[]string{"pct", "start", "941"}, "CT is locked (create)", "`pct unlock 941`"},
		{[]string{"qm", "set", "8001", "--memory", "2048"}, "VM is locked (clone)", "`qm unlock 8001`"},
		{[]string{"pct", "start", "941"}, "CT is locked (backup)", ""},
		{[]string{"pct", "start", "941"}, "can't lock file '/run/lock/lxc/pve-config-941.lock' - got timeout", ""},
		{[]string{"pct", "start", "9x1"}, "CT is locked (create)", ""},
	} {
		got := unlockHint(tt.argv, tt.output)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("unlockHint(%v, %q) = %q, want it to contain %q", tt.argv, tt.output, got, tt.want)
		}
	}
	e := &CommandError{Argv: []string{"pct", "start", "941"}, ExitCode: 255, Output: "CT is locked (create)"}
	if !strings.Contains(e.Error(), "`pct unlock 941`") {
		t.Errorf("a stale create lock's error lacks the unlock command: %s", e)
	}
}
