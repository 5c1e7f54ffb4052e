package pveapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

var (
	_ hypervisor.Host        = (*Host)(nil)
	_ hypervisor.StateReader = (*Host)(nil)
	_ hypervisor.SetupRunner = (*Host)(nil)
	_ hypervisor.Placer      = (*Host)(nil)
)

// Host is a Proxmox VE cluster driven through its REST API.
type Host struct {
	c    *client
	opts Options
	ssh  *sshRunner

	mu  sync.RWMutex
	cfg *api.Config

	idx guestIndex
}

// New returns a Host for the cluster at opts.URL. It does not contact the
// cluster: the first operation does.
func New(opts Options) (*Host, error) {
	opts.defaults()
	c, err := newClient(&opts)
	if err != nil {
		return nil, fmt.Errorf("pve-api: %w", err)
	}
	h := &Host{c: c, opts: opts}
	if opts.SSH.KeyFile != "" {
		s, err := newSSH(opts.SSH, opts.Timeout, h.nodeAddr)
		if err != nil {
			return nil, fmt.Errorf("pve-api: ssh: %w", err)
		}
		h.ssh = s
	}
	return h, nil
}

// Close closes the SSH connections to the nodes.
func (h *Host) Close() error {
	if h.ssh != nil {
		h.ssh.close()
	}
	return nil
}

// SetPlacement gives the host the desired state it reads guests' node
// fields from (hypervisor.Placer). Call it again after a reload.
func (h *Host) SetPlacement(cfg *api.Config) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cfg = cfg
}

// wantedNode is the node field of a guest, or "".
func (h *Host) wantedNode(id api.ID) string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.cfg == nil {
		return ""
	}
	if g := h.cfg.Guest(id); g != nil {
		return g.Spec.Node
	}
	return ""
}

// apiType is the API's word for a kind.
func apiType(kind api.Kind) (string, error) {
	switch kind {
	case api.KindLXC:
		return "lxc", nil
	case api.KindVM:
		return "qemu", nil
	}
	return "", fmt.Errorf("unknown guest kind %q", kind)
}

// flexInt decodes a number Proxmox may send as a number or a string.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return err
	}
	*f = flexInt(n)
	return nil
}

// location is where a guest lives.
type location struct {
	node string
	typ  string
	// base is /nodes/{node}/{type}/{vmid}.
	base string
}

// resource is an entry of GET /cluster/resources?type=vm.
type resource struct {
	VMID     flexInt `json:"vmid"`
	Type     string  `json:"type"`
	Node     string  `json:"node"`
	Status   string  `json:"status"`
	Template flexInt `json:"template"`
	Lock     string  `json:"lock"`
}

// resourceList is the whole answer. An entry without a guest ID or node
// fails the list: taking it for "no such guest" would create a guest
// twice.
type resourceList []resource

func (l resourceList) check() error {
	for i, r := range l {
		if r.Type != "lxc" && r.Type != "qemu" {
			continue
		}
		if r.VMID <= 0 || r.VMID > 999999999 {
			return fmt.Errorf("entry %d (%s): no valid vmid", i, r.Type)
		}
		if !nodeNameRE.MatchString(r.Node) {
			return fmt.Errorf("entry %d (%s %d): node %q is not a node name", i, r.Type, r.VMID, truncate(r.Node, 60))
		}
	}
	return nil
}

// nodeNameRE is a Proxmox node name (pve-node format): it goes into
// request paths, so nothing else is accepted.
var nodeNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// guestStatus is GET .../status/current.
type guestStatus struct {
	Status   *string `json:"status"`
	Template flexInt `json:"template"`
}

func (s *guestStatus) check() error {
	if s.Status == nil {
		return errors.New("no status")
	}
	return nil
}

// snapshotList is GET .../snapshot.
type snapshotList []struct {
	Name string `json:"name"`
}

func (l snapshotList) check() error {
	for i, s := range l {
		if s.Name == "" {
			return fmt.Errorf("snapshot %d has no name", i)
		}
	}
	return nil
}

// nodeList is GET /nodes.
type nodeList []struct {
	Node   string `json:"node"`
	Status string `json:"status"`
}

func (l nodeList) check() error {
	for i, n := range l {
		if !nodeNameRE.MatchString(n.Node) {
			return fmt.Errorf("entry %d: node %q is not a node name", i, truncate(n.Node, 60))
		}
	}
	return nil
}

// guestIndex caches GET /cluster/resources briefly. Every operation must
// know where its guest lives, and listing the whole cluster for each one
// costs guests² entries on a big lab. Creates, clones and destroys by this
// Host drop the cache (a list fetched while one ran is not kept: gen), a
// guest missing from a cached list is looked up again before it is called
// missing, and a create checks a fresh list; so only a guest moved or
// deleted behind phoenix's back within the TTL is seen late, and its node
// then answers "does not exist", which Get retries with a fresh list.
type guestIndex struct {
	mu   sync.Mutex
	gen  uint64
	at   time.Time
	byID map[int]resource
}

// forget drops the cached list.
func (h *Host) forget() {
	h.idx.mu.Lock()
	defer h.idx.mu.Unlock()
	h.idx.gen++
	h.idx.byID = nil
}

// lookup finds a guest's resource entry; cached says it came from the cache.
func (h *Host) lookup(ctx context.Context, id api.ID, fresh bool) (r resource, found, cached bool, err error) {
	h.idx.mu.Lock()
	if !fresh && h.idx.byID != nil && time.Since(h.idx.at) < h.opts.IndexTTL {
		r, found = h.idx.byID[int(id)]
		h.idx.mu.Unlock()
		return r, found, true, nil
	}
	gen := h.idx.gen
	h.idx.mu.Unlock()
	var list resourceList
	if err := h.c.get(ctx, "/cluster/resources?type=vm", &list); err != nil {
		return r, false, false, err
	}
	byID := make(map[int]resource, len(list))
	for _, e := range list {
		byID[int(e.VMID)] = e
	}
	h.idx.mu.Lock()
	if h.idx.gen == gen {
		h.idx.byID, h.idx.at = byID, time.Now()
	}
	h.idx.mu.Unlock()
	r, found = byID[int(id)]
	return r, found, false, nil
}

// locate finds a guest anywhere in the cluster: IDs are cluster-wide, so
// a guest on another node than its node field says still exists (phoenix
// never migrates guests).
func (h *Host) locate(ctx context.Context, kind api.Kind, id api.ID) (*location, error) {
	loc, _, err := h.locateFresh(ctx, kind, id, false)
	return loc, err
}

func (h *Host) locateFresh(ctx context.Context, kind api.Kind, id api.ID, fresh bool) (*location, bool, error) {
	r, cached, err := h.resourceOf(ctx, kind, id, fresh)
	if err != nil {
		return nil, false, err
	}
	return &location{node: r.Node, typ: r.Type, base: fmt.Sprintf("/nodes/%s/%s/%d", r.Node, r.Type, id)}, cached, nil
}

// State answers from the cluster's guest list alone
// (hypervisor.StateReader): a resync pass over every guest costs one
// /cluster/resources request, and config and snapshots are read only for
// the guests that need work. The list's power state can lag a few seconds
// behind the node (pvestatd), which is fine for deciding what to plan:
// actions read the guest fresh with Get before they change it.
func (h *Host) State(ctx context.Context, kind api.Kind, id api.ID) (*hypervisor.Guest, error) {
	r, _, err := h.resourceOf(ctx, kind, id, false)
	if err != nil {
		return nil, err
	}
	return &hypervisor.Guest{ID: id, Kind: kind, Running: r.Status == "running", Template: r.Template == 1}, nil
}

// resourceOf finds a guest's entry in the cluster's guest list; cached
// says it came from the cached list.
func (h *Host) resourceOf(ctx context.Context, kind api.Kind, id api.ID, fresh bool) (resource, bool, error) {
	typ, err := apiType(kind)
	if err != nil {
		return resource{}, false, err
	}
	r, found, cached, err := h.lookup(ctx, id, fresh)
	if err == nil && !found && cached {
		r, found, cached, err = h.lookup(ctx, id, true)
	}
	if err != nil {
		return r, false, fmt.Errorf("%s %s: look up: %w", kind, id, err)
	}
	if !found {
		return r, false, hypervisor.NotFound(kind, id)
	}
	if r.Type != typ {
		// No guest of this kind, as the Host contract has it; the message
		// says who holds the ID.
		return r, false, fmt.Errorf("%s %s: ID %s is taken by a %s on node %s: %w", kind, id, id, r.Type, r.Node, hypervisor.ErrNotFound)
	}
	return r, cached, nil
}

// Get returns the guest as the cluster has it.
func (h *Host) Get(ctx context.Context, kind api.Kind, id api.ID) (*hypervisor.Guest, error) {
	g, cached, err := h.get(ctx, kind, id, false)
	if cached && errors.Is(err, hypervisor.ErrNotFound) {
		// Moved or deleted since the list was cached: ask again.
		h.forget()
		g, _, err = h.get(ctx, kind, id, true)
	}
	return g, err
}

func (h *Host) get(ctx context.Context, kind api.Kind, id api.ID, fresh bool) (*hypervisor.Guest, bool, error) {
	loc, cached, err := h.locateFresh(ctx, kind, id, fresh)
	if err != nil {
		return nil, false, err
	}
	g, err := h.read(ctx, kind, id, loc)
	return g, cached, err
}

// read reads a located guest's status, config and snapshots.
func (h *Host) read(ctx context.Context, kind api.Kind, id api.ID, loc *location) (*hypervisor.Guest, error) {
	fail := func(err error) (*hypervisor.Guest, error) {
		return nil, fmt.Errorf("%s %s: get on node %s: %w", kind, id, loc.node, err)
	}
	var st guestStatus
	if err := h.c.get(ctx, loc.base+"/status/current", &st); err != nil {
		return fail(err)
	}
	var cfg guestConfig
	if err := h.c.get(ctx, loc.base+"/config", &cfg); err != nil {
		return fail(err)
	}
	var snaps snapshotList
	if err := h.c.get(ctx, loc.base+"/snapshot", &snaps); err != nil {
		return fail(err)
	}
	g := &hypervisor.Guest{
		ID:       id,
		Kind:     kind,
		Running:  *st.Status == "running",
		Template: st.Template == 1 || cfg["template"] == "1",
		Config:   map[string]string(cfg),
		DiskGB:   diskGB(cfg[rootDisk(kind)]),
	}
	for _, s := range snaps {
		// "current" is the state the guest is in, listed as a snapshot.
		if s.Name != "current" {
			g.Snapshots = append(g.Snapshots, s.Name)
		}
	}
	fw, err := h.readFirewall(ctx, loc)
	if err != nil {
		return fail(err)
	}
	g.Firewall = fw
	return g, nil
}

// guestConfig is GET .../config, flattened by configMap.
type guestConfig map[string]string

func (c *guestConfig) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	m, err := configMap(raw)
	*c = m
	return err
}

// configMap flattens a config as the API returns it into config keys and
// string values, the way pct and qm print them. Raw LXC keys come as
// "lxc": [[key, value], ...]; repeated keys are joined with "\n", as the pve
// backend does.
func configMap(raw map[string]json.RawMessage) (map[string]string, error) {
	cfg := map[string]string{}
	for k, v := range raw {
		if k == "digest" {
			continue
		}
		if k == "lxc" {
			var pairs [][2]string
			if err := json.Unmarshal(v, &pairs); err != nil {
				return nil, fmt.Errorf("key lxc: %w", err)
			}
			for _, p := range pairs {
				if old, ok := cfg[p[0]]; ok {
					cfg[p[0]] = old + "\n" + p[1]
				} else {
					cfg[p[0]] = p[1]
				}
			}
			continue
		}
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		switch val := x.(type) {
		case string:
			cfg[k] = val
		case float64:
			cfg[k] = strconv.FormatFloat(val, 'f', -1, 64)
		case bool:
			cfg[k] = map[bool]string{true: "1", false: "0"}[val]
		case nil:
		default:
			cfg[k] = string(v)
		}
	}
	return cfg, nil
}

func rootDisk(kind api.Kind) string {
	if kind == api.KindVM {
		return "scsi0"
	}
	return "rootfs"
}

var sizeRE = regexp.MustCompile(`(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)`)

// diskGB reads the size of a volume ("pool:vm-1-disk-0,size=32G"), rounded
// down to whole GiB.
func diskGB(vol string) int {
	m := sizeRE.FindStringSubmatch(vol)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	switch m[2] {
	case "T":
		n *= 1024
	case "M":
		n /= 1024
	case "K":
		n /= 1024 * 1024
	case "":
		n /= 1024 * 1024 * 1024
	}
	return int(n)
}

// nodes returns the cluster's nodes and whether each is online.
func (h *Host) nodes(ctx context.Context) (map[string]bool, error) {
	var list nodeList
	if err := h.c.get(ctx, "/nodes", &list); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range list {
		out[n.Node] = n.Status == "online"
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkNode makes sure node is a node of the cluster and online, naming
// where the choice came from when it is not.
func (h *Host) checkNode(ctx context.Context, node, from string) error {
	nodes, err := h.nodes(ctx)
	if err != nil {
		return err
	}
	online, ok := nodes[node]
	if !ok {
		return fmt.Errorf("node %q (%s) is not a node of the cluster (nodes: %s)", node, from, strings.Join(sortedKeys(nodes), ", "))
	}
	if !online {
		return fmt.Errorf("node %s (%s) is offline", node, from)
	}
	return nil
}

// placeNew picks the node for a guest made from scratch: its node field,
// else the default node, else the only node of a one-node cluster.
func (h *Host) placeNew(ctx context.Context, id api.ID) (string, error) {
	if n := h.wantedNode(id); n != "" {
		return n, h.checkNode(ctx, n, "its node field")
	}
	if n := h.opts.DefaultNode; n != "" {
		return n, h.checkNode(ctx, n, "--pve-default-node")
	}
	nodes, err := h.nodes(ctx)
	if err != nil {
		return "", err
	}
	if len(nodes) == 1 {
		for n := range nodes {
			return n, nil
		}
	}
	return "", fmt.Errorf("no node to create it on: set \"node\" in its JSON or pass --pve-default-node (nodes: %s)",
		strings.Join(sortedKeys(nodes), ", "))
}

// refuseTaken fails when the ID is used anywhere in the cluster: Proxmox
// would refuse too, but this names the node that holds it.
func (h *Host) refuseTaken(ctx context.Context, kind api.Kind, id api.ID) error {
	loc, _, err := h.locateFresh(ctx, kind, id, true)
	if err == nil {
		return fmt.Errorf("it already exists on node %s", loc.node)
	}
	if !isNotFound(err) {
		return err
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, hypervisor.ErrNotFound) }

// splitRaw separates raw lxc.* keys, which only SSH can set, from the keys
// the API takes.
func splitRaw(kind api.Kind, values map[string]string) (apiVals, raw map[string]string) {
	apiVals, raw = map[string]string{}, map[string]string{}
	for k, v := range values {
		if kind == api.KindLXC && strings.HasPrefix(k, "lxc.") {
			raw[k] = v
		} else {
			apiVals[k] = v
		}
	}
	return apiVals, raw
}

// Create makes a guest from an ostemplate (LXC) or a cloud image (VM) on
// the node placement picks.
func (h *Host) Create(ctx context.Context, kind api.Kind, id api.ID, spec hypervisor.CreateSpec) error {
	typ, err := apiType(kind)
	if err != nil {
		return err
	}
	node, err := h.placeNew(ctx, id)
	if err != nil {
		return fmt.Errorf("%s %s: create: %w", kind, id, err)
	}
	fail := func(err error) error { return fmt.Errorf("%s %s: create on node %s: %w", kind, id, node, err) }
	if err := h.refuseTaken(ctx, kind, id); err != nil {
		return fail(err)
	}
	if msg := checkSource(kind, spec.Source); msg != "" {
		return fail(errors.New(msg))
	}
	values, raw := splitRaw(kind, spec.Config)
	values, root := rootOnly(kind, values, values["unprivileged"] == "0")
	if len(raw) > 0 && h.ssh == nil {
		// Fail before creating anything rather than leave a half-configured guest.
		return fail(h.needSSH("raw LXC keys ("+strings.Join(sortedKeys(raw), ", ")+")", id))
	}
	if len(root) > 0 && h.ssh == nil {
		return fail(h.needRoot(root, id))
	}
	params := map[string]any{"vmid": int(id)}
	for k, v := range values {
		if v != "" {
			params[k] = v
		}
	}
	if kind == api.KindLXC {
		if spec.Source == "" {
			return fail(fmt.Errorf("no ostemplate"))
		}
		params["ostemplate"] = spec.Source
		if spec.Storage != "" {
			params["storage"] = spec.Storage
			if spec.DiskGB > 0 && values["rootfs"] == "" {
				params["rootfs"] = spec.Storage + ":" + strconv.Itoa(spec.DiskGB)
			}
		}
	} else {
		if spec.Storage == "" {
			return fail(fmt.Errorf("no storage for the disk"))
		}
		if values["scsihw"] == "" {
			params["scsihw"] = "virtio-scsi-pci"
		}
		if values["scsi0"] == "" {
			switch {
			case spec.Source != "":
				// The API imports a cloud image in the create itself.
				params["scsi0"] = spec.Storage + ":0,import-from=" + spec.Source
				params["boot"] = "order=scsi0"
				if values["ide2"] == "" {
					// ipconfig0, ciuser and nameserver reach the guest only
					// through a cloud-init drive.
					params["ide2"] = spec.Storage + ":cloudinit"
				}
			case spec.DiskGB > 0:
				params["scsi0"] = spec.Storage + ":" + strconv.Itoa(spec.DiskGB)
			}
		}
	}
	path := fmt.Sprintf("/nodes/%s/%s", node, typ)
	defer h.forget()
	if err := h.c.writeChecked(ctx, []string{node}, http.MethodPost, path, params, h.absent(kind, id)); err != nil {
		return fail(hintAudit(err, id))
	}
	if len(root) > 0 {
		if err := h.setAsRoot(ctx, node, id, root); err != nil {
			return fail(err)
		}
	}
	if len(raw) > 0 {
		if err := h.setRaw(ctx, node, id, raw); err != nil {
			return fail(err)
		}
	}
	if kind == api.KindVM && spec.Source != "" && spec.DiskGB > 0 {
		// An imported image keeps its own size; grow it to the one asked
		// (an image larger than that stays as it is).
		g, err := h.Get(ctx, kind, id)
		if err != nil || g.DiskGB >= spec.DiskGB {
			return err
		}
		return h.Resize(ctx, kind, id, spec.DiskGB)
	}
	return nil
}

// Clone makes dst from src. The request goes to the source's node; dst is
// placed on its node field when that names another node (target), else
// beside its source.
func (h *Host) Clone(ctx context.Context, kind api.Kind, src, dst api.ID, spec hypervisor.CloneSpec) error {
	sloc, err := h.locate(ctx, kind, src)
	if err != nil {
		return fmt.Errorf("%s %s: clone from %s: %w", kind, dst, src, err)
	}
	target := sloc.node
	if n := h.wantedNode(dst); n != "" && n != sloc.node {
		if err := h.checkNode(ctx, n, "its node field"); err != nil {
			return fmt.Errorf("%s %s: clone from %s: %w", kind, dst, src, err)
		}
		target = n
	}
	fail := func(err error) error {
		return fmt.Errorf("%s %s: clone from %s (node %s) to node %s: %w", kind, dst, src, sloc.node, target, err)
	}
	if err := h.refuseTaken(ctx, kind, dst); err != nil {
		return fail(err)
	}
	params := map[string]any{"newid": int(dst)}
	if spec.Name != "" {
		if kind == api.KindLXC {
			params["hostname"] = spec.Name
		} else {
			params["name"] = spec.Name
		}
	}
	if spec.Snapshot != "" {
		params["snapname"] = spec.Snapshot
	}
	full, err := h.cloneMode(ctx, kind, src, sloc, spec.Snapshot, spec.Full)
	if err != nil {
		return fail(err)
	}
	if full {
		params["full"] = 1
	}
	if target != sloc.node {
		params["target"] = target
	}
	defer h.forget()
	if err := h.c.writeChecked(ctx, []string{sloc.node, target}, http.MethodPost, sloc.base+"/clone", params, h.absent(kind, dst)); err != nil {
		return fail(hintAudit(err, dst))
	}
	return nil
}

// Set changes config keys; an empty value deletes the key. The API takes
// all but raw lxc.* keys, in one synchronous PUT (no task); those go over
// SSH.
func (h *Host) Set(ctx context.Context, kind api.Kind, id api.ID, values map[string]string) error {
	loc, err := h.locate(ctx, kind, id)
	if err != nil {
		return fmt.Errorf("%s %s: set: %w", kind, id, err)
	}
	fail := func(err error) error { return fmt.Errorf("%s %s: set on node %s: %w", kind, id, loc.node, err) }
	apiVals, raw := splitRaw(kind, values)
	if len(raw) > 0 && h.ssh == nil {
		return fail(h.needSSH("raw LXC keys ("+strings.Join(sortedKeys(raw), ", ")+")", id))
	}
	privileged := false
	if _, ok := apiVals["features"]; ok && kind == api.KindLXC {
		// Nesting alone is the token's to set, unless the container is
		// privileged: only then is its config read.
		if privileged, err = h.privileged(ctx, loc, apiVals); err != nil {
			return fail(err)
		}
	}
	apiVals, root := rootOnly(kind, apiVals, privileged)
	if len(root) > 0 && h.ssh == nil {
		return fail(h.needRoot(root, id))
	}
	if len(apiVals) > 0 {
		params := map[string]any{}
		var del []string
		for _, k := range sortedKeys(apiVals) {
			if apiVals[k] == "" {
				del = append(del, k)
			} else {
				params[k] = apiVals[k]
			}
		}
		if len(del) > 0 {
			params["delete"] = strings.Join(del, ",")
		}
		if err := h.c.write(ctx, []string{loc.node}, http.MethodPut, loc.base+"/config", params); err != nil {
			return fail(err)
		}
	}
	if len(root) > 0 {
		if err := h.setAsRoot(ctx, loc.node, id, root); err != nil {
			return fail(err)
		}
	}
	if len(raw) > 0 {
		if err := h.setRaw(ctx, loc.node, id, raw); err != nil {
			return fail(err)
		}
	}
	return nil
}

// Resize grows the root disk to sizeGB; it never shrinks.
func (h *Host) Resize(ctx context.Context, kind api.Kind, id api.ID, sizeGB int) error {
	g, err := h.Get(ctx, kind, id)
	if err != nil {
		return err
	}
	switch {
	case g.DiskGB == sizeGB:
		return nil
	case g.DiskGB > sizeGB:
		return fmt.Errorf("%s %s: resize to %dG: shrinking a disk is not supported (it is %dG)", kind, id, sizeGB, g.DiskGB)
	}
	loc, err := h.locate(ctx, kind, id)
	if err != nil {
		return fmt.Errorf("%s %s: resize: %w", kind, id, err)
	}
	grown := func(ctx context.Context) (bool, error) {
		g, err := h.read(ctx, kind, id, loc)
		return err == nil && g.DiskGB >= sizeGB, err
	}
	err = h.c.writeChecked(ctx, []string{loc.node}, http.MethodPut, loc.base+"/resize",
		map[string]any{"disk": rootDisk(kind), "size": strconv.Itoa(sizeGB) + "G"}, grown)
	if err != nil {
		return fmt.Errorf("%s %s: resize on node %s: %w", kind, id, loc.node, err)
	}
	return nil
}

// absent is the check before a create or clone of id is sent again: the
// first attempt may have made the guest although it failed (a proxy lost
// the answer, the task failed after allocating disks), and a second one
// would at best be refused.
func (h *Host) absent(kind api.Kind, id api.ID) reread {
	return func(ctx context.Context) (bool, error) {
		loc, _, err := h.locateFresh(ctx, kind, id, true)
		switch {
		case isNotFound(err):
			return false, nil
		case err != nil:
			return false, err
		}
		return false, fmt.Errorf("%s %s exists now on node %s: the first attempt may have made it; not sending it again (phoenix takes it from there on the next run, or destroy it if it is half made)", kind, id, loc.node)
	}
}

// hintAudit explains an "already exists" for a guest the cluster's list
// did not show: the token may not see it.
func hintAudit(err error, id api.ID) error {
	var ae *APIError
	if errors.As(err, &ae) && strings.Contains(ae.Message, "already exists") {
		return fmt.Errorf("%w (the cluster's guest list does not show %s: does the token lack VM.Audit on /vms/%s?)", err, id, id)
	}
	return err
}

// Start starts the guest.
func (h *Host) Start(ctx context.Context, kind api.Kind, id api.ID) error {
	// The list holds power state and the template flag: drop it.
	defer h.forget()
	return h.guestWrite(ctx, kind, id, "start", http.MethodPost, "/status/start", nil)
}

// Stop shuts the guest down, forcing it off after a minute, as the pve
// backend does.
func (h *Host) Stop(ctx context.Context, kind api.Kind, id api.ID) error {
	defer h.forget()
	return h.guestWrite(ctx, kind, id, "stop", http.MethodPost, "/status/shutdown",
		map[string]any{"forceStop": 1, "timeout": 60})
}

// Destroy removes a stopped guest and its disks.
func (h *Host) Destroy(ctx context.Context, kind api.Kind, id api.ID) error {
	defer h.forget()
	return h.guestWrite(ctx, kind, id, "destroy", http.MethodDelete, "?purge=1&destroy-unreferenced-disks=1", nil)
}

// Snapshot takes a snapshot, after checking that every volume's storage
// can.
func (h *Host) Snapshot(ctx context.Context, kind api.Kind, id api.ID, name string) error {
	loc, err := h.locate(ctx, kind, id)
	if err != nil {
		return fmt.Errorf("%s %s: snapshot %s: %w", kind, id, name, err)
	}
	if err := h.checkSnapshot(ctx, kind, id, loc); err != nil {
		return fmt.Errorf("%s %s: snapshot %s: %w", kind, id, name, err)
	}
	return h.guestWrite(ctx, kind, id, "snapshot "+name, http.MethodPost, "/snapshot", map[string]any{"snapname": name})
}

// ConvertToTemplate turns a stopped guest into a template. A container's
// conversion answers with no task, a VM's with one; write handles both.
func (h *Host) ConvertToTemplate(ctx context.Context, kind api.Kind, id api.ID) error {
	defer h.forget()
	return h.guestWrite(ctx, kind, id, "template", http.MethodPost, "/template", nil)
}

// guestWrite locates a guest and does one write on it.
func (h *Host) guestWrite(ctx context.Context, kind api.Kind, id api.ID, op, method, suffix string, params map[string]any) error {
	for fresh := false; ; fresh = true {
		loc, cached, err := h.locateFresh(ctx, kind, id, fresh)
		if err != nil {
			return fmt.Errorf("%s %s: %s: %w", kind, id, op, err)
		}
		err = h.c.write(ctx, []string{loc.node}, method, loc.base+suffix, params)
		if err == nil {
			return nil
		}
		if cached && errors.Is(err, hypervisor.ErrNotFound) {
			// Moved or deleted since the list was cached: ask again.
			h.forget()
			continue
		}
		return fmt.Errorf("%s %s: %s on node %s: %w", kind, id, op, loc.node, err)
	}
}
