package pveapi

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/pvestorage"
)

// Finding is one row of phoenix doctor's table.
type Finding struct {
	Check, Target string
	OK            bool
	Hint          string
}

// nodeStorage is one entry of GET /nodes/{node}/storage.
type nodeStorage struct {
	Storage string  `json:"storage"`
	Type    string  `json:"type"`
	Content string  `json:"content"`
	Enabled flexInt `json:"enabled"`
	Active  flexInt `json:"active"`
}

type nodeStorageList []nodeStorage

func (l nodeStorageList) check() error {
	for i, s := range l {
		if s.Storage == "" {
			return fmt.Errorf("storage %d has no ID", i)
		}
	}
	return nil
}

// netIface is one entry of GET /nodes/{node}/network.
type netIface struct {
	Iface string `json:"iface"`
	Type  string `json:"type"`
}

// volumeEntry is one entry of GET /nodes/{node}/storage/{storage}/content.
type volumeEntry struct {
	VolID string `json:"volid"`
}

type versionInfo struct {
	Version string `json:"version"`
}

// Doctor checks, reading only, that the cluster can carry out cfg: the
// version, each guest's node, its storage_pool on that node (content and
// the snapshot and linked-clone support the plan needs, per
// internal/pvestorage), its bridge, its ostemplate or cloud image, and the
// token's privileges against Privileges.
func (h *Host) Doctor(ctx context.Context, cfg *api.Config) []Finding {
	d := &doctor{h: h, cfg: cfg, storages: map[string]nodeStorageList{}, bridges: map[string]map[string]string{},
		content: map[string]map[string]bool{}, errs: map[string]error{}}
	return d.run(ctx)
}

type doctor struct {
	h        *Host
	cfg      *api.Config
	version  int
	out      []Finding
	storages map[string]nodeStorageList   // by node
	bridges  map[string]map[string]string // node -> iface -> type
	content  map[string]map[string]bool   // node/storage/content -> volids
	errs     map[string]error             // a read that failed, by what was read
}

func (d *doctor) add(check, target string, ok bool, hint string) {
	d.out = append(d.out, Finding{check, target, ok, hint})
}

func (d *doctor) run(ctx context.Context) []Finding {
	var v versionInfo
	if err := d.h.c.get(ctx, "/version", &v); err != nil {
		d.add("pve-version", d.h.opts.URL, false, err.Error())
		return d.out // nothing else will answer either
	}
	switch {
	case strings.HasPrefix(v.Version, "8."):
		d.version = 8
	case strings.HasPrefix(v.Version, "9."):
		d.version = 9
	}
	if d.version == 0 {
		d.add("pve-version", v.Version, false, "phoenix is tested on Proxmox VE 8 and 9")
	} else {
		d.add("pve-version", v.Version, true, "")
	}
	nodes := map[api.ID]string{}
	for _, id := range d.cfg.IDs {
		n, err := d.h.doctorNode(ctx, d.cfg, id, 0)
		if err != nil {
			d.add("node", guestName(d.cfg.Guest(id)), false, err.Error())
			continue
		}
		nodes[id] = n
	}
	d.storage(ctx, nodes)
	d.bridgeChecks(ctx, nodes)
	d.templates(ctx, nodes)
	d.privileges(ctx)
	return d.out
}

func guestName(g *api.Guest) string { return string(g.Kind) + " " + g.ID.String() }

// doctorNode is where a guest is or goes: its node field, its clone
// source's node, or the default node (as placeNew and the clone decide).
func (h *Host) doctorNode(ctx context.Context, cfg *api.Config, id api.ID, depth int) (string, error) {
	g := cfg.Guest(id)
	if g == nil || depth > 64 {
		return "", fmt.Errorf("guest %s is not in the desired state", id)
	}
	if g.Spec.Node != "" {
		return g.Spec.Node, h.checkNode(ctx, g.Spec.Node, "its node field")
	}
	if src := g.CloneSource(); src != 0 && cfg.Guest(src) != nil {
		return h.doctorNode(ctx, cfg, src, depth+1)
	}
	return h.placeNew(ctx, id)
}

func (d *doctor) nodeStorages(ctx context.Context, node string) (nodeStorageList, error) {
	key := "storage " + node
	if l, ok := d.storages[node]; ok || d.errs[key] != nil {
		return l, d.errs[key]
	}
	var l nodeStorageList
	err := d.h.c.get(ctx, "/nodes/"+url.PathEscape(node)+"/storage", &l)
	d.storages[node], d.errs[key] = l, err
	return l, err
}

// storage checks each (node, storage_pool) the guests use.
func (d *doctor) storage(ctx context.Context, nodes map[api.ID]string) {
	type need struct {
		content  map[string]bool
		features map[pvestorage.Feature][]string // feature -> guests needing it
		kinds    map[pvestorage.Feature]api.Kind
		guests   []string
	}
	needs := map[[2]string]*need{}
	for _, id := range d.cfg.IDs {
		g, node := d.cfg.Guest(id), nodes[id]
		if node == "" || g.Spec.StoragePool == "" {
			continue
		}
		k := [2]string{node, g.Spec.StoragePool}
		n := needs[k]
		if n == nil {
			n = &need{content: map[string]bool{}, features: map[pvestorage.Feature][]string{}, kinds: map[pvestorage.Feature]api.Kind{}}
			needs[k] = n
		}
		n.guests = append(n.guests, id.String())
		if g.Kind == api.KindLXC {
			n.content["rootdir"] = true
		} else {
			n.content["images"] = true
		}
		if takesSnapshots(d.cfg, g) {
			n.features[pvestorage.Snapshot] = append(n.features[pvestorage.Snapshot], id.String())
			n.kinds[pvestorage.Snapshot] = g.Kind
		}
		if isCloneSource(d.cfg, g) {
			n.features[pvestorage.LinkedClone] = append(n.features[pvestorage.LinkedClone], id.String())
			n.kinds[pvestorage.LinkedClone] = g.Kind
		}
	}
	keys := make([][2]string, 0, len(needs))
	for k := range needs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][1]+"@"+keys[i][0] < keys[j][1]+"@"+keys[j][0] })
	for _, k := range keys {
		node, pool, n := k[0], k[1], needs[k]
		target := pool + " on " + node
		list, err := d.nodeStorages(ctx, node)
		if err != nil {
			d.add("storage", target, false, err.Error())
			continue
		}
		i := slices.IndexFunc(list, func(s nodeStorage) bool { return s.Storage == pool })
		if i < 0 {
			d.add("storage", target, false, fmt.Sprintf("no such storage on %s, or the token may not see it (Datastore.Audit on /storage/%s); guests %s",
				node, pool, strings.Join(n.guests, ", ")))
			continue
		}
		s := list[i]
		have := strings.Split(s.Content, ",")
		var missing []string
		for c := range n.content {
			if !slices.Contains(have, c) {
				missing = append(missing, c)
			}
		}
		sort.Strings(missing)
		var lacks []string
		for _, f := range []pvestorage.Feature{pvestorage.Snapshot, pvestorage.LinkedClone} {
			if g := n.features[f]; len(g) > 0 && !pvestorage.Supports(s.Type, n.kinds[f], f) {
				lacks = append(lacks, fmt.Sprintf("%ss (guests %s)", f, strings.Join(g, ", ")))
			}
		}
		switch {
		case len(missing) > 0:
			d.add("storage", target, false, fmt.Sprintf("content lacks %s (pvesm set %s --content %s)", strings.Join(missing, ","),
				pool, strings.Join(append(slices.DeleteFunc(have, func(c string) bool { return c == "" }), missing...), ",")))
		case len(lacks) > 0:
			d.add("storage", target, false, fmt.Sprintf("type %s has no %s", s.Type, strings.Join(lacks, " or ")))
		case s.Enabled == 0 && s.Active == 0:
			d.add("storage", target, false, "disabled or not active on "+node+" (pvesm status)")
		default:
			d.add("storage", target, true, s.Type)
		}
	}
}

func (d *doctor) bridgeChecks(ctx context.Context, nodes map[api.ID]string) {
	seen := map[[2]string]bool{}
	var keys [][2]string
	for _, id := range d.cfg.IDs {
		b, node := guestBridge(d.cfg.Guest(id)), nodes[id]
		if b == "" || node == "" || seen[[2]string{node, b}] {
			continue
		}
		seen[[2]string{node, b}] = true
		keys = append(keys, [2]string{node, b})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][1]+"@"+keys[i][0] < keys[j][1]+"@"+keys[j][0] })
	for _, k := range keys {
		node, b := k[0], k[1]
		target := b + " on " + node
		ifaces, ok := d.bridges[node]
		if !ok {
			var list []netIface
			if err := d.h.c.get(ctx, "/nodes/"+url.PathEscape(node)+"/network", &list); err != nil {
				d.add("bridge", target, false, err.Error())
				continue
			}
			ifaces = map[string]string{}
			for _, i := range list {
				ifaces[i.Iface] = i.Type
			}
			d.bridges[node] = ifaces
		}
		switch t, ok := ifaces[b]; {
		case !ok:
			d.add("bridge", target, false, "no such bridge on "+node+" (System > Network, or /etc/network/interfaces and ifreload -a)")
		case t != "bridge" && t != "OVSBridge":
			d.add("bridge", target, false, "is a "+t+", not a bridge")
		default:
			d.add("bridge", target, true, t)
		}
	}
}

// templates checks that each ostemplate and cloud image is a volume on
// the node the guest is created on.
func (d *doctor) templates(ctx context.Context, nodes map[api.ID]string) {
	seen := map[string]bool{}
	for _, id := range d.cfg.IDs {
		g, node := d.cfg.Guest(id), nodes[id]
		volid, content := templateVolume(g)
		if volid == "" || node == "" {
			continue
		}
		what := "ostemplate"
		if content == "import" {
			what = "cloud-image"
		}
		target := volid + " on " + node
		if seen[target] {
			continue
		}
		seen[target] = true
		store := templateStorage(g)
		if store == "" {
			d.add(what, volid, false, "not a volume ID: a token may not name files by path; give storage:"+content+"/<file> (guest "+id.String()+")")
			continue
		}
		key := node + "/" + store + "/" + content
		vols, ok := d.content[key]
		if !ok && d.errs[key] == nil {
			var list []volumeEntry
			err := d.h.c.get(ctx, "/nodes/"+url.PathEscape(node)+"/storage/"+url.PathEscape(store)+"/content?content="+content, &list)
			d.errs[key] = err
			vols = map[string]bool{}
			for _, v := range list {
				vols[v.VolID] = true
			}
			d.content[key] = vols
		}
		switch {
		case d.errs[key] != nil:
			d.add(what, target, false, d.errs[key].Error())
		case !vols[volid]:
			hint := "no such volume on " + node + " (pveam download " + store + " <template>)"
			if content == "import" {
				hint = "no such volume on " + node + " (Storage > " + store + " > Import: download the image as .qcow2)"
			}
			d.add(what, target, false, hint+"; guest "+id.String())
		default:
			d.add(what, target, true, "")
		}
	}
}

// permissionMap is GET /access/permissions: path -> privilege -> propagate.
type permissionMap map[string]map[string]flexInt

// privileges checks the token's privileges on each path the guests need,
// one request per path (Proxmox computes inheritance and roles for it).
func (d *doctor) privileges(ctx context.Context) {
	type want struct {
		p      Privilege
		path   string
		guests []string
	}
	var wants []*want
	index := map[string]*want{}
	for _, id := range d.cfg.IDs {
		g := d.cfg.Guest(id)
		for _, p := range Privileges {
			if !p.Applies(d.cfg, g, d.version) {
				continue
			}
			path := p.PathFor(g)
			if path == "" {
				continue
			}
			k := strings.Join(p.Names, "|") + " " + path
			w := index[k]
			if w == nil {
				w = &want{p: p, path: path}
				index[k] = w
				wants = append(wants, w)
			}
			w.guests = append(w.guests, id.String())
		}
	}
	perms := map[string]map[string]flexInt{}
	failed := map[string]error{}
	missing := map[string][]string{} // path -> privileges lacking
	var paths []string
	for _, w := range wants {
		privs, ok := perms[w.path]
		if !ok && failed[w.path] == nil {
			var m permissionMap
			err := d.h.c.get(ctx, "/access/permissions?path="+url.QueryEscape(w.path), &m)
			if err != nil {
				failed[w.path] = err
				paths = append(paths, w.path)
				continue
			}
			privs = m[w.path]
			perms[w.path] = privs
		}
		if failed[w.path] != nil {
			continue
		}
		if !slices.ContainsFunc(w.p.Names, func(n string) bool { _, ok := privs[n]; return ok }) {
			if _, ok := missing[w.path]; !ok {
				paths = append(paths, w.path)
			}
			missing[w.path] = append(missing[w.path], strings.Join(w.p.Names, " or ")+" ("+w.p.For+"; guests "+strings.Join(w.guests, ", ")+")")
		} else if _, ok := missing[w.path]; !ok {
			missing[w.path] = nil
			paths = append(paths, w.path)
		}
	}
	slices.SortFunc(paths, comparePaths)
	for _, path := range paths {
		switch {
		case failed[path] != nil:
			d.add("token-privileges", path, false, failed[path].Error())
		case len(missing[path]) > 0:
			d.add("token-privileges", path, false, "lacks "+strings.Join(missing[path], "; "))
		default:
			d.add("token-privileges", path, true, "")
		}
	}
}

// comparePaths orders ACL paths by their parent, then by their last
// element, numerically when both are numbers (/vms/900 before /vms/8000).
func comparePaths(a, b string) int {
	da, ea := a[:strings.LastIndex(a, "/")+1], a[strings.LastIndex(a, "/")+1:]
	db, eb := b[:strings.LastIndex(b, "/")+1], b[strings.LastIndex(b, "/")+1:]
	if c := strings.Compare(da, db); c != 0 {
		return c
	}
	na, errA := strconv.Atoi(ea)
	nb, errB := strconv.Atoi(eb)
	if errA == nil && errB == nil {
		return na - nb
	}
	return strings.Compare(ea, eb)
}
