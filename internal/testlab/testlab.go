// Package testlab gives tests and benchmarks generated labs of any size,
// made by internal/fake/lab and cached per size and seed for the lifetime
// of the temp folder, so that a benchmark does not pay for generating
// 10,000 guests on every run.
package testlab

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/fake/lab"
)

// Generate returns a config dir holding a generated lab of n guests (the
// generator's defaults otherwise, seed 1).
func Generate(tb testing.TB, n int) string {
	tb.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("phoenix-genlab-%d-seed1", n))
	if _, err := os.Stat(filepath.Join(dir, "phoenix_lxc_configs.json")); err == nil {
		return dir
	}
	o := lab.Defaults()
	o.N, o.Seed = n, 1
	l, err := lab.Generate(o)
	if err != nil {
		tb.Fatalf("generate a lab of %d guests: %v", n, err)
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "phoenix-genlab-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := l.Write(tmp); err != nil {
		os.RemoveAll(tmp)
		tb.Fatalf("write a lab of %d guests: %v", n, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process won the race; use its copy.
		os.RemoveAll(tmp)
	}
	return dir
}
