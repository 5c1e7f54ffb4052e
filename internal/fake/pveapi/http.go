package fakepveapi

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/pvestorage"
)

// apiError is an error response: HTTP status, the message Proxmox puts in
// the status line, and for 400 the per-parameter errors.
type apiError struct {
	status int
	msg    string
	fields map[string]string
}

func errf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// badParam is Proxmox's answer to a parameter it refuses.
func badParam(field, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: "Parameter verification failed.", fields: map[string]string{field: msg}}
}

// params are a request's parameters: from the query, a form or a JSON body.
type params struct {
	s     map[string]string
	lists map[string][]string
}

func (p params) int(key string) (int, bool) {
	n, err := strconv.Atoi(p.s[key])
	return n, err == nil
}

func parseParams(r *http.Request) (params, error) {
	p := params{s: map[string]string{}, lists: map[string][]string{}}
	for k, v := range r.URL.Query() {
		p.s[k] = v[len(v)-1]
		p.lists[k] = v
	}
	if r.Body == nil {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(body) == 0 {
		return p, err
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return p, err
		}
		for k, v := range m {
			if list, ok := v.([]any); ok {
				for _, e := range list {
					p.lists[k] = append(p.lists[k], scalar(e))
				}
				continue
			}
			if v == nil {
				continue
			}
			p.s[k] = scalar(v)
			p.lists[k] = []string{p.s[k]}
		}
		return p, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return p, err
	}
	for k, v := range form {
		p.s[k] = v[len(v)-1]
		p.lists[k] = v
	}
	return p, nil
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "1"
		}
		return "0"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// ServeHTTP serves the API under /api2/json.
func (c *Cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, "/api2/json")
	if !ok {
		writeStatus(w, http.StatusNotImplemented, "Method not implemented", nil)
		return
	}
	want := "PVEAPIToken=" + c.opts.TokenID + "=" + c.opts.Secret
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		writeStatus(w, http.StatusUnauthorized, "No ticket", []byte(`{"data":null}`))
		return
	}
	p, err := parseParams(r)
	if err != nil {
		writeError(w, badParam("body", err.Error()))
		return
	}
	c.mu.Lock()
	c.requests = append(c.requests, Request{Method: r.Method, Path: path, Params: maps.Clone(p.s)})
	hook := c.onRequest
	c.mu.Unlock()
	if hook != nil {
		hook(r.Method, path)
	}

	seg := strings.Split(strings.Trim(path, "/"), "/")
	if len(seg) >= 2 && seg[0] == "nodes" && c.isDown(seg[1]) {
		// A node that stopped answering: the API proxy waits for it until
		// the client gives up.
		select {
		case <-r.Context().Done():
		case <-c.closed:
		}
		return
	}
	f, after := c.fault(r.Method, path)
	if f != nil && !after {
		writeError(w, f)
		return
	}
	data, aerr := c.route(r.Method, seg, p)
	if f != nil {
		writeError(w, f)
		return
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	c.mu.Lock()
	filter := c.filter
	c.mu.Unlock()
	if filter != nil {
		data = filter(r.Method, path, data)
	}
	body, _ := json.Marshal(map[string]any{"data": data})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Write(body)
}

func (c *Cluster) fault(method, path string) (*apiError, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, f := range c.httpFault {
		if (f.Method == "" || f.Method == method) && f.re.MatchString(path) {
			if f.Times > 0 {
				f.Times--
				if f.Times == 0 {
					c.httpFault = append(c.httpFault[:i], c.httpFault[i+1:]...)
				}
			}
			return &apiError{status: f.Status, msg: f.Message}, f.AfterServe
		}
	}
	return nil, false
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"data": nil}
	if e.fields != nil {
		body["errors"] = e.fields
	}
	body["message"] = e.msg + "\n"
	b, _ := json.Marshal(body)
	writeStatus(w, e.status, e.msg, b)
}

// writeStatus writes a response whose status line carries reason, as
// Proxmox's server does ("500 CT is locked (disk)"). net/http only writes
// standard reasons, so the connection is taken over to write it by hand.
func writeStatus(w http.ResponseWriter, code int, reason string, body []byte) {
	reason = strings.NewReplacer("\r", " ", "\n", " ").Replace(strings.TrimSpace(reason))
	if hj, ok := w.(http.Hijacker); ok {
		if conn, buf, err := hj.Hijack(); err == nil {
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", code, reason, len(body))
			buf.Write(body)
			buf.Flush()
			return
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	w.Write(body)
}

func (c *Cluster) route(method string, seg []string, p params) (any, *apiError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case method == "GET" && len(seg) == 1 && seg[0] == "version":
		if c.opts.Version == 8 {
			return map[string]any{"version": "8.4.1", "release": "8.4", "repoid": "fakepveapi"}, nil
		}
		return map[string]any{"version": "9.0.3", "release": "9.0", "repoid": "fakepveapi"}, nil
	case method == "GET" && len(seg) == 2 && seg[0] == "access" && seg[1] == "permissions":
		return c.permissions(p)
	case method == "GET" && len(seg) == 1 && seg[0] == "storage":
		return c.storageList(""), nil
	case method == "GET" && len(seg) == 1 && seg[0] == "nodes":
		return c.listNodes(), nil
	case method == "GET" && len(seg) == 2 && seg[0] == "cluster" && seg[1] == "status":
		return c.clusterStatus(), nil
	case method == "GET" && len(seg) == 2 && seg[0] == "cluster" && seg[1] == "resources":
		return c.resources(p.s["type"]), nil
	case method == "GET" && len(seg) == 2 && seg[0] == "cluster" && seg[1] == "nextid":
		for id := 100; ; id++ {
			if c.guests[id] == nil {
				return strconv.Itoa(id), nil
			}
		}
	case len(seg) >= 2 && seg[0] == "nodes":
		node := seg[1]
		if !c.hasNode(node) {
			return nil, errf(500, "hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", node, node)
		}
		return c.routeNode(method, node, seg[2:], p)
	}
	return nil, errf(501, "Method '%s /%s' not implemented", method, strings.Join(seg, "/"))
}

func (c *Cluster) listNodes() []map[string]any {
	out := []map[string]any{}
	for _, n := range c.nodes {
		st := "online"
		if c.down[n] {
			st = "offline"
		}
		out = append(out, map[string]any{"node": n, "status": st, "type": "node", "id": "node/" + n})
	}
	return out
}

func (c *Cluster) clusterStatus() []map[string]any {
	out := []map[string]any{{"type": "cluster", "name": "fake", "id": "cluster", "nodes": len(c.nodes), "quorate": 1}}
	for i, n := range c.nodes {
		online := 1
		if c.down[n] {
			online = 0
		}
		out = append(out, map[string]any{"type": "node", "name": n, "id": "node/" + n, "nodeid": i + 1, "ip": "127.0.0.1", "online": online, "local": 0})
	}
	return out
}

func (c *Cluster) resources(typ string) []map[string]any {
	// Proxmox answers an empty list as [], never null.
	out := []map[string]any{}
	if typ == "" || typ == "node" {
		out = append(out, c.listNodes()...)
	}
	if typ != "" && typ != "vm" {
		return out
	}
	for _, id := range sortedIDs(c.guests) {
		g := c.guests[id]
		if slices.Contains(c.opts.NoAudit, id) || !c.may(fmt.Sprintf("/vms/%d", id), "VM.Audit") {
			// Proxmox lists only what the user may audit.
			continue
		}
		st := "stopped"
		if g.Running {
			st = "running"
		}
		if c.down[g.Node] {
			st = "unknown"
		}
		r := map[string]any{"id": g.Type + "/" + strconv.Itoa(id), "type": g.Type, "vmid": id, "node": g.Node,
			"status": st, "name": g.name(), "template": b2i(g.Template), "maxdisk": diskGB(g) << 30}
		if g.Lock != "" {
			r["lock"] = g.Lock
		}
		out = append(out, r)
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (g *Guest) name() string {
	if g.Type == "lxc" {
		return g.Config["hostname"]
	}
	return g.Config["name"]
}

// rootDisk is the config key of the guest's root disk.
func (g *Guest) rootDisk() string {
	if g.Type == "lxc" {
		return "rootfs"
	}
	return "scsi0"
}

var sizeRE = regexp.MustCompile(`(?:^|,)size=(\d+)G`)

func diskGB(g *Guest) int {
	m := sizeRE.FindStringSubmatch(g.Config[g.rootDisk()])
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func (c *Cluster) routeNode(method, node string, seg []string, p params) (any, *apiError) {
	if len(seg) == 3 && seg[0] == "tasks" && method == "GET" && (seg[2] == "status" || seg[2] == "log") {
		t := c.tasks[seg[1]]
		if t == nil || t.node != node {
			return nil, errf(500, "unable to parse worker upid '%s'", seg[1])
		}
		if seg[2] == "log" {
			var lines []map[string]any
			for i, l := range append([]string{"task started"}, t.log...) {
				lines = append(lines, map[string]any{"n": i + 1, "t": l})
			}
			return lines, nil
		}
		st := map[string]any{"upid": t.upid, "node": t.node, "type": t.typ, "id": t.id, "user": c.opts.TokenID,
			"pid": 4000, "pstart": 1000, "starttime": t.start.Unix(), "status": "running"}
		if t.done {
			st["status"] = "stopped"
			st["exitstatus"] = t.exitStatus
		}
		return st, nil
	}
	if len(seg) == 1 && seg[0] == "storage" && method == "GET" {
		return c.storageList(node), nil
	}
	if len(seg) == 1 && seg[0] == "network" && method == "GET" {
		return c.network(p)
	}
	if len(seg) == 3 && seg[0] == "storage" && seg[2] == "content" && method == "GET" {
		return c.storageContent(seg[1], p)
	}
	if len(seg) == 0 || (seg[0] != "lxc" && seg[0] != "qemu") {
		return nil, errf(501, "Method '%s /nodes/%s/%s' not implemented", method, node, strings.Join(seg, "/"))
	}
	typ := seg[0]
	if len(seg) == 1 && method == "POST" {
		if e := c.checkSchema(schemaEndpoint(typ, "POST "), node, "", p); e != nil {
			return nil, e
		}
		return c.create(node, typ, p)
	}
	if len(seg) < 2 {
		return nil, errf(501, "Method '%s /nodes/%s/%s' not implemented", method, node, strings.Join(seg, "/"))
	}
	vmid, err := strconv.Atoi(seg[1])
	if err != nil {
		return nil, badParam("vmid", "type check ('integer') failed - got '"+seg[1]+"'")
	}
	// Proxmox verifies the parameters before anything else.
	op := method + " " + strings.Join(seg[2:], "/")
	if e := c.checkSchema(schemaEndpoint(typ, op), node, seg[1], p); e != nil {
		return nil, e
	}
	if slices.Contains(c.opts.NoAudit, vmid) || !c.may(fmt.Sprintf("/vms/%d", vmid), "VM.Audit") {
		return nil, errf(403, "Permission check failed (/vms/%d, VM.Audit)", vmid)
	}
	g := c.guests[vmid]
	if g == nil || g.Node != node || g.Type != typ {
		dir := "lxc"
		if typ == "qemu" {
			dir = "qemu-server"
		}
		return nil, errf(500, "Configuration file 'nodes/%s/%s/%d.conf' does not exist", node, dir, vmid)
	}
	if len(seg) >= 3 && seg[2] == "firewall" {
		return c.firewall(g, method, seg[3:], p)
	}
	if len(seg) == 5 && method == "GET" && seg[2] == "snapshot" && seg[4] == "config" {
		return c.snapshotConfig(g, seg[3])
	}
	switch op {
	case "GET status/current":
		return c.statusCurrent(g), nil
	case "POST status/start", "POST status/stop", "POST status/shutdown":
		return c.power(g, strings.TrimPrefix(op, "POST status/"))
	case "GET config":
		return c.getConfig(g), nil
	case "PUT config":
		return c.putConfig(g, p)
	case "GET snapshot":
		return c.listSnapshots(g), nil
	case "POST snapshot":
		return c.snapshot(g, p)
	case "PUT resize":
		return c.resize(g, p)
	case "POST clone":
		return c.cloneGuest(g, p)
	case "POST template":
		return c.template(g)
	case "DELETE ":
		return c.destroy(g)
	case "POST agent/ping":
		if e := c.agentUp(g); e != nil {
			return nil, e
		}
		return map[string]any{"result": map[string]any{}}, nil
	case "POST agent/exec":
		return c.agentExec(g, p)
	case "GET agent/exec-status":
		return c.agentExecStatus(g, p)
	}
	return nil, errf(501, "Method '%s /nodes/%s/%s' not implemented", method, node, strings.Join(seg, "/"))
}

func (c *Cluster) locked(g *Guest) *apiError {
	if g.Lock != "" {
		return errf(500, "%s is locked (%s)", typeLabel(g.Type), g.Lock)
	}
	return nil
}

// taskType is Proxmox's task type for an operation on a guest type.
func taskType(typ, op string) string {
	if typ == "lxc" {
		return "vz" + op
	}
	return "qm" + op
}

// configKeys are the parameters that are not config keys.
var notConfig = map[string]bool{"vmid": true, "ostemplate": true, "storage": true, "password": true,
	"ssh-public-keys": true, "start": true, "digest": true, "delete": true, "node": true, "force": true}

func checkKeys(typ string, p params) *apiError {
	for k := range p.s {
		if typ == "lxc" && strings.HasPrefix(k, "lxc.") {
			// Proxmox's API has no parameter for raw LXC keys: they can
			// only be written into the config file on the node.
			return badParam(k, "property is not defined in schema and the schema does not allow additional properties")
		}
	}
	return nil
}

// notRoot refuses what Proxmox lets only the user root@pam do: the fake
// is always reached with a token, and a token's user is never root@pam
// (pve-container's check_ct_modify_config_perm, pve-storage's
// check_volume_access). privileged says the container is privileged.
func notRoot(typ string, p params, privileged bool) *apiError {
	for _, k := range slices.Sorted(maps.Keys(p.s)) {
		v := p.s[k]
		switch {
		case k == "ostemplate" && strings.HasPrefix(v, "/"),
			diskKeyRE.MatchString(k) && strings.Contains(v, "import-from=/"):
			return errf(500, "Only root can pass arbitrary filesystem paths.")
		case typ != "lxc":
		case devKeyRE.MatchString(k):
			return errf(403, "Permission check failed (configuring device passthrough is only allowed for root@pam)")
		case k == "features" && privileged:
			return errf(403, "Permission check failed (changing feature flags for privileged container is only allowed for root@pam)")
		case k == "features":
			for _, f := range strings.Split(v, ",") {
				if name, _, _ := strings.Cut(f, "="); name != "nesting" {
					return errf(403, "Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)")
				}
			}
		}
	}
	return nil
}

var devKeyRE = regexp.MustCompile(`^dev\d+$`)

func (c *Cluster) create(node, typ string, p params) (any, *apiError) {
	vmid, ok := p.int("vmid")
	if !ok {
		return nil, badParam("vmid", "property is missing and it is not optional")
	}
	if e := checkKeys(typ, p); e != nil {
		return nil, e
	}
	// pct create makes a privileged container unless told otherwise.
	if e := notRoot(typ, p, p.s["unprivileged"] != "1"); e != nil {
		return nil, e
	}
	if typ == "lxc" && p.s["ostemplate"] == "" {
		return nil, badParam("ostemplate", "property is missing and it is not optional")
	}
	if acl := fmt.Sprintf("/vms/%d", vmid); !c.may(acl, "VM.Allocate") {
		return nil, denied(acl, "VM.Allocate")
	}
	if old := c.guests[vmid]; old != nil {
		return nil, errf(500, "%s %d already exists on node '%s'", typeLabel(typ), vmid, old.Node)
	}
	if e := c.checkVolume(p.s["ostemplate"]); typ == "lxc" && e != nil {
		return nil, e
	}
	if _, src, ok := strings.Cut(p.s["scsi0"], "import-from="); ok {
		if e := c.checkVolume(strings.Split(src, ",")[0]); e != nil {
			return nil, e
		}
	}
	cfg := map[string]string{}
	for k, v := range p.s {
		if !notConfig[k] {
			cfg[k] = v
		}
	}
	if typ == "lxc" {
		pool, size := p.s["storage"], 4
		if rf := p.s["rootfs"]; rf != "" {
			var s string
			pool, s, _ = strings.Cut(rf, ":")
			if n, err := strconv.Atoi(s); err == nil {
				size = n
			}
		}
		if pool == "" {
			pool = "local"
		}
		cfg["rootfs"] = fmt.Sprintf("%s:subvol-%d-disk-0,size=%dG", pool, vmid, size)
	} else {
		if d := cfg["scsi0"]; d != "" {
			pool, rest, _ := strings.Cut(d, ":")
			size, _ := strconv.Atoi(strings.Split(rest, ",")[0])
			if strings.Contains(rest, "import-from=") {
				size = c.opts.ImportedDiskGB
			}
			cfg["scsi0"] = fmt.Sprintf("%s:vm-%d-disk-0,size=%dG", pool, vmid, size)
		}
		if d := cfg["ide2"]; strings.HasSuffix(d, ":cloudinit") {
			cfg["ide2"] = fmt.Sprintf("%s:vm-%d-cloudinit,media=cdrom", strings.TrimSuffix(d, ":cloudinit"), vmid)
		}
	}
	g := &Guest{VMID: vmid, Type: typ, Node: node, Lock: "create", Config: cfg, Files: map[string][]byte{}}
	c.guests[vmid] = g
	upid := c.startTask(node, taskType(typ, "create"), vmid, func() error {
		g.Lock = ""
		return nil
	}, func() {
		delete(c.guests, vmid)
	})
	return upid, nil
}

func (c *Cluster) statusCurrent(g *Guest) map[string]any {
	st := "stopped"
	if g.Running {
		st = "running"
	}
	out := map[string]any{"vmid": g.VMID, "status": st, "name": g.name(), "maxdisk": diskGB(g) << 30}
	if g.Template {
		out["template"] = 1
	}
	if g.Lock != "" {
		out["lock"] = g.Lock
	}
	return out
}

func (c *Cluster) power(g *Guest, op string) (any, *apiError) {
	if e := c.locked(g); e != nil {
		return nil, e
	}
	label := typeLabel(g.Type)
	switch op {
	case "start":
		if g.Template {
			if g.Type == "lxc" {
				return nil, errf(500, "you can't start a CT if it's a template")
			}
			return nil, errf(500, "you can't start a vm if it's a template")
		}
		if g.Running {
			return nil, errf(500, "%s %d already running", label, g.VMID)
		}
	default:
		if !g.Running {
			return nil, errf(500, "%s %d not running", label, g.VMID)
		}
	}
	return c.startTask(g.Node, taskType(g.Type, op), g.VMID, func() error {
		g.Running = op == "start"
		g.StartedAt = time.Now()
		return nil
	}, nil), nil
}

// intKeys are returned as numbers, as Proxmox does.
var intKeys = map[string]bool{"memory": true, "cores": true, "swap": true, "onboot": true, "unprivileged": true,
	"template": true, "sockets": true, "balloon": true, "cpulimit": true}

func (c *Cluster) getConfig(g *Guest) map[string]any {
	out := map[string]any{"digest": fmt.Sprintf("%040x", len(g.Config)*7919+len(g.Raw))}
	for k, v := range g.Config {
		if n, err := strconv.Atoi(v); err == nil && intKeys[k] {
			out[k] = n
		} else {
			out[k] = v
		}
	}
	if g.Template {
		out["template"] = 1
	}
	if g.Lock != "" {
		out["lock"] = g.Lock
	}
	if len(g.Raw) > 0 {
		var pairs [][2]string
		pairs = append(pairs, g.Raw...)
		out["lxc"] = pairs
	}
	return out
}

func (c *Cluster) putConfig(g *Guest, p params) (any, *apiError) {
	if e := checkKeys(g.Type, p); e != nil {
		return nil, e
	}
	if e := notRoot(g.Type, p, g.Config["unprivileged"] != "1"); e != nil {
		return nil, e
	}
	if e := c.locked(g); e != nil {
		return nil, e
	}
	for _, k := range strings.FieldsFunc(p.s["delete"], func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
		delete(g.Config, k)
	}
	for k, v := range p.s {
		if !notConfig[k] {
			g.Config[k] = v
		}
	}
	return nil, nil
}

func (c *Cluster) listSnapshots(g *Guest) []map[string]any {
	var out []map[string]any
	parent := ""
	for i, s := range g.Snapshots {
		e := map[string]any{"name": s.Name, "snaptime": 1700000000 + i, "description": ""}
		if parent != "" {
			e["parent"] = parent
		}
		out = append(out, e)
		parent = s.Name
	}
	cur := map[string]any{"name": "current", "description": "You are here!", "running": b2i(g.Running)}
	if parent != "" {
		cur["parent"] = parent
	}
	return append(out, cur)
}

var snapNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_\-]{1,39}$`)

func (c *Cluster) snapshot(g *Guest, p params) (any, *apiError) {
	name := p.s["snapname"]
	if !snapNameRE.MatchString(name) {
		return nil, badParam("snapname", "invalid format - invalid configuration ID '"+name+"'")
	}
	if e := c.locked(g); e != nil {
		return nil, e
	}
	if key, storage, ok := c.lacks(g.Type, g.Config, pvestorage.Snapshot); ok {
		// pve-storage's volume_has_feature says no for the volume.
		return nil, errf(500, "snapshot feature is not available (%s on storage '%s')", key, storage)
	}
	if g.HasSnapshot(name) || name == "current" {
		return nil, errf(500, "snapshot name '%s' already used", name)
	}
	g.Lock = "snapshot"
	return c.startTask(g.Node, taskType(g.Type, "snapshot"), g.VMID, func() error {
		g.Lock = ""
		g.Snapshots = append(g.Snapshots, Snapshot{Name: name, Config: maps.Clone(g.Config), Raw: slices.Clone(g.Raw)})
		return nil
	}, func() { g.Lock = "" }), nil
}

func (c *Cluster) resize(g *Guest, p params) (any, *apiError) {
	disk, size := p.s["disk"], p.s["size"]
	cur, ok := g.Config[disk]
	if !ok {
		return nil, errf(500, "unable to parse volume ID '%s'", disk)
	}
	if e := c.locked(g); e != nil {
		return nil, e
	}
	have := 0
	if m := sizeRE.FindStringSubmatch(cur); m != nil {
		have, _ = strconv.Atoi(m[1])
	}
	rel := strings.HasPrefix(size, "+")
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(size, "+"), "G"))
	if err != nil {
		return nil, badParam("size", "value does not match the regex pattern")
	}
	want := n
	if rel {
		want = have + n
	}
	if want < have {
		return nil, errf(500, "unable to shrink disk size")
	}
	return c.startTask(g.Node, "resize", g.VMID, func() error {
		val := g.Config[disk]
		if sizeRE.MatchString(val) {
			val = sizeRE.ReplaceAllStringFunc(val, func(m string) string {
				return strings.Replace(m, "size="+strconv.Itoa(have)+"G", "size="+strconv.Itoa(want)+"G", 1)
			})
		} else {
			val += ",size=" + strconv.Itoa(want) + "G"
		}
		g.Config[disk] = val
		return nil
	}, nil), nil
}

// diskKeyRE matches config keys holding a volume.
var diskKeyRE = regexp.MustCompile(`^(rootfs|mp\d+|scsi\d+|virtio\d+|sata\d+|ide\d+|efidisk0|tpmstate0)$`)

func (c *Cluster) cloneGuest(src *Guest, p params) (any, *apiError) {
	newid, ok := p.int("newid")
	if !ok {
		return nil, badParam("newid", "property is missing and it is not optional")
	}
	if e := c.locked(src); e != nil {
		return nil, e
	}
	if old := c.guests[newid]; old != nil {
		return nil, errf(500, "unable to create %s %d - %s %d already exists on node '%s'", typeLabel(src.Type), newid, typeLabel(src.Type), newid, old.Node)
	}
	target := src.Node
	if t := p.s["target"]; t != "" {
		if !c.hasNode(t) {
			return nil, errf(500, "no such cluster node '%s'", t)
		}
		if c.down[t] {
			return nil, errf(500, "target node '%s' is not online", t)
		}
		target = t
	}
	cfg, raw := src.Config, src.Raw
	if snap := p.s["snapname"]; snap != "" {
		var found *Snapshot
		for i := range src.Snapshots {
			if src.Snapshots[i].Name == snap {
				found = &src.Snapshots[i]
			}
		}
		if found == nil {
			return nil, errf(500, "snapshot '%s' does not exist", snap)
		}
		cfg, raw = found.Config, found.Raw
	}
	full := !src.Template
	if f, ok := p.s["full"]; ok {
		full = f == "1"
	}
	if !full && !src.Template {
		return nil, errf(500, "parameter 'full' must be set: linked clone is only possible from a template")
	}
	if !full {
		if key, _, ok := c.lacks(src.Type, cfg, pvestorage.LinkedClone); ok {
			return nil, errf(500, "Linked clone feature is not supported for drive '%s'", key)
		}
	}
	if full && p.s["snapname"] != "" {
		if key, _, ok := c.lacks(src.Type, cfg, pvestorage.CopySnapshot); ok {
			return nil, errf(500, "Full clone feature is not supported for drive '%s'", key)
		}
	}
	if target != src.Node {
		for k, v := range cfg {
			if !diskKeyRE.MatchString(k) {
				continue
			}
			pool, _, _ := strings.Cut(v, ":")
			if slices.Contains(c.opts.LocalStorages, pool) {
				return nil, errf(500, "can't clone %s to node '%s' (%s uses local storage '%s')", typeLabel(src.Type), target, typeLabel(src.Type), pool)
			}
		}
	}
	ncfg := map[string]string{}
	srcTag := fmt.Sprintf("-%d-", src.VMID)
	newTag := fmt.Sprintf("-%d-", newid)
	for k, v := range cfg {
		if diskKeyRE.MatchString(k) {
			v = strings.Replace(v, srcTag, newTag, 1)
		}
		ncfg[k] = v
	}
	delete(ncfg, "template")
	if src.Type == "lxc" && p.s["hostname"] != "" {
		ncfg["hostname"] = p.s["hostname"]
	}
	if src.Type == "qemu" && p.s["name"] != "" {
		ncfg["name"] = p.s["name"]
	}
	// Proxmox copies the source's firewall to the clone (clone_vmfw_conf).
	ng := &Guest{VMID: newid, Type: src.Type, Node: target, Lock: "create", Config: ncfg, Raw: slices.Clone(raw), Files: map[string][]byte{},
		FirewallOptions: maps.Clone(src.FirewallOptions), FirewallRules: cloneRules(src.FirewallRules)}
	c.guests[newid] = ng
	srcLock := "disk"
	if src.Type == "qemu" {
		srcLock = "clone"
	}
	src.Lock = srcLock
	return c.startTask(src.Node, taskType(src.Type, "clone"), src.VMID, func() error {
		src.Lock, ng.Lock = "", ""
		return nil
	}, func() {
		src.Lock = ""
		delete(c.guests, newid)
	}), nil
}

func (c *Cluster) template(g *Guest) (any, *apiError) {
	if e := c.locked(g); e != nil {
		return nil, e
	}
	if g.Running {
		return nil, errf(500, "%s %d is running - cannot convert to template", typeLabel(g.Type), g.VMID)
	}
	if len(g.Snapshots) > 0 {
		// As pve-container's and qemu-server's template endpoints refuse.
		return nil, errf(500, "unable to create template, because %s contains snapshots", typeLabel(g.Type))
	}
	if g.Type == "lxc" {
		// A container's conversion is synchronous: no task.
		g.Template = true
		g.Config["template"] = "1"
		return nil, nil
	}
	return c.startTask(g.Node, "qmtemplate", g.VMID, func() error {
		g.Template = true
		g.Config["template"] = "1"
		return nil
	}, nil), nil
}

func (c *Cluster) destroy(g *Guest) (any, *apiError) {
	if e := c.locked(g); e != nil {
		return nil, e
	}
	if g.Running {
		return nil, errf(500, "%s %d is running - unable to destroy", typeLabel(g.Type), g.VMID)
	}
	g.Lock = "destroyed"
	return c.startTask(g.Node, taskType(g.Type, "destroy"), g.VMID, func() error {
		delete(c.guests, g.VMID)
		return nil
	}, func() { g.Lock = "" }), nil
}

func (c *Cluster) agentExec(g *Guest, p params) (any, *apiError) {
	if g.Type != "qemu" {
		return nil, errf(501, "Method 'POST agent/exec' not implemented")
	}
	if e := c.agentUp(g); e != nil {
		return nil, e
	}
	argv := p.lists["command"]
	if len(argv) == 0 {
		return nil, badParam("command", "property is missing and it is not optional")
	}
	c.execPID++
	pid := c.execPID
	node, vmid, stdin := g.Node, g.VMID, []byte(p.s["input-data"])
	// The command runs without the lock so that an ExecFunc may call back
	// into the cluster.
	c.mu.Unlock()
	out, code := c.runExec(node, vmid, argv, stdin)
	c.mu.Lock()
	c.execs[pid] = execResult{out: out, code: code}
	return map[string]any{"pid": pid}, nil
}

// agentUp answers as Proxmox does while a VM's guest agent is not there.
func (c *Cluster) agentUp(g *Guest) *apiError {
	if g.Type != "qemu" {
		return errf(501, "Method 'POST agent' not implemented")
	}
	if !strings.HasPrefix(g.Config["agent"], "1") {
		return errf(500, "No QEMU guest agent configured")
	}
	if !g.Running {
		return errf(500, "VM %d is not running", g.VMID)
	}
	if time.Since(g.StartedAt) < c.opts.AgentDelay {
		return errf(500, "QEMU guest agent is not running")
	}
	return nil
}

func (c *Cluster) agentExecStatus(g *Guest, p params) (any, *apiError) {
	pid, _ := p.int("pid")
	r, ok := c.execs[pid]
	if !ok {
		return nil, errf(500, "Agent error: Invalid parameter 'pid'")
	}
	return map[string]any{"exited": 1, "exitcode": r.code, "out-data": r.out}, nil
}

// runExec runs argv inside guest vmid on node (vmid 0: on the node). It
// understands "install -m MODE /dev/stdin PATH", which phoenix uses to copy
// files in; anything else is recorded and answered by the ExecFunc.
func (c *Cluster) runExec(node string, vmid int, argv []string, stdin []byte) (string, int) {
	if len(argv) == 5 && argv[0] == "install" && argv[1] == "-m" && argv[3] == "/dev/stdin" {
		c.mu.Lock()
		defer c.mu.Unlock()
		if vmid == 0 {
			mode, err := strconv.ParseUint(argv[2], 8, 32)
			if err != nil {
				return fmt.Sprintf("install: invalid mode '%s'\n", argv[2]), 1
			}
			c.setNodeFile(node, argv[4], stdin, os.FileMode(mode))
			return "", 0
		}
		g := c.guests[vmid]
		if g == nil {
			return fmt.Sprintf("CT %d does not exist", vmid), 2
		}
		g.Files[argv[4]] = slices.Clone(stdin)
		return "", 0
	}
	c.mu.Lock()
	if _, ok := c.nodeFiles[node][argv[0]]; ok && vmid == 0 && c.nodeModes[node][argv[0]]&0o111 == 0 {
		c.mu.Unlock()
		return fmt.Sprintf("sh: 1: %s: Permission denied\n", argv[0]), 126
	}
	if vmid == 0 {
		c.nodeExecs[node] = append(c.nodeExecs[node], slices.Clone(argv))
	} else if g := c.guests[vmid]; g != nil {
		g.Execs = append(g.Execs, slices.Clone(argv))
	}
	fn := c.exec
	c.mu.Unlock()
	if fn == nil {
		return "", 0
	}
	return fn(node, vmid, argv, stdin)
}
