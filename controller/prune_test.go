package controller_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// A guest file that disappears for a moment (an editor's save, a ConfigMap
// swap) is not "no guests": with --prune and no grace, nothing is
// orphaned or destroyed, and the file's return is just a reload.
func TestController_missingFileDestroysNothing(t *testing.T) {
	l := newLab(t)
	// No container depends on a VM, so the containers alone are valid.
	lxc, err := sjson.SetBytes(l.read(api.LXCFile), "lxc_configs.954.dependencies", []string{"953"})
	if err != nil {
		t.Fatal(err)
	}
	l.write(api.LXCFile, lxc)
	r := l.start(func(o *controller.Options) { o.Prune, o.PruneGrace, o.PruneMax = true, 0, 0 }, nil)
	r.waitReady()
	r.idle()
	// The VM file: without it the containers still make a valid state,
	// in which the VMs would simply be gone.
	data := l.read(api.VMFile)
	if err := os.Remove(l.file(api.VMFile)); err != nil {
		t.Fatal(err)
	}
	reads := len(r.logLines("Config read"))
	waitFor(t, "the reload that finds the file missing", func() (bool, string) {
		return len(r.logLines("Config read")) > reads, "no reload"
	})
	time.Sleep(300 * time.Millisecond)
	r.idle()
	l.write(api.VMFile, data)
	r.idle()
	for _, id := range exampleIDs {
		if kindOf(id) != api.KindVM {
			continue
		}
		if _, ok := l.guest(api.KindVM, id); !ok {
			t.Errorf("VM %d was destroyed while its file was missing", id)
		}
		if st := l.status(id); st.Phase == api.PhaseOrphaned {
			t.Errorf("VM %d was marked Orphaned while its file was missing", id)
		}
	}
	if got := r.metric("phoenix_prunes_total", map[string]string{"result": "success"}); got != 0 {
		t.Errorf("phoenix_prunes_total{success} = %v, want 0", got)
	}
}

// --prune waits --prune-grace, and refuses to destroy more than
// --prune-max guests that left the files at once.
func TestController_pruneGraceAndMax(t *testing.T) {
	l := newLab(t)
	r := l.start(func(o *controller.Options) { o.Prune, o.PruneGrace, o.PruneMax = true, 400*time.Millisecond, 1 }, nil)
	r.waitReady()
	r.idle()
	orig := l.read(api.LXCFile)
	data, err := sjson.DeleteBytes(orig, "lxc_configs.956")
	if err == nil {
		data, err = sjson.DeleteBytes(data, "lxc_configs.954")
	}
	if err != nil {
		t.Fatal(err)
	}
	l.write(api.LXCFile, data)
	waitFor(t, "a refused prune", func() (bool, string) {
		got := r.metric("phoenix_prunes_total", map[string]string{"result": "refused"})
		return got > 0, fmt.Sprint(got)
	})
	for _, id := range []api.ID{954, 956} {
		if _, ok := l.guest(api.KindLXC, id); !ok {
			t.Errorf("%d destroyed although two guests left at once and --prune-max is 1", id)
		}
		if st := l.status(id); st.Phase != api.PhaseOrphaned {
			t.Errorf("%d: phase %s, want Orphaned", id, st.Phase)
		}
	}

	// One guest gone: destroyed once the grace has passed (when exactly:
	// TestPrunePolicy_graceAndMax, against durations no slow machine
	// blurs).
	data, _ = sjson.DeleteBytes(orig, "lxc_configs.956")
	l.write(api.LXCFile, data)
	// The log line comes after the destroy and the metric: waiting for the
	// guest to be gone alone races them.
	waitFor(t, "956 pruned", func() (bool, string) {
		_, ok := l.guest(api.KindLXC, 956)
		return !ok && len(r.logLines("Pruned guest removed from the files")) > 0, fmt.Sprintf("on the host: %v", ok)
	})
	if got := r.metric("phoenix_prunes_total", map[string]string{"result": "success"}); got != 1 {
		t.Errorf("phoenix_prunes_total{success} = %v, want 1", got)
	}
	if len(r.logLines("Pruned guest removed from the files")) != 1 {
		t.Error("the prune was not logged")
	}
	if _, ok := l.guest(api.KindLXC, 954); !ok {
		t.Error("954, back in the files, was destroyed")
	}
}

// --prune-max 0 is no bound: every guest that left the files is
// destroyed, however many left at once.
func TestController_pruneMaxZeroIsUnbounded(t *testing.T) {
	l := newLab(t)
	r := l.start(func(o *controller.Options) { o.Prune, o.PruneGrace, o.PruneMax = true, 0, 0 }, nil)
	r.waitReady()
	r.idle()
	data, err := sjson.DeleteBytes(l.read(api.LXCFile), "lxc_configs.956")
	if err == nil {
		data, err = sjson.DeleteBytes(data, "lxc_configs.954")
	}
	if err != nil {
		t.Fatal(err)
	}
	l.write(api.LXCFile, data)
	waitFor(t, "954 and 956 pruned", func() (bool, string) {
		got := r.metric("phoenix_prunes_total", map[string]string{"result": "success"})
		refused := r.metric("phoenix_prunes_total", map[string]string{"result": "refused"})
		return got == 2 || refused > 0, fmt.Sprintf("%v pruned, %v refused", got, refused)
	})
	if got := r.metric("phoenix_prunes_total", map[string]string{"result": "refused"}); got != 0 {
		t.Errorf("phoenix_prunes_total{refused} = %v with --prune-max 0, want 0", got)
	}
	for _, id := range []api.ID{954, 956} {
		if _, ok := l.guest(api.KindLXC, id); ok {
			t.Errorf("%d is still on the host after it left the files with --prune-max 0", id)
		}
	}
}

// A guest ID moved from the LXC file to the VM file is refused with a
// condition; the container stays and no VM is built under its ID.
func TestController_kindMoveRefused(t *testing.T) {
	l := newLab(t)
	r := l.start(nil, nil)
	r.waitReady()
	r.idle()
	lxc, err := sjson.DeleteBytes(l.read(api.LXCFile), "lxc_configs.956")
	if err != nil {
		t.Fatal(err)
	}
	vm, err := sjson.SetRawBytes(l.read(api.VMFile), "vms.-1", []byte(`{"vmid": 956, "name": "moved", "template_image": "noble.img"}`))
	if err != nil {
		t.Fatal(err)
	}
	// Both files at once, as far as the debounce can tell.
	l.write(api.VMFile, vm)
	l.write(api.LXCFile, lxc)
	waitFor(t, "956 refused", func() (bool, string) {
		st := l.status(956)
		return st.Phase == api.PhaseFailed && strings.Contains(st.LastError, "moved from the lxc file to the vm file"), string(st.Phase) + ": " + st.LastError
	})
	r.idle()
	if _, ok := l.guest(api.KindLXC, 956); !ok {
		t.Error("the container 956 was destroyed")
	}
	if _, ok := l.guest(api.KindVM, 956); ok {
		t.Error("a VM 956 was built over the container's ID")
	}
}

// The same move with no status file to tell (a fresh state dir, or a
// container made by hand): the host holds 956 as a container while the VM
// file has it. Refused with a condition from what the host shows.
func TestController_kindMoveRefusedFromTheHost(t *testing.T) {
	l := newLab(t)
	lxc, err := sjson.DeleteBytes(l.read(api.LXCFile), "lxc_configs.956")
	if err != nil {
		t.Fatal(err)
	}
	vm, err := sjson.SetRawBytes(l.read(api.VMFile), "vms.-1", []byte(`{"vmid": 956, "name": "moved", "template_image": "noble.img"}`))
	if err != nil {
		t.Fatal(err)
	}
	l.write(api.VMFile, vm)
	l.write(api.LXCFile, lxc)
	if err := l.host.Create(context.Background(), api.KindLXC, 956, hypervisor.CreateSpec{Source: "local:vztmpl/debian-12.tar.zst", DiskGB: 8, Config: map[string]string{"hostname": "by-hand"}}); err != nil {
		t.Fatal(err)
	}
	before, _ := l.guest(api.KindLXC, 956)
	r := l.start(nil, nil)
	waitFor(t, "956 refused", func() (bool, string) {
		st := l.status(956)
		c := st.Condition(api.ConditionReady)
		return st.Phase == api.PhaseFailed && c != nil && c.Status == "False" && strings.Contains(c.Message, "the host has 956 as an LXC container"), string(st.Phase) + ": " + st.LastError
	})
	r.idle()
	if after, ok := l.guest(api.KindLXC, 956); !ok || after.Config["hostname"] != before.Config["hostname"] {
		t.Errorf("the container 956 was changed: %+v", after)
	}
	if _, ok := l.guest(api.KindVM, 956); ok {
		t.Error("a VM 956 was built over the container's ID")
	}
	if len(r.logLines("Refusing a guest the host has as the other kind")) == 0 {
		t.Error("the refusal is not logged")
	}
}
