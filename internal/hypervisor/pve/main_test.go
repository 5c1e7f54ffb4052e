package pve

import (
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/fake/pve/fakepvetest"
)

// The test binary doubles as the fake pct and qm.
func TestMain(m *testing.M) { fakepvetest.Main(m) }
