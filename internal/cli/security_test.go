package cli

import (
	"strings"
	"testing"
)

func TestController_listensOnLoopbackByDefault(t *testing.T) {
	h := newHarness(t, smallLab)
	code, out, _ := h.run("controller", "--help")
	if code != 0 {
		t.Fatalf("controller --help: exit %d", code)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "--metrics-addr string") {
			if !strings.Contains(line, `(default "127.0.0.1:9464")`) {
				t.Errorf("--metrics-addr does not default to loopback: %s", line)
			}
			return
		}
	}
	t.Error("controller --help does not list --metrics-addr")
}
