package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEquivalent_entriesPointAtRealCode: every entry names a file and a
// line of code that exist, so an entry cannot outlive the code it excuses.
func TestEquivalent_entriesPointAtRealCode(t *testing.T) {
	known, err := readEquivalent("equivalent.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(known) == 0 {
		t.Fatal("equivalent.txt lists nothing")
	}
	for _, e := range known {
		data, err := os.ReadFile(filepath.Join("..", "..", e.file))
		if err != nil {
			t.Errorf("%s: %v", e.file, err)
			continue
		}
		if !strings.Contains(string(data), e.code) {
			t.Errorf("%s no longer holds %q: drop or update the entry", e.file, e.code)
		}
	}
}

func TestReadEquivalent_refusesMalformedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eq.txt")
	if err := os.WriteFile(path, []byte("# comment\n\na.go | X | code\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readEquivalent(path); err == nil || !strings.Contains(err.Error(), "eq.txt:3") {
		t.Fatalf("readEquivalent = %v, want the bad line named", err)
	}
}

func TestReport(t *testing.T) {
	known := []equivalent{{"p/a.go", "CONDITIONALS_BOUNDARY", "if n < 1 {", "same value"}}
	explained := mutant{File: "p/a.go", Type: "CONDITIONALS_BOUNDARY", Line: 3, Col: 5, Source: "if n < 1 {"}
	unexplained := mutant{File: "p/a.go", Type: "CONDITIONALS_NEGATION", Line: 9, Col: 2, Source: "if ok {"}
	tests := []struct {
		name     string
		r        result
		diff     bool
		want     []string
		wantFail bool
	}{
		{"all killed", result{pkg: "p", killed: 10}, false, []string{"| p | 10 | 0 | 100.0 % |", "None."}, false},
		{"explained survivor", result{pkg: "p", killed: 9, lived: 1, survivors: []mutant{explained}}, false,
			[]string{"| p | 9 | 1 | 90.0 % |", "`p/a.go:3:5` CONDITIONALS_BOUNDARY `if n < 1 {`: equivalent: same value"}, false},
		{"unexplained survivor", result{pkg: "p", killed: 9, lived: 1, survivors: []mutant{unexplained}}, false,
			[]string{"`p/a.go:9:2` CONDITIONALS_NEGATION `if ok {`: NOT EXPLAINED"}, true},
		{"below threshold", result{pkg: "p", killed: 8, lived: 2, survivors: []mutant{explained, explained}}, false,
			[]string{"| p | 8 | 2 | 80.0 % (below 85 %) |"}, true},
		{"below threshold in a diff run", result{pkg: "p", killed: 1, lived: 1, survivors: []mutant{explained}}, true,
			[]string{"| p | 1 | 1 | 50.0 % (below 85 %) |"}, false},
		{"budget spent", result{pkg: "p", note: "NOT RUN: budget spent"}, false, []string{"| p | - | - | NOT RUN: budget spent |"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.explain(known)
			got := render([]result{tt.r}, "", 85)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("report lacks %q:\n%s", w, got)
				}
			}
			if f := failed([]result{tt.r}, 85, tt.diff); f != tt.wantFail {
				t.Errorf("failed = %v, want %v", f, tt.wantFail)
			}
		})
	}
}

func TestParse_gremlinsOutput(t *testing.T) {
	out := `Gathering coverage... done in 10.3s
      KILLED CONDITIONALS_NEGATION at execute.go:51:15
       LIVED CONDITIONALS_BOUNDARY at execute.go:64:14
   TIMED OUT ARITHMETIC_BASE at plan.go:70:9
 NOT COVERED CONDITIONALS_NEGATION at result.go:12:3
      KILLED INCREMENT_DECREMENT at internal/plan/plan.go:88:4
Killed: 2, Lived: 1, Not covered: 1
`
	root = "../.."
	t.Cleanup(func() { root = "." })
	r := parse("internal/plan", strings.NewReader(out))
	if r.killed != 2 || r.lived != 1 || r.timedOut != 1 || r.nc != 1 {
		t.Fatalf("parse = killed %d lived %d timed out %d not covered %d, want 2 1 1 1", r.killed, r.lived, r.timedOut, r.nc)
	}
	s := r.survivors[0]
	if s.File != "internal/plan/execute.go" || s.Line != 64 || s.Col != 14 || s.Type != "CONDITIONALS_BOUNDARY" || !strings.Contains(s.Source, "parallel") {
		t.Errorf("survivor = %+v, want execute.go:64:14 with its source line", s)
	}
	if h := r.hung[0]; h.File != "internal/plan/plan.go" || h.Line != 70 {
		t.Errorf("timed out = %+v", h)
	}
	// A run cut short keeps its counts and says so.
	r.note = "PARTIAL: budget spent"
	r.explain([]equivalent{{"internal/plan/execute.go", "CONDITIONALS_BOUNDARY", "if parallel < 1 {", "same"}})
	if got := render([]result{r}, "", 85); !strings.Contains(got, "| internal/plan | 2 | 1 | 66.7 % (below 85 %) PARTIAL: budget spent |") {
		t.Errorf("partial row:\n%s", got)
	}
	if failed([]result{r}, 85, false) {
		t.Error("a partial run with its survivor explained failed on the threshold")
	}
}

// TestExcludes_onlyTheListedFiles: a package limited to some files has
// gremlins skip its other files and its sub-packages, whose mutants its own
// tests do not judge; the listed files and the tests stay in.
func TestExcludes_onlyTheListedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"reconcile.go", "prune.go", "controller.go", "prune_test.go", "metrics/metrics.go", "statelock/lock.go"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("package x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args, err := excludes(dir, []string{"reconcile.go", "prune.go"})
	if err != nil {
		t.Fatal(err)
	}
	var res []*regexp.Regexp
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] != "--exclude-files" {
			t.Fatalf("args = %q", args)
		}
		res = append(res, regexp.MustCompile(args[i+1]))
	}
	excluded := func(path string) bool {
		for _, re := range res {
			if re.MatchString(path) {
				return true
			}
		}
		return false
	}
	for path, want := range map[string]bool{
		"reconcile.go": false, "prune.go": false,
		"controller.go": true, "metrics/metrics.go": true, "statelock/lock.go": true,
		// gremlins may name files by their absolute path.
		filepath.Join(dir, "reconcile.go"): false, filepath.Join(dir, "statelock", "lock.go"): true,
	} {
		if got := excluded(path); got != want {
			t.Errorf("%s excluded = %v, want %v (args %q)", path, got, want, args)
		}
	}
	if args, _ := excludes(dir, nil); len(args) != 0 {
		t.Errorf("without only: %q, want nothing excluded", args)
	}
}
