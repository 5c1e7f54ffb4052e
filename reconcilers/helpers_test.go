package reconcilers

import (
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
)

const (
	referenceLab = "../testdata/reference-lab"
	exampleLab   = "../config/examples/lab"
)

func load(tb testing.TB, dir string) *api.Config {
	tb.Helper()
	c, err := desired.Load(dir)
	if err != nil {
		tb.Fatalf("load %s: %v", dir, err)
	}
	return c
}
