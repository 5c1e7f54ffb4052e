package cli

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
)

func TestCompletion(t *testing.T) {
	h := newHarness(t, referenceLab)
	complete := func(args ...string) []string {
		t.Helper()
		var out, errOut bytes.Buffer
		full := append([]string{"__complete", "--config-dir", h.cfgDir}, args...)
		if code := Run(context.Background(), full, &out, &errOut); code != 0 {
			t.Fatalf("__complete %v: exit %d\n%s", args, code, errOut.String())
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if !strings.HasPrefix(l, ":") { // the last line is cobra's directive
				got = append(got, l)
			}
		}
		return got
	}
	ids := strings.Join(complete("create", ""), "\n")
	for _, want := range []string{"941\tgranite-new (lxc)", "900\t", "8000\t"} {
		if !strings.Contains(ids, want) {
			t.Errorf("phoenix create <TAB> lacks %q:\n%s", want, ids)
		}
	}
	for _, verb := range []string{"converge", "start", "stop", "restart", "delete", "status", "graph", "diff"} {
		if got := complete(verb, "94"); len(got) == 0 || !strings.HasPrefix(got[0], "94") {
			t.Errorf("phoenix %s 94<TAB> = %q, want IDs starting with 94", verb, got)
		}
	}
	if got := strings.Join(complete("create", "941", "94"), " "); strings.Contains(got, "941\t") {
		t.Errorf("an ID already given is offered again: %q", got)
	}
	flags := []struct {
		args []string
		want string
	}{
		{[]string{"status", "--backend", ""}, "auto sim pve pve-api"},
		{[]string{"status", "-o", ""}, "text json"},
		{[]string{"graph", "--format", ""}, "mermaid dot svg"},
		{[]string{"controller", "--log-format", ""}, "text json"},
	}
	for _, f := range flags {
		if got := strings.Join(complete(f.args...), " "); got != f.want {
			t.Errorf("%v<TAB> = %q, want %q", f.args, got, f.want)
		}
	}
}

func TestHelp_groupsBackendFlags(t *testing.T) {
	h := newHarness(t, smallLab)
	_, root, _ := h.run("--help")
	section := regexp.MustCompile(`(?s)Backend flags \(--backend pve-api\):\n(.*?)\n\n`).FindStringSubmatch(root)
	if section == nil || !strings.Contains(section[1], "--pve-url") || strings.Contains(section[1], "--sim-latency") {
		t.Errorf("phoenix --help has no pve-api section holding --pve-url:\n%s", root)
	}
	general := root[:strings.Index(root, "Backend flags")]
	if strings.Contains(general, "--pve-") || strings.Contains(general, "--sim-") {
		t.Errorf("backend flags are listed among the general flags:\n%s", general)
	}
	_, create, _ := h.run("create", "--help")
	if strings.Contains(create, "--pve-url") || strings.Contains(create, "--sim-seed") || !strings.Contains(create, `see "phoenix --help"`) {
		t.Errorf("create --help lists backend flags instead of pointing to phoenix --help:\n%s", create)
	}
	if !strings.Contains(create, "--config-dir") || !strings.Contains(create, "--dry-run") {
		t.Errorf("create --help lost its general flags:\n%s", create)
	}
}

func TestHelp_convergeKeepsTheSeedSentence(t *testing.T) {
	h := newHarness(t, smallLab)
	_, root, _ := h.run("--help")
	var line string
	for _, l := range strings.Split(root, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "converge" {
			line = l
		}
	}
	const sentence = "creates a guest if it doesn't exist, and forcefully re-applies all configurations and features for the guest and its entire dependency chain"
	if !strings.Contains(line, sentence) || strings.HasSuffix(line, ".") {
		t.Errorf("converge's short help %q: want the seed's sentence, no final period like the others", line)
	}
	_, long, _ := h.run("converge", "--help")
	if !strings.HasPrefix(long, "Creates a guest if it doesn't exist, and forcefully re-applies all configurations and features for the guest and its entire dependency chain.") {
		t.Errorf("converge --help does not start with the seed's sentence:\n%s", long)
	}
}

func TestBackendPVE_withoutPct(t *testing.T) {
	h := newHarness(t, smallLab)
	t.Setenv("PATH", t.TempDir())
	before := h.hostSnapshot()
	for _, verb := range [][]string{{"status"}, {"create", "900"}} {
		code, out, errOut := h.run(append(verb, "--backend", "pve")...)
		if code != 2 || !strings.Contains(errOut, "pct not found: is this a Proxmox host?") {
			t.Errorf("%v --backend pve without pct: exit %d\n%s%s", verb, code, out, errOut)
		}
	}
	if !equalSnap(before, h.hostSnapshot()) {
		t.Error("the state dir changed")
	}
}

const escape = "\x1b["

func TestColor(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		noColor  string
		flag     bool
		want     bool
	}{
		{"a terminal", true, "", false, true},
		{"a pipe or file", false, "", false, false},
		{"NO_COLOR set", true, "1", false, false},
		{"--no-color", true, "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := isTerminal
			isTerminal = func(io.Writer) bool { return tt.terminal }
			t.Cleanup(func() { isTerminal = old })
			t.Setenv("NO_COLOR", tt.noColor)
			h := newHarness(t, smallLab)
			if tt.flag {
				h.extra = []string{"--no-color"}
			}
			_, create, _ := h.run("create", "900")
			_, status, _ := h.run("status")
			for name, out := range map[string]string{"create": create, "status": status} {
				if got := strings.Contains(out, escape); got != tt.want {
					t.Errorf("%s output coloured = %v, want %v:\n%q", name, got, tt.want, out)
				}
			}
			if tt.want && !strings.Contains(create, ansiGreen+"ok ") {
				t.Errorf("step results are not coloured:\n%q", create)
			}
			// Colour never breaks the status table's columns.
			plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(status, "")
			lines := strings.Split(strings.TrimSpace(plain), "\n")
			if col := strings.Index(lines[0], "PHASE"); col < 0 || len(lines) < 2 || !strings.HasPrefix(lines[1][col:], "Ready") {
				t.Errorf("status columns misaligned:\n%s", plain)
			}
		})
	}
}

// TestProgress_alignsColumns creates guests with IDs of three and four
// digits: each step line puts the step name and result in the same column.
func TestProgress_alignsColumns(t *testing.T) {
	h := newHarness(t, exampleLab)
	out := h.mustRun("create", "941", "8001")
	stepLine := regexp.MustCompile(`^    (\d+) +(\S+) +(ok|unchanged|skipped|failed) +\S+$`)
	nameCol, resultCol := -1, -1
	ids := map[int]bool{}
	for _, l := range strings.Split(out, "\n") {
		m := stepLine.FindStringSubmatchIndex(l)
		if m == nil {
			continue
		}
		ids[m[3]-m[2]] = true
		if nameCol < 0 {
			nameCol, resultCol = m[4], m[6]
		}
		if m[4] != nameCol || m[6] != resultCol {
			t.Errorf("misaligned step line (step at %d, result at %d; first line had %d, %d):\n%s", m[4], m[6], nameCol, resultCol, l)
		}
	}
	if !ids[3] || !ids[4] {
		t.Fatalf("want step lines of 3- and 4-digit IDs, got ID widths %v:\n%s", ids, out)
	}
}

func TestOutput_plurals(t *testing.T) {
	h := newHarness(t, smallLab)
	h.mustRun("create", "900")
	out := h.mustRun("stop", "900", "--dry-run")
	if !strings.Contains(out, "plan of 1 action (") {
		t.Errorf("stop --dry-run: %q, want \"plan of 1 action\"", out)
	}
	out = h.mustRun("stop", "900")
	if !strings.Contains(out, ": 1 action (") {
		t.Errorf("stop summary: %q, want \"1 action\"", out)
	}
	out = h.mustRun("create", "900", "--dry-run")
	if strings.Contains(out, "1 actions") {
		t.Errorf("create --dry-run: %q", out)
	}
}

// TestOutput_cancellation fails every host operation: the guests that
// needed the failed one are cancelled, each line saying why once.
func TestOutput_cancellation(t *testing.T) {
	h := newHarness(t, referenceLab)
	h.extra = []string{"--sim-fail-rate", "1"}
	code, out, _ := h.run("create", "941")
	if code != 1 {
		t.Fatalf("create with every operation failing: exit %d\n%s", code, out)
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "cancelled") || strings.Contains(l, "critical path") {
			continue
		}
		n++
		if strings.Count(l, "cancelled") != 1 || strings.Count(l, " 941") > 1 && strings.HasPrefix(l, "xxx create lxc 941") {
			t.Errorf("cancellation line repeats itself: %q", l)
		}
		if !strings.Contains(l, "which did not finish") {
			t.Errorf("cancellation line does not say why: %q", l)
		}
	}
	if n == 0 {
		t.Errorf("no cancelled action reported:\n%s", out)
	}
}
