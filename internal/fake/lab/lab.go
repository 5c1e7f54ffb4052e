// Package lab generates large, valid phoenix labs: the three desired-state files
// (phoenix_lxc_configs.json, phoenix_vm_configs.json, phoenix_hypervisor_config.json)
// for scale tests, benchmarks and controller soak runs against the sim backend.
//
// The lab has the shapes that stress the planner and the reconcilers:
//
//   - deep clone chains for both kinds: template families of -depth levels, each level
//     cloned from the one above (LXC via clone_from_ctid, VM via clone_from_vmid);
//   - wide fan-out: about a third of all clones come from one "hot" template per kind;
//   - shared gateways: a few nginx LXCs that nearly every guest lists in dependencies,
//     and database VMs that many containers depend on;
//   - cross-kind runtime edges: containers depend on VMs and VMs depend on containers.
//
// Every edge (clone source or dependency) points to a guest generated earlier, so the
// graph never has a cycle. Dependencies never point to templates. IDs are unique across
// kinds (containers from 1000 upward, VMs from 100000000 upward), and so are MAC
// addresses (52:54:00:xx:xx:xx) and IP addresses (10.A.B.C/16, gateway 10.A.0.1).
// The same flags and -seed always give the same bytes.
//
// Feature and application script names are those of config/examples/scripts, so that
// folder can serve a generated lab too.
//
// Tests import it (internal/testlab caches labs per size); hack/genlab is
// its command:
//
//	go run ./hack/genlab -n 10000 -out /tmp/lab10k
//	phoenix --config-dir /tmp/lab10k --backend sim validate
package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

const (
	lxcBase = 1000        // first container ID
	vmBase  = 100_000_000 // first VM ID; containers must stay below it
	maxID   = 999_999_999
	// 10.A.B.C/16 with A in 1..254, B in 1..250, C in 2..251: 62500 hosts per /16.
	hostsPerNet = 250 * 250
	maxGuests   = 254 * hostsPerNet // also below the 2^24 MACs of 52:54:00:xx:xx:xx

	lxcOSTemplate = "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
	vmImage       = "noble-server-cloudimg-amd64.img"
)

// Options are the generator's inputs.
type Options struct {
	N       int     // total guests
	VMShare float64 // fraction of guests that are VMs
	Depth   int     // clone chain depth (templates per family)
	Seed    uint64
}

// Defaults are the options of hack/genlab without flags.
func Defaults() Options { return Options{N: 10000, VMShare: 0.2, Depth: 6, Seed: 1} }

type lxcNet struct {
	Name   string `json:"name"`
	Bridge string `json:"bridge"`
	IP     string `json:"ip"`
	GW     string `json:"gw"`
}

type vmNet struct {
	IP          string   `json:"ip"`
	GW          string   `json:"gw"`
	Nameservers []string `json:"nameservers,omitempty"`
}

type volume struct {
	Name       string `json:"name"`
	Pool       string `json:"pool"`
	SizeGB     int    `json:"size_gb"`
	MountPoint string `json:"mount_point"`
}

type healthCheck struct {
	Command  string `json:"command"`
	Retries  int    `json:"retries"`
	Interval int    `json:"interval"`
}

// spec is one guest as written to the files (field order is output order).
type spec struct {
	VMID                     int          `json:"vmid,omitempty"`
	Name                     string       `json:"name"`
	CloneFromCTID            string       `json:"clone_from_ctid,omitempty"`
	CloneFromVMID            int          `json:"clone_from_vmid,omitempty"`
	Template                 string       `json:"template,omitempty"`
	TemplateImage            string       `json:"template_image,omitempty"`
	IsTemplate               bool         `json:"is_template,omitempty"`
	TemplateSnapshotName     string       `json:"template_snapshot_name,omitempty"`
	MemoryMB                 int          `json:"memory_mb,omitempty"`
	Cores                    int          `json:"cores,omitempty"`
	StoragePool              string       `json:"storage_pool,omitempty"`
	StorageSizeGB            int          `json:"storage_size_gb,omitempty"`
	DiskSizeGB               int          `json:"disk_size_gb,omitempty"`
	NetworkConfig            any          `json:"network_config"`
	MACAddress               string       `json:"mac_address"`
	GPUAssignment            string       `json:"gpu_assignment,omitempty"`
	Unprivileged             *bool        `json:"unprivileged,omitempty"`
	Features                 []string     `json:"features,omitempty"`
	ApplicationScript        string       `json:"application_script,omitempty"`
	Dependencies             []any        `json:"dependencies,omitempty"`
	StartAtBoot              *bool        `json:"start_at_boot,omitempty"`
	BootOrder                int          `json:"boot_order,omitempty"`
	EnableLifecycleSnapshots bool         `json:"enable_lifecycle_snapshots,omitempty"`
	HealthCheck              *healthCheck `json:"health_check,omitempty"`
	ZFSVolumes               []volume     `json:"zfs_volumes,omitempty"`
	Role                     string       `json:"genlab_role"` // unknown to phoenix: kept, passed to scripts
}

// guest is a generated guest with its edges.
type guest struct {
	id        int
	vm        bool
	template  bool
	cloneFrom int   // 0: none
	deps      []int // dependency IDs, in declared order
	spec      spec
}

// Lab is a generated lab, guests of each kind in ID order.
type Lab struct {
	opts Options
	lxc  []*guest
	vms  []*guest
}

type vmDefaults struct {
	Cores         int    `json:"cores"`
	MemoryMB      int    `json:"memory_mb"`
	DiskSizeGB    int    `json:"disk_size_gb"`
	StoragePool   string `json:"storage_pool"`
	NetworkBridge string `json:"network_bridge"`
	StartAtBoot   bool   `json:"start_at_boot"`
}

// Generate builds a lab from o. It does not touch the file system.
func Generate(o Options) (*Lab, error) {
	switch {
	case o.N < 1 || o.N > maxGuests:
		return nil, fmt.Errorf("-n must be in 1..%d, got %d", maxGuests, o.N)
	case !(o.VMShare >= 0 && o.VMShare <= 1):
		return nil, fmt.Errorf("-vm-share must be in 0..1, got %v", o.VMShare)
	case o.Depth < 1:
		return nil, fmt.Errorf("-depth must be at least 1, got %d", o.Depth)
	}
	nVM := int(math.Round(float64(o.N) * o.VMShare))
	nLXC := o.N - nVM
	if lxcBase+nLXC > vmBase || vmBase+nVM-1 > maxID {
		return nil, errors.New("too many guests for the ID ranges")
	}
	g := &generator{
		lab: &Lab{opts: o},
		rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
	}
	g.build(nLXC, nVM)
	return g.lab, nil
}

type generator struct {
	lab     *Lab
	rng     *rand.Rand
	seq     int // guests generated so far: index for IP and MAC
	nextLXC int
	nextVM  int

	lxcTpl, vmTpl []*guest // templates, in generation order
	lxcGW, vmGW   []*guest // shared gateways
	runnable      []*guest // non-templates generated so far (dependency candidates)
	lxcApps       int
	vmApps        int
}

// templateCount is how many of k guests of one kind are templates: about 4%,
// at least one full chain when there is room, at most half.
func templateCount(k, depth int) int {
	if k == 0 {
		return 0
	}
	t := max(k/25, depth)
	t = min(t, k/2)
	return max(t, 1)
}

func (g *generator) build(nLXC, nVM int) {
	d := g.lab.opts.Depth
	tl, tv := templateCount(nLXC, d), templateCount(nVM, d)
	for i := range tl {
		g.addTemplate(false, i)
	}
	for i := range tv {
		g.addTemplate(true, i)
	}
	// Shared gateways: nginx containers first, then database VMs (which depend on them).
	gl := min(1+nLXC/2000, nLXC-tl)
	for i := range gl {
		g.addGateway(false, i)
	}
	gv := 0
	if nVM-tv >= 2 {
		gv = min(1+nVM/1000, (nVM-tv)/2)
	}
	for i := range gv {
		g.addGateway(true, i)
	}
	// Applications, kinds interleaved so that edges cross kinds in both directions.
	rl, rv := nLXC-tl-gl, nVM-tv-gv
	for rl+rv > 0 {
		if g.rng.IntN(rl+rv) < rv {
			g.addApp(true)
			rv--
		} else {
			g.addApp(false)
			rl--
		}
	}
}

// newGuest allocates the next ID of a kind and the next IP and MAC.
func (g *generator) newGuest(vm bool, name string) *guest {
	x := &guest{vm: vm}
	a, b, c := 1+g.seq/hostsPerNet, 1+(g.seq/250)%250, 2+g.seq%250
	ip := fmt.Sprintf("10.%d.%d.%d/16", a, b, c)
	gw := fmt.Sprintf("10.%d.0.1", a)
	m := g.seq + 1
	mac := fmt.Sprintf("52:54:00:%02X:%02X:%02X", m>>16&0xff, m>>8&0xff, m&0xff)
	g.seq++
	if vm {
		x.id = vmBase + g.nextVM
		g.nextVM++
		x.spec = spec{VMID: x.id, NetworkConfig: vmNet{IP: ip, GW: gw, Nameservers: []string{gw}}}
		g.lab.vms = append(g.lab.vms, x)
	} else {
		x.id = lxcBase + g.nextLXC
		g.nextLXC++
		x.spec = spec{
			NetworkConfig: lxcNet{Name: "eth0", Bridge: "vmbr0", IP: ip, GW: gw},
			StoragePool:   "local-zfs",
			Unprivileged:  ptr(true),
		}
		g.lab.lxc = append(g.lab.lxc, x)
	}
	x.spec.Name = name
	x.spec.MACAddress = mac
	return x
}

// templateFeatures is the feature a template of a given chain level adds.
var templateFeatures = []string{"base_setup", "nvidia", "docker", "vllm", "ollama", "docker"}

// addTemplate adds template i of a kind. Template i is level i%depth of family i/depth;
// level 0 comes from an OS template or cloud image, every other level clones the level
// above (family 0 is a pure chain; later families sometimes branch off a higher level).
func (g *generator) addTemplate(vm bool, i int) {
	d := g.lab.opts.Depth
	fam, level := i/d, i%d
	kind, tpls := "lxc", &g.lxcTpl
	if vm {
		kind, tpls = "vm", &g.vmTpl
	}
	x := g.newGuest(vm, fmt.Sprintf("tpl-%s-f%03d-l%d", kind, fam, level))
	x.template = true
	s := &x.spec
	s.TemplateSnapshotName = fmt.Sprintf("golden-l%d", level)
	s.StartAtBoot = ptr(false)
	s.Role = "template"
	if level > 0 {
		src := (*tpls)[i-1]
		if fam > 0 && level >= 2 && g.rng.IntN(4) == 0 {
			src = (*tpls)[fam*d+g.rng.IntN(level)]
		}
		x.cloneFrom = src.id
	}
	if vm {
		s.IsTemplate = true
		s.Cores, s.MemoryMB, s.DiskSizeGB = 2, 2048, 32
		if level == 0 {
			s.TemplateImage = vmImage
		}
		if level > 0 {
			s.Features = []string{[]string{"docker", "postgres"}[level%2]}
		}
	} else {
		s.Cores, s.MemoryMB, s.StorageSizeGB = 2, 2048, 32
		s.Features = []string{templateFeatures[level%len(templateFeatures)]}
		if level == 0 {
			s.Template = lxcOSTemplate
			s.EnableLifecycleSnapshots = true
		}
		if s.Features[0] == "nvidia" || s.Features[0] == "vllm" {
			s.GPUAssignment = "0,1"
		}
	}
	*tpls = append(*tpls, x)
}

// addGateway adds a shared gateway: an nginx container or a database VM cloned from the
// base template of family 0. Database VMs depend on an nginx container.
func (g *generator) addGateway(vm bool, i int) {
	var x *guest
	if vm {
		x = g.newGuest(true, fmt.Sprintf("db-vm-%02d", i))
		x.spec.Features = []string{"postgres"}
		x.spec.Cores, x.spec.MemoryMB, x.spec.DiskSizeGB = 4, 8192, 100
		x.spec.BootOrder = 2
		x.spec.Role = "database"
		if len(g.lxcGW) > 0 {
			x.deps = []int{g.lxcGW[i%len(g.lxcGW)].id}
		}
		if len(g.vmTpl) > 0 {
			x.cloneFrom = g.vmTpl[0].id
		} else {
			x.spec.TemplateImage = vmImage
		}
		g.vmGW = append(g.vmGW, x)
	} else {
		x = g.newGuest(false, fmt.Sprintf("gw-nginx-%02d", i))
		x.spec.ApplicationScript = "phoenix_hypervisor_lxc_953.sh"
		x.spec.Cores, x.spec.MemoryMB, x.spec.StorageSizeGB = 2, 2048, 32
		x.spec.BootOrder = 1
		x.spec.Role = "gateway"
		x.spec.HealthCheck = &healthCheck{Command: "curl -s --fail http://localhost/healthz", Retries: 5, Interval: 2}
		if len(g.lxcTpl) > 0 {
			x.cloneFrom = g.lxcTpl[0].id
		} else {
			x.spec.Template = lxcOSTemplate
		}
		g.lxcGW = append(g.lxcGW, x)
	}
	x.spec.StartAtBoot = ptr(true)
	g.runnable = append(g.runnable, x)
}

// lxcProfiles are the application containers: script and extra features.
var lxcProfiles = []struct {
	app  string
	feat []string
}{
	{"phoenix_hypervisor_lxc_952.sh", nil},
	{"phoenix_hypervisor_lxc_954.sh", nil},
	{"phoenix_hypervisor_lxc_955.sh", []string{"ollama"}},
	{"phoenix_hypervisor_lxc_956.sh", []string{"docker"}},
	{"phoenix_hypervisor_lxc_vllm.sh", nil},
}

// pickTemplate returns a clone source: the deepest template of family 0 (the hot one)
// a third of the time, else any template.
func (g *generator) pickTemplate(tpls []*guest) *guest {
	if len(tpls) == 0 {
		return nil
	}
	if g.rng.IntN(3) == 0 {
		return tpls[min(g.lab.opts.Depth, len(tpls))-1]
	}
	return tpls[g.rng.IntN(len(tpls))]
}

// addApp adds an application guest. Its dependencies: a gateway of the other kind's
// stack (an nginx container; for containers sometimes a database VM too), and now and
// then any earlier application of either kind.
func (g *generator) addApp(vm bool) {
	r := g.rng
	var x *guest
	var deps []int
	if vm {
		x = g.newGuest(true, fmt.Sprintf("app-vm-%d", vmBase+g.nextVM))
		x.spec.Features = []string{[]string{"docker", "postgres"}[r.IntN(2)]}
		if r.IntN(2) == 0 { // the rest inherit vm_defaults
			x.spec.Cores = 1 << r.IntN(4)
			x.spec.MemoryMB = 1024 << r.IntN(5)
			x.spec.DiskSizeGB = 16 << r.IntN(4)
		}
		x.spec.Role = "app"
		if t := g.pickTemplate(g.vmTpl); t != nil {
			x.cloneFrom = t.id
		} else {
			x.spec.TemplateImage = vmImage
		}
		if len(g.lxcGW) > 0 {
			deps = append(deps, g.lxcGW[g.skewed(len(g.lxcGW))].id)
		}
		g.vmApps++
	} else {
		x = g.newGuest(false, fmt.Sprintf("app-lxc-%d", lxcBase+g.nextLXC))
		p := lxcProfiles[r.IntN(len(lxcProfiles))]
		x.spec.ApplicationScript = p.app
		x.spec.Features = p.feat
		x.spec.Cores = 1 << r.IntN(3)
		x.spec.MemoryMB = 1024 << r.IntN(4)
		x.spec.StorageSizeGB = 8 << r.IntN(4)
		x.spec.Role = "app"
		if t := g.pickTemplate(g.lxcTpl); t != nil && r.IntN(20) != 0 {
			x.cloneFrom = t.id
		} else {
			x.spec.Template = lxcOSTemplate
			x.spec.Features = append([]string{"base_setup"}, p.feat...)
		}
		if len(g.lxcGW) > 0 {
			deps = append(deps, g.lxcGW[g.skewed(len(g.lxcGW))].id)
		}
		// The first container always needs a database VM, so small labs cross kinds too.
		if len(g.vmGW) > 0 && (g.lxcApps == 0 || r.IntN(6) == 0) {
			deps = append(deps, g.vmGW[r.IntN(len(g.vmGW))].id)
		}
		switch r.IntN(20) {
		case 0:
			x.spec.HealthCheck = &healthCheck{Command: "curl -s --fail http://localhost:8080/", Retries: 3, Interval: 5}
		case 1:
			x.spec.ZFSVolumes = []volume{{Name: "data", Pool: "fastData-shared-bulk-data", SizeGB: 10 << r.IntN(3), MountPoint: "/data"}}
		}
		g.lxcApps++
	}
	if len(g.runnable) > 0 && r.IntN(5) == 0 {
		deps = append(deps, g.runnable[r.IntN(len(g.runnable))].id)
	}
	x.deps = dedupe(deps)
	x.spec.StartAtBoot = ptr(r.IntN(10) != 0)
	x.spec.BootOrder = 3 + r.IntN(5)
	g.runnable = append(g.runnable, x)
}

// skewed picks an index in [0,n): index 0 half of the time, so the first gateway is the
// one nearly everything depends on.
func (g *generator) skewed(n int) int {
	if g.rng.IntN(2) == 0 {
		return 0
	}
	return g.rng.IntN(n)
}

func dedupe(ids []int) []int {
	var out []int
	seen := map[int]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// finalSpec fills in the edge fields: containers write IDs as strings (like the existing
// files), VMs as integers; both forms are valid in either file.
func (x *guest) finalSpec() spec {
	s := x.spec
	if x.cloneFrom != 0 {
		if x.vm {
			s.CloneFromVMID = x.cloneFrom
		} else {
			s.CloneFromCTID = strconv.Itoa(x.cloneFrom)
		}
	}
	for _, d := range x.deps {
		if x.vm {
			s.Dependencies = append(s.Dependencies, d)
		} else {
			s.Dependencies = append(s.Dependencies, strconv.Itoa(d))
		}
	}
	return s
}

// Write writes the three files into dir.
func (l *Lab) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name   string
		render func() ([]byte, error)
	}{
		{"phoenix_lxc_configs.json", l.lxcJSON},
		{"phoenix_vm_configs.json", l.vmJSON},
		{"phoenix_hypervisor_config.json", l.hypervisorJSON},
	} {
		data, err := f.render()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// lxcJSON renders the container file with CTIDs in numeric order.
func (l *Lab) lxcJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("{\n  \"lxc_configs\": {")
	for i, x := range l.lxc {
		if i > 0 {
			b.WriteByte(',')
		}
		data, err := json.MarshalIndent(x.finalSpec(), "    ", "  ")
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n    %q: ", strconv.Itoa(x.id))
		b.Write(data)
	}
	b.WriteString("\n  }\n}\n")
	return b.Bytes(), nil
}

func (l *Lab) vmJSON() ([]byte, error) {
	doc := struct {
		Defaults vmDefaults `json:"vm_defaults"`
		VMs      []spec     `json:"vms"`
	}{
		Defaults: vmDefaults{Cores: 2, MemoryMB: 4096, DiskSizeGB: 32, StoragePool: "local-zfs", NetworkBridge: "vmbr0", StartAtBoot: true},
		VMs:      make([]spec, 0, len(l.vms)),
	}
	for _, x := range l.vms {
		doc.VMs = append(doc.VMs, x.finalSpec())
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	return append(data, '\n'), err
}

func (l *Lab) hypervisorJSON() ([]byte, error) {
	o := l.opts
	doc := map[string]any{
		"version":  "1.0.0",
		"timezone": "UTC",
		"genlab": map[string]any{
			"n": o.N, "vm_share": o.VMShare, "depth": o.Depth, "seed": o.Seed,
			"note": "generated by hack/genlab; regenerate instead of editing",
		},
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	return append(data, '\n'), err
}

// Summary describes the lab in one line: sizes, the deepest clone chain, the largest
// clone fan-out and dependency fan-in, and the cross-kind edge counts.
func (l *Lab) Summary(dir string) string {
	byID := map[int]*guest{}
	for _, x := range append(append([]*guest{}, l.lxc...), l.vms...) {
		byID[x.id] = x
	}
	depth := map[int]int{}
	var chain func(id int) int
	chain = func(id int) int {
		if d, ok := depth[id]; ok {
			return d
		}
		d := 1
		if x := byID[id]; x.cloneFrom != 0 {
			d = 1 + chain(x.cloneFrom)
		}
		depth[id] = d
		return d
	}
	maxDepth, fanOut, fanIn := 0, map[int]int{}, map[int]int{}
	lxcToVM, vmToLXC := 0, 0
	for id, x := range byID {
		maxDepth = max(maxDepth, chain(id))
		if x.cloneFrom != 0 {
			fanOut[x.cloneFrom]++
		}
		for _, d := range x.deps {
			fanIn[d]++
			switch {
			case !x.vm && byID[d].vm:
				lxcToVM++
			case x.vm && !byID[d].vm:
				vmToLXC++
			}
		}
	}
	maxOf := func(m map[int]int) int {
		r := 0
		for _, v := range m {
			r = max(r, v)
		}
		return r
	}
	return fmt.Sprintf("genlab: wrote %s: %d guests (%d lxc, %d vm), clone depth %d, max clones of one template %d, max dependents of one guest %d, lxc->vm deps %d, vm->lxc deps %d",
		dir, len(byID), len(l.lxc), len(l.vms), maxDepth, maxOf(fanOut), maxOf(fanIn), lxcToVM, vmToLXC)
}
