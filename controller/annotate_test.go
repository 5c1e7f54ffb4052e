package controller_test

import (
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
