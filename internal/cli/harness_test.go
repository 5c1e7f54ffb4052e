package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

const (
	referenceLab = "../../testdata/reference-lab"
	exampleLab   = "../../config/examples/lab"
	smallLab     = "../../testdata/small"
)

// harness runs the CLI in-process on a copy of a config, with its own
// state dir and the sim backend.
type harness struct {
	t        testing.TB
	cfgDir   string
	stateDir string
	extra    []string
}

func newHarness(t testing.TB, src string) *harness {
	t.Helper()
	if _, err := os.Stat(src); err != nil {
		t.Skipf("config %s not found", src)
	}
	h := &harness{t: t, cfgDir: t.TempDir(), stateDir: t.TempDir()}
	h.copyConfig(src)
	return h
}

// copyConfig replaces the config files with those of src.
func (h *harness) copyConfig(src string) {
	h.t.Helper()
	for _, f := range []string{"phoenix_hypervisor_config.json", "phoenix_lxc_configs.json", "phoenix_vm_configs.json"} {
		os.Remove(filepath.Join(h.cfgDir, f))
		data, err := os.ReadFile(filepath.Join(src, f))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(h.cfgDir, f), data, 0o600); err != nil {
			h.t.Fatal(err)
		}
	}
}

// run runs phoenix with args and returns the exit code and both outputs.
func (h *harness) run(args ...string) (int, string, string) {
	h.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--config-dir", h.cfgDir, "--state-dir", h.stateDir, "--backend", "sim"}, h.extra...)
	code := Run(context.Background(), append(full, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustRun runs phoenix and fails the test unless it exits 0.
func (h *harness) mustRun(args ...string) string {
	h.t.Helper()
	code, out, errOut := h.run(args...)
	if code != 0 {
		h.t.Fatalf("phoenix %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// runJSON runs a verb with -o json, checks the document against the result
// schema and decodes it.
func (h *harness) runJSON(args ...string) (int, plan.ResultDoc, string) {
	h.t.Helper()
	code, out, errOut := h.run(append(args, "-o", "json")...)
	testlab.ValidateJSON(h.t, "testdata/result.schema.json", out)
	var doc plan.ResultDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		h.t.Fatalf("phoenix %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return code, doc, errOut
}

// opsSince returns the sim host's ops.log lines after the first n.
func (h *harness) ops() []string {
	data, err := os.ReadFile(filepath.Join(h.stateDir, "sim", "ops.log"))
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(line); len(f) == 4 {
			out = append(out, f[1]+" "+f[3]) // "op id"
		}
	}
	return out
}

// hostSnapshot returns every file of the sim host, to prove nothing changed.
func (h *harness) hostSnapshot() map[string]string {
	h.t.Helper()
	snap := map[string]string{}
	root := filepath.Join(h.stateDir)
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "lock") {
			return nil
		}
		data, _ := os.ReadFile(path)
		rel, _ := filepath.Rel(root, path)
		snap[rel] = string(data)
		return nil
	})
	return snap
}

// actionsByID indexes a result's actions.
func actionsByID(doc plan.ResultDoc) map[string]plan.ActionDoc {
	m := map[string]plan.ActionDoc{}
	for _, a := range doc.Actions {
		m[a.ID] = a
	}
	return m
}

// touched lists the guests that ops since mark acted on, sorted.
func touched(ops []string) []string {
	seen := map[string]bool{}
	for _, op := range ops {
		seen[strings.Fields(op)[1]] = true
	}
	var out []string
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
