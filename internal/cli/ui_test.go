package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/ui"
)

func TestGraph_svgIsThePagesPicture(t *testing.T) {
	h := newHarness(t, exampleLab)
	// A state dir that does not exist: every guest Pending, nothing created.
	h.stateDir = filepath.Join(t.TempDir(), "never-made")
	got := h.mustRun("graph", "--format", "svg")
	cfg, err := desired.Load(h.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := ui.RenderSVG(&want, ui.NewGraph(cfg, nil)); err != nil {
		t.Fatal(err)
	}
	if got != want.String() {
		t.Error("graph --format svg is not the picture ui.RenderSVG draws")
	}
	if strings.Contains(got, `phase-Ready"`) || strings.Count(got, "phase-Pending\"") != 16 {
		t.Error("without status records every guest should be Pending")
	}
	if _, err := os.Stat(h.stateDir); err == nil {
		t.Error("graph created the state dir")
	}

	// With status records: their phases, and only the chain asked for.
	h.stateDir = t.TempDir()
	h.mustRun("create", "941")
	got = h.mustRun("graph", "941", "--format", "svg")
	for _, id := range []string{"900", "901", "920", "921", "953", "941"} {
		if !strings.Contains(got, `phase-Ready" id="guest-`+id+`"`) {
			t.Errorf("guest %s is not drawn Ready after create 941", id)
		}
	}
	if strings.Contains(got, `id="guest-956"`) {
		t.Error("graph 941 draws 956, outside 941's chain")
	}
}

func TestController_uiTokenFileRefused(t *testing.T) {
	h := newHarness(t, exampleLab)
	path := filepath.Join(h.stateDir, ui.TokenFile)
	if err := os.WriteFile(path, []byte(strings.Repeat("a", 32)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut bytes.Buffer
	code := Run(ctx, []string{"--config-dir", h.cfgDir, "--state-dir", h.stateDir, "--backend", "sim",
		"controller", "--metrics-addr", "127.0.0.1:0", "--ui-allow-converge"}, &out, &errOut)
	if code != ExitUsage || !strings.Contains(errOut.String(), "mode 0644") {
		t.Errorf("controller with a 0644 token file: exit %d, %s", code, errOut.String())
	}
}
