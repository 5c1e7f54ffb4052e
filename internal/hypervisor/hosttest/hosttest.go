package hosttest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
)

// Target is one backend on a fresh, empty host.
type Target struct {
	Host hypervisor.Host
	// Source and Storage are what containers are created from and on, as
	// the host knows them.
	Source, Storage string
	// VMSource is the cloud image VMs are created from, as the host knows
	// it.
	VMSource string
	// Lock locks a guest the way a job outside phoenix does (a backup):
	// until then unlocked, every change to it must fail with ErrLocked.
	Lock func(t *testing.T, kind api.Kind, id api.ID)
	// Mutations counts the operations that changed the host so far, by the
	// host's own record (its log of commands or requests), not phoenix's.
	Mutations func(t *testing.T) int
}

// Run runs the contract as subtests, each on a host newTarget makes.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, c *check)
	}{
		{"not found", notFound},
		{"locked", locked},
		{"refusals", refusals},
		{"idempotent", idempotent},
		{"snapshots", snapshots},
		{"templates", templates},
		{"disk grows in place", diskGrows},
		{"vm template and clone", vmTemplate},
		{"firewall", firewall},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, &check{Target: newTarget(t), ctx: context.Background()})
		})
	}
}

type check struct {
	Target
	ctx context.Context
}

const (
	ctA, ctB, ctC = api.ID(301), api.ID(302), api.ID(303)
	missing       = api.ID(4242)
)

// create makes a stopped container of 8G with a hostname and memory.
func (c *check) create(t *testing.T, id api.ID) {
	t.Helper()
	err := c.Host.Create(c.ctx, api.KindLXC, id, hypervisor.CreateSpec{Source: c.Source, Storage: c.Storage, DiskGB: 8,
		Config: map[string]string{"hostname": "ct" + id.String(), "memory": "512"}})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
}

func (c *check) get(t *testing.T, id api.ID) *hypervisor.Guest {
	t.Helper()
	g, err := c.Host.Get(c.ctx, api.KindLXC, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return g
}

// refused asserts that err is a refusal: an error, and not one that says
// the guest is missing or locked (which would hide the reason).
func refused(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error, want a refusal", what)
	case errors.Is(err, hypervisor.ErrNotFound), errors.Is(err, hypervisor.ErrLocked):
		t.Errorf("%s: %v; want a refusal, not a missing or locked guest", what, err)
	}
}

// unchanged asserts that fn changes nothing on the host.
func (c *check) unchanged(t *testing.T, what string, fn func()) {
	t.Helper()
	before := c.Mutations(t)
	fn()
	if n := c.Mutations(t) - before; n != 0 {
		t.Errorf("%s changed the host %d times; want none", what, n)
	}
}

func notFound(t *testing.T, c *check) {
	c.create(t, ctA)
	k := api.KindLXC
	ops := map[string]func() error{
		"get":          func() error { _, err := c.Host.Get(c.ctx, k, missing); return err },
		"get as a vm":  func() error { _, err := c.Host.Get(c.ctx, api.KindVM, ctA); return err },
		"set":          func() error { return c.Host.Set(c.ctx, k, missing, map[string]string{"memory": "1024"}) },
		"resize":       func() error { return c.Host.Resize(c.ctx, k, missing, 16) },
		"start":        func() error { return c.Host.Start(c.ctx, k, missing) },
		"stop":         func() error { return c.Host.Stop(c.ctx, k, missing) },
		"destroy":      func() error { return c.Host.Destroy(c.ctx, k, missing) },
		"snapshot":     func() error { return c.Host.Snapshot(c.ctx, k, missing, "golden") },
		"template":     func() error { return c.Host.ConvertToTemplate(c.ctx, k, missing) },
		"clone source": func() error { return c.Host.Clone(c.ctx, k, missing, ctB, hypervisor.CloneSpec{Name: "x"}) },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("%s of a missing guest: %v; want ErrNotFound", name, err)
		}
	}
	for _, id := range []api.ID{missing, ctB} {
		if _, err := c.Host.Get(c.ctx, k, id); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("after operations on missing guests, %s: %v; want still missing", id, err)
		}
	}
}

func locked(t *testing.T, c *check) {
	c.create(t, ctA)
	c.Lock(t, api.KindLXC, ctA)
	k := api.KindLXC
	for name, op := range map[string]func() error{
		"start":    func() error { return c.Host.Start(c.ctx, k, ctA) },
		"set":      func() error { return c.Host.Set(c.ctx, k, ctA, map[string]string{"memory": "1024"}) },
		"snapshot": func() error { return c.Host.Snapshot(c.ctx, k, ctA, "golden") },
		"resize":   func() error { return c.Host.Resize(c.ctx, k, ctA, 16) },
		"template": func() error { return c.Host.ConvertToTemplate(c.ctx, k, ctA) },
		"destroy":  func() error { return c.Host.Destroy(c.ctx, k, ctA) },
	} {
		if err := op(); !errors.Is(err, hypervisor.ErrLocked) {
			t.Errorf("%s of a locked guest: %v; want ErrLocked", name, err)
		}
	}
	g := c.get(t, ctA)
	if g.Running || g.Template || g.Config["memory"] != "512" || g.DiskGB != 8 || len(g.Snapshots) != 0 {
		t.Errorf("locked guest changed: %+v", g)
	}
}

func refusals(t *testing.T, c *check) {
	c.create(t, ctA)
	if err := c.Host.Start(c.ctx, api.KindLXC, ctA); err != nil {
		t.Fatal(err)
	}
	refused(t, "start a running guest", c.Host.Start(c.ctx, api.KindLXC, ctA))
	refused(t, "template a running guest", c.Host.ConvertToTemplate(c.ctx, api.KindLXC, ctA))
	refused(t, "shrink a disk", c.Host.Resize(c.ctx, api.KindLXC, ctA, 4))
	refused(t, "create over an existing guest", c.Host.Create(c.ctx, api.KindLXC, ctA,
		hypervisor.CreateSpec{Source: c.Source, Storage: c.Storage, DiskGB: 8, Config: map[string]string{"hostname": "again"}}))
	g := c.get(t, ctA)
	if !g.Running || g.Template || g.DiskGB != 8 || g.Config["hostname"] != "ct"+ctA.String() {
		t.Errorf("after the refusals: running %v, template %v, disk %dG, hostname %q; want running, no template, 8G, as created",
			g.Running, g.Template, g.DiskGB, g.Config["hostname"])
	}
}

// ensure is a small workflow: it reads the guest and changes only what
// differs from the wanted state. Its second run must change nothing, which
// holds only when Get reports what the changes did.
func (c *check) ensure(t *testing.T) {
	t.Helper()
	k := api.KindLXC
	g, ok, err := hypervisor.Exists(c.ctx, c.Host, k, ctA)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		c.create(t, ctA)
		g = c.get(t, ctA)
	}
	want := map[string]string{"memory": "1024", "cores": "2"}
	diff := map[string]string{}
	for key, v := range want {
		if g.Config[key] != v {
			diff[key] = v
		}
	}
	steps := []struct {
		needed bool
		run    func() error
	}{
		{len(diff) > 0, func() error { return c.Host.Set(c.ctx, k, ctA, diff) }},
		{g.DiskGB < 10, func() error { return c.Host.Resize(c.ctx, k, ctA, 10) }},
		{!g.HasSnapshot("golden"), func() error { return c.Host.Snapshot(c.ctx, k, ctA, "golden") }},
		{!g.Running, func() error { return c.Host.Start(c.ctx, k, ctA) }},
	}
	for _, s := range steps {
		if s.needed {
			if err := s.run(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func idempotent(t *testing.T, c *check) {
	before := c.Mutations(t)
	c.ensure(t)
	if c.Mutations(t) == before {
		t.Fatal("the first run changed nothing on the host")
	}
	c.unchanged(t, "a second run", func() { c.ensure(t) })
	g := c.get(t, ctA)
	if g.Config["memory"] != "1024" || g.Config["cores"] != "2" || g.DiskGB != 10 || !g.HasSnapshot("golden") || !g.Running {
		t.Errorf("after two runs: %+v", g)
	}
}

func snapshots(t *testing.T, c *check) {
	c.create(t, ctA)
	k := api.KindLXC
	if err := c.Host.Snapshot(c.ctx, k, ctA, "golden"); err != nil {
		t.Fatal(err)
	}
	if g := c.get(t, ctA); !g.HasSnapshot("golden") {
		t.Errorf("snapshots after taking golden: %v", g.Snapshots)
	}
	refused(t, "a second snapshot of the same name", c.Host.Snapshot(c.ctx, k, ctA, "golden"))
	refused(t, "template a guest with snapshots", c.Host.ConvertToTemplate(c.ctx, k, ctA))
	if g := c.get(t, ctA); g.Template {
		t.Error("a guest with snapshots became a template")
	}
	if err := c.Host.Clone(c.ctx, k, ctA, ctB, hypervisor.CloneSpec{Snapshot: "golden", Name: "web"}); err != nil {
		t.Fatalf("clone from the snapshot: %v", err)
	}
	if g := c.get(t, ctB); g.Config["hostname"] != "web" || g.Template || g.Running {
		t.Errorf("clone: hostname %q, template %v, running %v; want web, stopped", g.Config["hostname"], g.Template, g.Running)
	}
	if err := c.Host.Clone(c.ctx, k, ctA, ctC, hypervisor.CloneSpec{Snapshot: "nope", Name: "x"}); err == nil {
		t.Error("clone from a snapshot that does not exist: no error")
	}
	if _, err := c.Host.Get(c.ctx, k, ctC); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("the failed clone left a guest behind: %v", err)
	}
}

func templates(t *testing.T, c *check) {
	c.create(t, ctA)
	k := api.KindLXC
	if err := c.Host.ConvertToTemplate(c.ctx, k, ctA); err != nil {
		t.Fatal(err)
	}
	if g := c.get(t, ctA); !g.Template {
		t.Error("not a template after ConvertToTemplate")
	}
	refused(t, "start a template", c.Host.Start(c.ctx, k, ctA))
	if err := c.Host.Clone(c.ctx, k, ctA, ctB, hypervisor.CloneSpec{Name: "web"}); err != nil {
		t.Fatalf("clone of the template: %v", err)
	}
	if g := c.get(t, ctB); g.Template || g.Config["hostname"] != "web" {
		t.Errorf("clone of a template: template %v, hostname %q; want a guest named web", g.Template, g.Config["hostname"])
	}
}

func diskGrows(t *testing.T, c *check) {
	c.create(t, ctA)
	k := api.KindLXC
	vol := volume(c.get(t, ctA).Config["rootfs"])
	if err := c.Host.Resize(c.ctx, k, ctA, 12); err != nil {
		t.Fatal(err)
	}
	g := c.get(t, ctA)
	if g.DiskGB != 12 {
		t.Errorf("disk is %dG after growing to 12G", g.DiskGB)
	}
	if got := volume(g.Config["rootfs"]); got != vol {
		t.Errorf("root volume %q became %q: not grown in place", vol, got)
	}
	c.unchanged(t, "growing to the size it has", func() {
		if err := c.Host.Resize(c.ctx, k, ctA, 12); err != nil {
			t.Errorf("resize to the size it has: %v", err)
		}
	})
}

// volume is the volume ID of a disk property ("local-zfs:subvol-301-disk-0"
// of "local-zfs:subvol-301-disk-0,size=8G").
func volume(prop string) string {
	v, _, _ := strings.Cut(prop, ",")
	return v
}

func vmTemplate(t *testing.T, c *check) {
	const tpl, clone = api.ID(9100), api.ID(9101)
	k := api.KindVM
	err := c.Host.Create(c.ctx, k, tpl, hypervisor.CreateSpec{Source: c.VMSource, Storage: c.Storage, DiskGB: 32,
		Config: map[string]string{"name": "base", "memory": "2048", "cores": "2"}})
	if err != nil {
		t.Fatalf("create a vm from %s: %v", c.VMSource, err)
	}
	g, err := c.Host.Get(c.ctx, k, tpl)
	if err != nil || g.DiskGB != 32 || g.Config["name"] != "base" || g.Running {
		t.Fatalf("vm after create = %+v, %v; want a stopped vm named base with a 32G disk", g, err)
	}
	if _, err := c.Host.Get(c.ctx, api.KindLXC, tpl); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("the vm's ID read as a container: %v; want ErrNotFound", err)
	}
	if err := c.Host.ConvertToTemplate(c.ctx, k, tpl); err != nil {
		t.Fatal(err)
	}
	refused(t, "start a vm template", c.Host.Start(c.ctx, k, tpl))
	if err := c.Host.Clone(c.ctx, k, tpl, clone, hypervisor.CloneSpec{Name: "db", Full: true}); err != nil {
		t.Fatalf("full clone of the vm template: %v", err)
	}
	g, err = c.Host.Get(c.ctx, k, clone)
	if err != nil || g.Template || g.Config["name"] != "db" || g.DiskGB != 32 {
		t.Errorf("clone = %+v, %v; want a vm named db with the template's 32G disk", g, err)
	}
	if g, err := c.Host.Get(c.ctx, k, tpl); err != nil || !g.Template {
		t.Errorf("template after the clone = %+v, %v", g, err)
	}
}

// firewall: a backend that keeps firewalls reads back exactly what it
// set, does nothing when it is set again unchanged, refuses a rule that
// could inject a line before changing anything, and says a missing guest
// is missing.
func firewall(t *testing.T, c *check) {
	fwr, ok := c.Host.(hypervisor.Firewaller)
	if !ok {
		t.Skip("the backend keeps no firewall")
	}
	c.create(t, ctA)
	fw := api.Firewall{Enabled: true, Rules: []api.FirewallRule{
		{Type: "in", Action: "ACCEPT", Source: "10.0.0.0/24", Proto: "tcp", Port: "22", Comment: "ssh"},
		{Type: "out", Action: "REJECT", Dest: "10.0.0.1,10.0.0.2", Proto: "udp", Dport: "53:54", Iface: "net0"},
	}}
	if err := fwr.SetFirewall(c.ctx, api.KindLXC, ctA, fw); err != nil {
		t.Fatal(err)
	}
	if g := c.get(t, ctA); g.Firewall != pvefirewall.Format(fw) {
		t.Errorf("read back:\n%s\nwant:\n%s", g.Firewall, pvefirewall.Format(fw))
	}
	c.unchanged(t, "the same firewall again", func() {
		if err := fwr.SetFirewall(c.ctx, api.KindLXC, ctA, fw); err != nil {
			t.Error(err)
		}
	})
	bad := api.Firewall{Enabled: true, Rules: []api.FirewallRule{{Type: "in", Action: "ACCEPT", Comment: "x\nOUT ACCEPT"}}}
	c.unchanged(t, "a rule with a newline", func() {
		refused(t, "a rule with a newline", fwr.SetFirewall(c.ctx, api.KindLXC, ctA, bad))
	})
	if g := c.get(t, ctA); g.Firewall != pvefirewall.Format(fw) {
		t.Errorf("after a refused rule:\n%s", g.Firewall)
	}
	if err := fwr.SetFirewall(c.ctx, api.KindLXC, missing, fw); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("firewall of a missing guest: %v, want ErrNotFound", err)
	}
}
