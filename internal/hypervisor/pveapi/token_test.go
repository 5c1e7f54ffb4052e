package pveapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

func TestCheckSource(t *testing.T) {
	tests := []struct {
		kind api.Kind
		src  string
		want string
	}{
		{api.KindLXC, "local:vztmpl/ubuntu.tar.zst", ""},
		{api.KindLXC, "/var/lib/vz/template/cache/ubuntu.tar.zst", `is a file path, and Proxmox answers an API token "Only root can pass arbitrary filesystem paths."; give the template's volume ID`},
		{api.KindLXC, "ubuntu.tar.zst", "is a file path"},
		{api.KindVM, "local:import/noble.qcow2", ""},
		{api.KindVM, "local-lvm:vm-9000-disk-0", ""},
		{api.KindVM, "/var/lib/vz/import/noble.img", "put the image in a storage with content type import and give its volume ID, e.g. local:import/"},
		{api.KindVM, "local:import/noble.img", "import storage takes only .qcow2, .raw, .vmdk, .ova and .ovf files"},
	}
	for _, tt := range tests {
		got := checkSource(tt.kind, tt.src)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s %q: %q, want %q", tt.kind, tt.src, got, tt.want)
		}
	}
}

// TestHost_rootOnlySettings: what only root@pam may set goes through pct
// set over SSH, never in an API request; without SSH it is refused before
// anything is created.
func TestHost_rootOnlySettings(t *testing.T) {
	cfg := map[string]string{"hostname": "gpu", "unprivileged": "1", "features": "nesting=1,keyctl=1", "dev0": "/dev/dri/renderD128"}

	t.Run("with SSH", func(t *testing.T) {
		tc := newTestCluster(t)
		withSSH(t, tc)
		mustCreateLXC(t, tc.host, 100, cfg)
		g := tc.fake.Guest(100)
		if g.Config["features"] != "nesting=1,keyctl=1" || g.Config["dev0"] != "/dev/dri/renderD128" {
			t.Errorf("config %v", g.Config)
		}
		// Nesting alone on an unprivileged container is the token's to set.
		before := len(tc.fake.Requests())
		if err := tc.host.Set(ctx, api.KindLXC, 100, map[string]string{"features": "nesting=1", "dev0": ""}); err != nil {
			t.Fatal(err)
		}
		if g := tc.fake.Guest(100); g.Config["features"] != "nesting=1" || g.Config["dev0"] != "" {
			t.Errorf("after set: %v", g.Config)
		}
		put := false
		for _, r := range tc.fake.Requests()[before:] {
			if r.Method == "PUT" && r.Params["features"] == "nesting=1" {
				put = true
			}
		}
		if !put {
			t.Error("nesting=1 on an unprivileged container did not go through the API")
		}
		for _, r := range tc.fake.Requests() {
			if _, ok := r.Params["dev0"]; ok || strings.Contains(r.Params["features"], "keyctl") {
				t.Errorf("%s %s carried a root-only key: %v", r.Method, r.Path, r.Params)
			}
		}
	})

	t.Run("privileged container", func(t *testing.T) {
		tc := newTestCluster(t)
		withSSH(t, tc)
		tc.fake.AddGuest(fakepveapi.Guest{VMID: 100, Type: "lxc", Node: "pve1", Config: map[string]string{"unprivileged": "0"}})
		if err := tc.host.Set(ctx, api.KindLXC, 100, map[string]string{"features": "nesting=1"}); err != nil {
			t.Fatal(err)
		}
		if g := tc.fake.Guest(100); g.Config["features"] != "nesting=1" {
			t.Errorf("config %v", g.Config)
		}
	})

	t.Run("without SSH", func(t *testing.T) {
		tc := newTestCluster(t)
		err := tc.host.Create(ctx, api.KindLXC, 100, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst", Storage: "shared", Config: cfg})
		if !errors.Is(err, ErrNeedSSH) || !strings.Contains(err.Error(), "dev0, features of container 100: Proxmox lets only root@pam set these") {
			t.Fatalf("err %v", err)
		}
		for _, r := range tc.fake.Requests() {
			if r.Method != "GET" {
				t.Errorf("sent %s %s before refusing", r.Method, r.Path)
			}
		}
	})

	t.Run("template by path", func(t *testing.T) {
		tc := newTestCluster(t)
		err := tc.host.Create(ctx, api.KindLXC, 100, hypervisor.CreateSpec{Source: "/var/lib/vz/template/cache/x.tar.zst", Storage: "shared"})
		if err == nil || !strings.Contains(err.Error(), "Only root can pass arbitrary filesystem paths.") {
			t.Fatalf("err %v", err)
		}
		if tc.fake.Guest(100) != nil {
			t.Error("created")
		}
	})
}

// TestHost_diskWritesAreNotRetriedBlindly: a create whose answer is lost
// after the cluster carried it out is not sent again; a create refused
// before it ran is.
func TestHost_diskWritesAreNotRetriedBlindly(t *testing.T) {
	for _, tt := range []struct {
		name       string
		afterServe bool
		wantErr    string
		wantPosts  int
	}{
		{"answer lost after the work", true, "lxc 100 exists now on node pve1: the first attempt may have made it; not sending it again", 1},
		{"refused before the work", false, "", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestCluster(t)
			tc.fake.InjectHTTP(fakepveapi.HTTPFault{Method: "POST", Path: `^/nodes/pve1/lxc$`, Status: 502, Message: "Bad Gateway", Times: 1, AfterServe: tt.afterServe})
			err := tc.host.Create(ctx, api.KindLXC, 100, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst", Storage: "shared"})
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			posts := 0
			for _, r := range tc.fake.Requests() {
				if r.Method == "POST" && r.Path == "/nodes/pve1/lxc" {
					posts++
				}
			}
			if posts != tt.wantPosts {
				t.Errorf("%d creates sent, want %d", posts, tt.wantPosts)
			}
		})
	}
}

// TestHost_guestTheTokenCannotSee: creating a guest whose ID is taken by
// one the token may not audit says what may be wrong.
func TestHost_guestTheTokenCannotSee(t *testing.T) {
	tc := newTestCluster(t, func(f *fakepveapi.Options, _ *Options) { f.NoAudit = []int{100} })
	tc.fake.AddGuest(fakepveapi.Guest{VMID: 100, Type: "lxc", Node: "pve2"})
	err := tc.host.Create(ctx, api.KindLXC, 100, hypervisor.CreateSpec{Source: "local:vztmpl/x.tar.zst", Storage: "shared"})
	if err == nil || !strings.Contains(err.Error(), "does the token lack VM.Audit on /vms/100?") {
		t.Fatalf("err %v", err)
	}
}

func TestIsLockMessage(t *testing.T) {
	for msg, want := range map[string]bool{
		"CT is locked (disk)":       true,
		"VM 8000 is locked (clone)": true,
		"can't lock file '/run/lock/lxc/pve-config-100.lock' - got timeout": true,
		"command 'zfs snapshot' failed: got timeout":                        false,
		"storage is locked by another process":                              false,
		"":                                                                  false,
	} {
		if got := isLockMessage(msg); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
}
