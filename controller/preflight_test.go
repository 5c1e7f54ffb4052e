package controller_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// A guest whose workflow would run a missing script is refused before
// anything happens on the host: Ready False with ScriptsMissing naming
// each script, an error in the log, a failed reconcile counted. Once the
// scripts are in place, the retry builds it.
func TestController_preflightRefusesMissingScripts(t *testing.T) {
	l := newLabFrom(t, "../testdata/small")
	scripts := filepath.Join(t.TempDir(), "scripts")
	write := func(rel string) {
		p := filepath.Join(scripts, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// 900's feature is there; 941's feature and application script are not.
	write("features/base_setup.sh")
	if err := os.MkdirAll(filepath.Join(scripts, "apps"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := l.start(func(o *controllerOptions) {
		o.ScriptsDir = scripts
	}, nil)
	waitFor(t, "941 refused by the preflight", func() (bool, string) {
		st := l.status(941)
		c := st.Condition(api.ConditionReady)
		return c != nil && c.Reason == api.ReasonScriptsMissing, st.LastError
	})
	waitFor(t, "900 and 953 ready", func() (bool, string) { return l.allReady([]api.ID{900, 953}) })
	msg := l.status(941).Condition(api.ConditionReady).Message
	for _, w := range []string{"docker", "app.sh", "nothing was done on the host"} {
		if !strings.Contains(msg, w) {
			t.Errorf("condition message lacks %q: %s", w, msg)
		}
	}
	if _, ok := l.guest(api.KindLXC, 941); ok {
		t.Error("941 was created although its scripts are missing")
	}
	// The status file is in place before the write's folder fsync
	// returns, and the log line and the metric come after it: wait for
	// them rather than look once.
	waitFor(t, "the refusal logged", func() (bool, string) {
		return len(r.logLines("Preflight refused the guest's scripts")) > 0, "no error logged for the refused guest"
	})
	waitFor(t, "the refusal counted", func() (bool, string) {
		got := r.metric("phoenix_reconcile_total", map[string]string{"kind": "lxc", "result": "error"})
		return got >= 1, fmt.Sprintf("phoenix_reconcile_total{kind=lxc,result=error} = %v", got)
	})

	write("features/docker.sh")
	write("apps/app.sh")
	waitFor(t, "941 ready once its scripts exist", func() (bool, string) { return l.allReady([]api.ID{941}) })
}
