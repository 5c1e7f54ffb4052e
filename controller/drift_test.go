package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
)

// TestController_reportsDrift changes a guest on the host behind phoenix's
// back: the controller names the key in its log, sets the Drifted
// condition and phoenix_drifted_guests, leaves the host alone, and clears
// all three once the host matches again.
func TestController_reportsDrift(t *testing.T) {
	l := newLab(t)
	r := l.start(func(o *controller.Options) { o.Resync = 100 * time.Millisecond }, nil)
	r.waitReady()
	r.idle()
	if got := r.metric("phoenix_drifted_guests", map[string]string{"kind": "lxc"}); got != 0 {
		t.Fatalf("phoenix_drifted_guests before any drift = %v", got)
	}
	if c := l.status(941).Condition(api.ConditionDrifted); c != nil {
		t.Fatalf("Drifted condition before any drift: %+v", c)
	}
	ctx := context.Background()
	g, err := l.host.Get(ctx, api.KindLXC, 941)
	if err != nil {
		t.Fatal(err)
	}
	memory := g.Config["memory"]
	if err := l.host.Set(ctx, api.KindLXC, 941, map[string]string{"memory": "512"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the drift reported", func() (bool, string) {
		c := l.status(941).Condition(api.ConditionDrifted)
		n := r.metric("phoenix_drifted_guests", map[string]string{"kind": "lxc"})
		return c != nil && c.Status == "True" && n == 1, ""
	})
	if c := l.status(941).Condition(api.ConditionDrifted); c.Reason != api.ReasonHostDrift || !strings.Contains(c.Message, "memory") {
		t.Errorf("Drifted condition %+v does not name memory", c)
	}
	if !strings.Contains(r.logs.String(), `"msg":"Guest drifted on the host","guest":941`) ||
		!strings.Contains(r.logs.String(), `"keys":["memory"]`) {
		t.Errorf("log does not report 941's drifted memory:\n%s", r.logs.String())
	}
	if g, _ := l.host.Get(ctx, api.KindLXC, 941); g.Config["memory"] != "512" {
		t.Errorf("the controller changed memory back to %s without being asked", g.Config["memory"])
	}

	if err := l.host.Set(ctx, api.KindLXC, 941, map[string]string{"memory": memory}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the drift cleared", func() (bool, string) {
		c := l.status(941).Condition(api.ConditionDrifted)
		n := r.metric("phoenix_drifted_guests", map[string]string{"kind": "lxc"})
		return c != nil && c.Status == "False" && n == 0, ""
	})
}
