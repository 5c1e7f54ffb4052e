// Package testlab gives tests and benchmarks generated labs of any size,
// made by hack/genlab and cached per size and seed for the machine's
// lifetime of the temp folder, so that a benchmark does not pay for
// generating 10,000 guests on every run.
package testlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Generate returns a config dir holding a generated lab of n guests.
func Generate(tb testing.TB, n int) string {
	tb.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("phoenix-genlab-%d-seed1", n))
	if _, err := os.Stat(filepath.Join(dir, "phoenix_lxc_configs.json")); err == nil {
		return dir
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	tmp, err := os.MkdirTemp(os.TempDir(), "phoenix-genlab-")
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./hack/genlab", "-n", fmt.Sprint(n), "-seed", "1", "-out", tmp)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("genlab: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		// Another process won the race; use its copy.
		os.RemoveAll(tmp)
	}
	return dir
}
