package cli

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A misspelled field is a warning naming both names in validate and in a
// verb that acts; under validate --strict it is an error (exit 2).
func TestWarnings_misspelledFieldAndStrict(t *testing.T) {
	h := newHarness(t, smallLab)
	path := filepath.Join(h.cfgDir, "phoenix_lxc_configs.json")
	data, _ := os.ReadFile(path)
	data = bytes.Replace(data, []byte(`"name": "gateway",`), []byte(`"name": "gateway", "memroy_mb": 4096,`), 1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	want := `guest 953: field memroy_mb: warning: unknown field "memroy_mb" is ignored; did you mean "memory_mb"?`
	for _, args := range [][]string{{"validate"}, {"create", "953", "--dry-run"}} {
		code, _, stderr := h.run(args...)
		if code != 0 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, want 0 and the warning:\n%s", args, code, stderr)
		}
	}
	code, _, stderr := h.run("validate", "--strict")
	if code != ExitUsage || !strings.Contains(stderr, "memroy_mb") {
		t.Errorf("validate --strict: exit %d, want 2 naming the field:\n%s", code, stderr)
	}
}

// A state dir another user could turn against root is refused with exit
// 2, and nothing is written through it.
func TestStateDir_unsafeRefused(t *testing.T) {
	h := newHarness(t, smallLab)
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"symlink": link, "world-writable": open} {
		h.stateDir = dir
		for _, verb := range [][]string{{"create", "953"}, {"status"}} {
			code, _, stderr := h.run(verb...)
			if code != ExitUsage || !strings.Contains(stderr, "state dir") {
				t.Errorf("%s state dir, %v: exit %d, want 2:\n%s", name, verb, code, stderr)
			}
		}
	}
	if entries, _ := os.ReadDir(real); len(entries) != 0 {
		t.Errorf("phoenix wrote through the symlinked state dir: %v", entries)
	}
}

// A symlink planted in the state dir where phoenix writes a status file is
// not followed: its target is untouched.
func TestStateDir_plantedSymlinkNotFollowed(t *testing.T) {
	h := newHarness(t, smallLab)
	h.mustRun("create", "953")
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The status store's lock stripes and the status file itself.
	for _, p := range []string{filepath.Join(h.stateDir, "status", "953.json"), filepath.Join(h.stateDir, "status", ".locks", "1")} {
		os.Remove(p)
		if err := os.Symlink(victim, p); err != nil {
			t.Fatal(err)
		}
	}
	h.run("converge", "953")
	if data, _ := os.ReadFile(victim); string(data) != "precious\n" {
		t.Errorf("the symlink's target was written: %q", data)
	}
}

// status, validate, graph and --dry-run create nothing: not even the state dir.
func TestReadOnlyVerbs_createNothing(t *testing.T) {
	h := newHarness(t, smallLab)
	h.stateDir = filepath.Join(t.TempDir(), "never")
	for _, args := range [][]string{{"status"}, {"validate"}, {"graph"}, {"create", "941", "--dry-run"}, {"LetsGo", "--dry-run"}} {
		if code, _, stderr := h.run(args...); code != 0 {
			t.Errorf("%v: exit %d\n%s", args, code, stderr)
		}
		if _, err := os.Lstat(h.stateDir); err == nil {
			t.Fatalf("%v created the state dir", args)
		}
	}

	// On a state dir with records, nothing changes either.
	h2 := newHarness(t, smallLab)
	h2.mustRun("create", "941")
	before := snapshot(t, h2.stateDir)
	for _, args := range [][]string{{"status"}, {"graph"}, {"converge", "941", "--dry-run"}} {
		h2.run(args...)
	}
	if after := snapshot(t, h2.stateDir); after != before {
		t.Errorf("a read-only verb changed the state dir:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, _ := d.Info()
		b.WriteString(p + " " + fi.ModTime().String() + "\n")
		return nil
	})
	return b.String()
}

// A corrupt status file shows that guest as Unknown; the others show.
func TestStatus_corruptFileIsUnknown(t *testing.T) {
	h := newHarness(t, smallLab)
	h.mustRun("create", "941")
	if err := os.WriteFile(filepath.Join(h.stateDir, "status", "953.json"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := h.run("status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"953 ", "Unknown", "941 "} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
