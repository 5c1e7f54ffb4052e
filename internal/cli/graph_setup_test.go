package cli

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -update rewrites it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestGraph_golden(t *testing.T) {
	h := newHarness(t, referenceLab)
	assertGolden(t, "graph-reference-941.mmd", h.mustRun("graph", "941"))
	assertGolden(t, "graph-reference.dot", h.mustRun("graph", "--format", "dot"))
	e := newHarness(t, exampleLab)
	assertGolden(t, "graph-example.mmd", e.mustRun("graph"))
	if code, _, stderr := h.run("graph", "--format", "png"); code != 2 || !strings.Contains(stderr, "--format") {
		t.Errorf("graph --format png: exit %d, %s", code, stderr)
	}
}

func TestSetup_runsEachStepOnce(t *testing.T) {
	h := newHarness(t, referenceLab)
	type doc struct {
		OK    bool `json:"ok"`
		Steps []struct {
			Name, Result string
		} `json:"steps"`
	}
	runSetup := func(args ...string) doc {
		t.Helper()
		code, out, stderr := h.run(append([]string{"setup", "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("setup %v: exit %d: %s", args, code, stderr)
		}
		testlab.ValidateJSON(t, "testdata/result.schema.json", out)
		var d doc
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := runSetup()
	var names []string
	for _, s := range first.Steps {
		names = append(names, s.Name)
		if s.Result != "ok" {
			t.Errorf("first setup: step %s = %s, want ok", s.Name, s.Result)
		}
	}
	if got := strings.Join(names, ","); got != "users,zfs,storage,network,nfs,samba,nvidia,docker" {
		t.Errorf("steps = %s, want the reference lab's sections in order", got)
	}
	for _, s := range runSetup().Steps {
		if s.Result != "unchanged" {
			t.Errorf("second setup: step %s = %s, want unchanged", s.Name, s.Result)
		}
	}
	for _, s := range runSetup("--force").Steps {
		if s.Result != "ok" {
			t.Errorf("setup --force: step %s = %s, want ok", s.Name, s.Result)
		}
	}
}

// A "needs" arrow reads as a sentence: 941 needs 953 is drawn from 941 to
// 953 (it was drawn backwards).
func TestGraph_needsArrowPointsAtTheDependency(t *testing.T) {
	h := newHarness(t, referenceLab)
	out := h.mustRun("graph", "941")
	if !strings.Contains(out, "g941 -.->|needs| g953\n") {
		t.Errorf("no arrow from 941 to the 953 it needs:\n%s", out)
	}
	if strings.Contains(out, "g953 -.->|needs| g941") {
		t.Errorf("arrow says 953 needs 941:\n%s", out)
	}
	// Clone arrows keep going from the source to the clone.
	if !strings.Contains(out, "g921 -->|clone| g941\n") {
		t.Errorf("clone arrow from 921 to 941 missing:\n%s", out)
	}
}
