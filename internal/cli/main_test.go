package cli

import (
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/fake/pve/fakepvetest"
)

func TestMain(m *testing.M) { fakepvetest.Main(m) }
