package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
)

// editGuest changes one field of a guest in the harness's LXC file.
func (h *harness) editGuest(id, field string, value any) {
	h.t.Helper()
	file := filepath.Join(h.cfgDir, api.LXCFile)
	data, err := os.ReadFile(file)
	if err != nil {
		h.t.Fatal(err)
	}
	if data, err = sjson.SetBytes(data, "lxc_configs."+id+"."+field, value); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// simHost opens the harness's simulated host, to change it behind
// phoenix's back.
func (h *harness) simHost() *sim.Sim {
	h.t.Helper()
	host, err := sim.New(sim.Options{Dir: filepath.Join(h.stateDir, "sim")})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { host.Close() })
	return host
}

func runDiffJSON(t *testing.T, h *harness, args ...string) (int, DiffDoc) {
	t.Helper()
	code, out, errOut := h.run(append([]string{"diff", "-o", "json"}, args...)...)
	var doc DiffDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("diff -o json: %v\n%s\n%s", err, out, errOut)
	}
	return code, doc
}

func TestDiff_editedMemory(t *testing.T) {
	h := provisioned(t)
	code, out, errOut := h.run("diff", "941")
	if code != 0 || !strings.Contains(out, "No differences") {
		t.Fatalf("diff 941 right after LetsGo: exit %d\n%s%s", code, out, errOut)
	}
	h.editGuest("941", "memory_mb", 96000)
	before := h.hostSnapshot()
	code, out, errOut = h.run("diff", "941")
	if code != 1 {
		t.Fatalf("diff 941 after editing memory: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "941 memory: 72000 -> 96000\n") {
		t.Errorf("diff 941 does not show memory with both values:\n%s", out)
	}
	if strings.Count(out, "->") != 1 || !strings.Contains(out, "1 difference on 1 guest") {
		t.Errorf("diff 941 shows more than the edited key:\n%s", out)
	}
	if errOut != "" {
		t.Errorf("diff printed an error for a difference: %s", errOut)
	}
	code, doc := runDiffJSON(t, h, "941")
	want := DiffEntry{ID: "941", Kind: "lxc", Name: "granite-new"}
	want.Key, want.Have, want.Want = "memory", "72000", "96000"
	if code != 1 || !doc.Differ || len(doc.Changes) != 1 || doc.Changes[0] != want {
		t.Errorf("diff 941 -o json: exit %d, %+v; want exit 1 and %+v", code, doc, want)
	}
	if doc.Guests < 2 {
		t.Errorf("diff 941 compared %d guests, want its whole chain", doc.Guests)
	}
	// 950 is not in 941's chain.
	if code, _, _ := h.run("diff", "950"); code != 0 {
		t.Errorf("diff 950: exit %d, want 0: 941's edit is not in its chain", code)
	}
	if after := h.hostSnapshot(); !equalSnap(before, after) {
		t.Error("diff changed the host or the state dir")
	}
}

func equalSnap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDiff_hostChanges changes the host behind phoenix's back: each change
// shows as the key phoenix would set, add or remove.
func TestDiff_hostChanges(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(t *testing.T, host *sim.Sim)
		want   []string // "key have want"
	}{
		{"a value changed by hand", func(t *testing.T, host *sim.Sim) {
			must(t, host.Set(ctx, api.KindLXC, 941, map[string]string{"cores": "2"}))
		}, []string{"cores 2 6"}},
		{"an extra mount point phoenix manages", func(t *testing.T, host *sim.Sim) {
			must(t, host.Set(ctx, api.KindLXC, 941, map[string]string{"mp7": "local:8,mp=/extra"}))
		}, []string{"mp7 local:8,mp=/extra "}},
		{"a key phoenix does not manage is left out", func(t *testing.T, host *sim.Sim) {
			must(t, host.Set(ctx, api.KindLXC, 941, map[string]string{"description": "hand-made note"}))
		}, nil},
		{"a missing guest", func(t *testing.T, host *sim.Sim) {
			must(t, host.Stop(ctx, api.KindLXC, 941))
			must(t, host.Destroy(ctx, api.KindLXC, 941))
		}, []string{"guest absent present"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provisioned(t)
			host := h.simHost()
			tt.change(t, host)
			host.Close()
			code, doc := runDiffJSON(t, h, "941")
			var got []string
			for _, c := range doc.Changes {
				if c.ID == "941" {
					got = append(got, c.Key+" "+c.Have+" "+c.Want)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("changes %q, want %q", got, tt.want)
			}
			if wantCode := min(len(tt.want), 1); code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDiff_missingSnapshot(t *testing.T) {
	h := newHarness(t, referenceLab)
	// Create 900 alone, then the spec asks for a template snapshot it never
	// took.
	h.mustRun("create", "900")
	h.editGuest("900", "template_snapshot_name", "golden-2")
	code, out, _ := h.run("diff", "900")
	if code != 1 || !strings.Contains(out, "900 snapshot golden-2: absent -> present") {
		t.Errorf("diff 900: exit %d\n%s", code, out)
	}
}

func TestDryRun_showsChangesPerAction(t *testing.T) {
	h := provisioned(t)
	h.editGuest("941", "memory_mb", 96000)
	before := h.hostSnapshot()
	out := h.mustRun("converge", "941", "--dry-run")
	lines := strings.Split(out, "\n")
	at := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "create  941") {
			at = i
		}
	}
	if at < 0 || at+1 >= len(lines) || strings.TrimSpace(lines[at+1]) != "memory: 72000 -> 96000" {
		t.Errorf("converge --dry-run does not show 941's memory change under its action:\n%s", out)
	}
	if !strings.Contains(out, "create  900") || !strings.Contains(out, "no change on the host") {
		t.Errorf("unchanged chain members are not marked:\n%s", out)
	}
	code, doc, _ := h.runJSON("create", "941", "--dry-run")
	if code != 0 {
		t.Fatalf("create --dry-run -o json: exit %d", code)
	}
	for _, a := range doc.Actions {
		switch {
		case a.ID == "941" && (len(a.Changes) != 1 || a.Changes[0].Key != "memory" || a.Changes[0].Want != "96000"):
			t.Errorf("941's changes %+v, want memory -> 96000", a.Changes)
		case a.ID != "941" && len(a.Changes) != 0:
			t.Errorf("%s (%s) lists changes %+v", a.ID, a.Action, a.Changes)
		}
	}
	if after := h.hostSnapshot(); !equalSnap(before, after) {
		t.Error("a dry run changed the host")
	}

	// On an empty host every guest of the chain is missing.
	empty := newHarness(t, referenceLab)
	_, doc, _ = empty.runJSON("create", "941", "--dry-run")
	for _, a := range doc.Actions {
		if len(a.Changes) != 1 || a.Changes[0].Key != "guest" || a.Changes[0].Have != "absent" {
			t.Errorf("%s on an empty host: changes %+v, want guest absent -> present", a.ID, a.Changes)
		}
	}
}

func TestStatus_showsOutOfDate(t *testing.T) {
	h := provisioned(t)
	h.editGuest("941", "cores", 3)
	out := h.mustRun("status")
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = l
		}
	}
	if !strings.Contains(rows["ID"], "SPEC") || !strings.Contains(rows["941"], "out of date") || !strings.Contains(rows["900"], "current") {
		t.Errorf("status does not show 941 out of date and 900 current:\n%s", out)
	}
	var v StatusView
	if err := json.Unmarshal([]byte(h.mustRun("status", "941", "-o", "json")), &v); err != nil || !v.OutOfDate {
		t.Errorf("status 941 -o json: outOfDate %v (%v)", v.OutOfDate, err)
	}
	// Applying it brings it back.
	h.mustRun("create", "941")
	if err := json.Unmarshal([]byte(h.mustRun("status", "941", "-o", "json")), &v); err != nil || v.OutOfDate {
		t.Errorf("after create 941, outOfDate %v (%v)", v.OutOfDate, err)
	}
}

// TestDiff_realBackendsAfterLetsGo: on the fake pct/qm, a freshly provisioned lab shows no difference (values Proxmox
// rewrites when it stores them are no change), diff issues no mutating
// command, and an edit shows up.
func TestDiff_pveAfterLetsGo(t *testing.T) {
	{
		p := newPVEHarness(t, exampleLab)
		p.mustRun("LetsGo")
		p.calls()
		if code, out, errOut := p.run("diff"); code != 0 {
			t.Errorf("diff after LetsGo: exit %d\n%s%s", code, out, errOut)
		}
		if m := mutating(p.calls()); len(m) > 0 {
			t.Errorf("diff issued mutating commands: %v", m)
		}
		p.editGuest("941", "cores", 3)
		if code, out, _ := p.run("diff", "941"); code != 1 || !strings.Contains(out, "941 cores: ") {
			t.Errorf("diff 941 after an edit: exit %d\n%s", code, out)
		}
	}
}
