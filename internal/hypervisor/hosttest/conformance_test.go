package hosttest_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pve/fakepvetest"
	fakepveapi "github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/hosttest"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/pve"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
)

// TestHostConformance runs the one Host contract on every backend. Not in
// parallel: the pve target points the fake pct/qm at its state through the
// environment.
func TestHostConformance(t *testing.T) {
	t.Run("sim", func(t *testing.T) { hosttest.Run(t, simTarget) })
	t.Run("pve", func(t *testing.T) { hosttest.Run(t, pveTarget) })
	t.Run("pve-api", func(t *testing.T) { hosttest.Run(t, pveapiTarget) })
}

func simTarget(t *testing.T) hosttest.Target {
	dir := t.TempDir()
	s, err := sim.New(sim.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return hosttest.Target{
		Host: s, Source: "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst", Storage: "local-zfs",
		VMSource: "/var/lib/vz/template/iso/noble-server-cloudimg-amd64.img",
		Lock: func(t *testing.T, kind api.Kind, id api.ID) {
			// A backup job locks the guest in its config, as on Proxmox.
			if err := s.Set(context.Background(), kind, id, map[string]string{"lock": "backup"}); err != nil {
				t.Fatal(err)
			}
		},
		Mutations: func(t *testing.T) int { return lines(t, filepath.Join(dir, "ops.log")) },
	}
}

// pveReads are the pct/qm verbs that change nothing.
var pveReads = map[string]bool{"status": true, "config": true, "list": true, "listsnapshot": true, "pending": true}

func pveTarget(t *testing.T) hosttest.Target {
	bin, state, log := fakepvetest.Install(t)
	h := pve.New(pve.Options{
		Pct: filepath.Join(bin, "pct"), Qm: filepath.Join(bin, "qm"), Timeout: 30 * time.Second,
		LXCConfDir: fakepvetest.LXCConfDir(state), LXCLockDir: fakepvetest.LXCLockDir(state),
		LockRetries: 2, LockBackoff: time.Millisecond,
	})
	return hosttest.Target{
		Host: h, Source: "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst", Storage: "local-zfs",
		VMSource: "/var/lib/vz/template/iso/noble-server-cloudimg-amd64.img",
		Lock: func(t *testing.T, kind api.Kind, id api.ID) {
			tool := "pct"
			if kind == api.KindVM {
				tool = "qm"
			}
			if out, err := exec.Command(filepath.Join(bin, tool), "set", id.String(), "--lock", "backup").CombinedOutput(); err != nil {
				t.Fatalf("lock %s: %v\n%s", id, err, out)
			}
		},
		Mutations: func(t *testing.T) int {
			n := 0
			for _, c := range fakepvetest.ReadLog(t, log) {
				if len(c.Argv) > 0 && !pveReads[c.Argv[0]] {
					n++
				}
			}
			return n
		},
	}
}

func pveapiTarget(t *testing.T) hosttest.Target {
	const tokenID, secret = "root@pam!phoenix", "0b9c6d5e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
	fake := fakepveapi.New(fakepveapi.Options{TokenID: tokenID, Secret: secret, TaskDuration: 2 * time.Millisecond})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { fake.Close(); srv.Close() })
	token, err := pveapi.ParseToken(tokenID + "=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	h, err := pveapi.New(pveapi.Options{URL: srv.URL, Token: token, DefaultNode: "pve1", Timeout: 5 * time.Second,
		TaskPoll: 2 * time.Millisecond, TaskTimeout: 10 * time.Second, Retries: 2, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return hosttest.Target{
		Host: h, Source: "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst", Storage: "shared",
		VMSource: "local:import/noble-server-cloudimg-amd64.qcow2",
		Lock: func(t *testing.T, _ api.Kind, id api.ID) {
			g := fake.Guest(int(id))
			if g == nil {
				t.Fatalf("lock %s: no such guest on the fake cluster", id)
			}
			g.Lock = "backup"
			fake.AddGuest(*g)
		},
		Mutations: func(t *testing.T) int {
			n := 0
			for _, r := range fake.Requests() {
				if r.Method != http.MethodGet {
					n++
				}
			}
			return n
		},
	}
}

func lines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for sc := bufio.NewScanner(bytes.NewReader(data)); sc.Scan(); {
		n++
	}
	return n
}
