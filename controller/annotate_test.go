package controller_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
)

// TestRequestConverge_concurrentRequestsLoseNothing sends converge requests
// for many guests of one file at once, as a CLI and the status page might:
// every guest ends with its own token.
func TestRequestConverge_concurrentRequestsLoseNothing(t *testing.T) {
	l := newLab(t)
	cfg, err := desired.Load(l.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[api.ID]string{}
	var wg sync.WaitGroup
	for _, id := range cfg.IDs {
		tok := "token-" + id.String()
		tokens[id] = tok
		wg.Add(1)
		go func(g *api.Guest) {
			defer wg.Done()
			if err := controller.RequestConverge([]*api.Guest{g}, tok); err != nil {
				t.Error(err)
			}
		}(cfg.Guest(id))
	}
	wg.Wait()
	after, err := desired.Load(l.cfgDir)
	if err != nil {
		t.Fatalf("the annotated files no longer load: %v", err)
	}
	for id, tok := range tokens {
		if got := after.Guest(id).ConvergeToken(); got != tok {
			t.Errorf("guest %s has token %q, want %q: a concurrent request overwrote it", id, got, tok)
		}
	}
}

// A converge request on a symlinked config file writes through to the
// target: the link stays a link, the target gets the annotation, and the
// rest of the file keeps its formatting.
func TestRequestConverge_symlinkedFileKeepsTheLink(t *testing.T) {
	l := newLab(t)
	data := l.read(api.LXCFile)
	target := filepath.Join(t.TempDir(), "containers.json")
	if err := os.WriteFile(target, data, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(l.file(api.LXCFile))
	if err := os.Symlink(target, l.file(api.LXCFile)); err != nil {
		t.Fatal(err)
	}
	cfg, err := desired.Load(l.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := controller.RequestConverge([]*api.Guest{cfg.Guest(941)}, "tok-1"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(l.file(api.LXCFile))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the config file is no longer a symlink (%v, %v)", fi.Mode(), err)
	}
	after, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(after), "tok-1") {
		t.Error("the target did not get the annotation")
	}
	// Formatting kept: every line of the original is still there.
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(string(after), line) {
			t.Fatalf("line %q of the original is gone", line)
		}
	}
}
