package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The man pages keep the help texts' literal characters: markdown would
// otherwise turn phoenix_*.json into emphasis and drop <state-dir>.
func TestRun_manPagesKeepText(t *testing.T) {
	out := t.TempDir()
	if err := run(out, "v1.2.3", "2026-12-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ page, want string }{
		{"phoenix.1", `phoenix_*\&.json files`},
		{"phoenix.1", `/usr/local/phoenix_hypervisor/etc if it exists, else .`},
		{"phoenix-controller.1", `token in <state-dir>/ui-token) a converge`},
		{"phoenix-completion-bash.1", `source <(phoenix completion bash)`},
		{"phoenix-version.1", `"phoenix v1.2.3" "phoenix manual"`},
	} {
		data, err := os.ReadFile(filepath.Join(out, "man", tc.page))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), tc.want) {
			t.Errorf("%s lacks %q", tc.page, tc.want)
		}
	}
	for _, f := range []string{"phoenix.bash", "_phoenix", "phoenix.fish"} {
		if fi, err := os.Stat(filepath.Join(out, "completions", f)); err != nil || fi.Size() == 0 {
			t.Errorf("completion %s: %v", f, err)
		}
	}
}

func TestEscapeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"the phoenix_*.json files", `the phoenix\_\*.json files`},
		{"token in <state-dir>/ui-token", `token in \<state-dir\>/ui-token`},
		{"text\n\tsource <(cmd)\n    a_b", "text\n\tsource <(cmd)\n    a_b"},
	} {
		if got := escapeText(tc.in); got != tc.want {
			t.Errorf("escapeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
