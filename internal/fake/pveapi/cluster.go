package fakepveapi

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/pveschema"
)

// Options configure a fake cluster.
type Options struct {
	// Nodes are the node names; default pve1, pve2, pve3.
	Nodes []string
	// TokenID ("user@realm!name") and Secret are the one API token the
	// cluster accepts.
	TokenID, Secret string
	// TaskDuration is how long every task runs; default 5ms.
	TaskDuration time.Duration
	// LocalStorages are storage pools that are not shared between nodes: a
	// clone to another node from a guest whose disks live there fails.
	LocalStorages []string
	// ImportedDiskGB is the size of a disk imported from a cloud image
	// (import-from); default 3.
	ImportedDiskGB int
	// AgentDelay is how long after a VM starts its guest agent answers;
	// before, the agent endpoints say "QEMU guest agent is not running",
	// as they do while a cloud image boots and installs the agent.
	AgentDelay time.Duration
	// NoAudit are guests the token lacks VM.Audit on: /cluster/resources
	// leaves them out, as Proxmox does, and their own endpoints answer 403.
	NoAudit []int
	// Version is the Proxmox VE major version the cluster plays: its
	// schema checks every parameter of create, config, clone, resize,
	// snapshot and template, and /version reports it. Default 9.
	Version pveschema.Version
	// Storages are the storage IDs and their types (dir, nfs, zfspool,
	// lvmthin, ...), which decide what snapshots and clones the volumes
	// on them allow. Default local (dir), local-lvm (lvmthin) and
	// local-zfs (zfspool). A volume on a storage not listed is not
	// checked.
	Storages map[string]string
	// StorageContent are storages' content types ("images,rootdir");
	// default: every type for file storages, images and rootdir for the
	// others.
	StorageContent map[string]string
	// Volumes are the volume IDs each storage holds, listed by
	// GET .../storage/{storage}/content; a create from an ostemplate or
	// import-from volume on a storage listed here fails when the volume is
	// not. A storage not listed holds every volume but lists none.
	Volumes map[string][]string
	// Bridges are the bridges of every node; default vmbr0.
	Bridges []string
	// Permissions are the token's ACL: path -> privileges, propagated to
	// the paths below unless one of them has its own entry. nil gives every
	// privilege everywhere, as root@pam's token without privilege
	// separation has. GET /access/permissions answers from it, storages
	// the token may not see are left out of the node's storage list, and
	// a create without VM.Allocate on /vms/{vmid} is refused.
	Permissions map[string][]string
}

// Guest is a guest as the fake cluster holds it.
type Guest struct {
	VMID int
	// Type is "lxc" or "qemu".
	Type     string
	Node     string
	Running  bool
	Template bool
	// Lock is the config lock ("create", "disk", "clone", "snapshot"), or "".
	Lock string
	// Config holds the API config keys, as set.
	Config map[string]string
	// Raw holds a container's raw lxc.* lines in order, as [key, value].
	Raw [][2]string
	// Snapshots are in the order taken.
	Snapshots []Snapshot
	// Files are files written inside the guest (pct exec install, the
	// guest agent), by path.
	Files map[string][]byte
	// Execs are the commands run inside the guest, in order.
	Execs [][]string
	// StartedAt is when the guest last started.
	StartedAt time.Time
	// FirewallOptions and FirewallRules are the guest's firewall, as
	// pve-firewall keeps them in <vmid>.fw: options by name, rules in
	// order, each by its API field.
	FirewallOptions map[string]string
	FirewallRules   []map[string]string
}

// Snapshot is a snapshot with the config it froze.
type Snapshot struct {
	Name   string
	Config map[string]string
	Raw    [][2]string
}

func (g *Guest) clone() *Guest {
	c := *g
	c.Config = maps.Clone(g.Config)
	c.Raw = slices.Clone(g.Raw)
	c.Snapshots = slices.Clone(g.Snapshots)
	c.Files = maps.Clone(g.Files)
	c.Execs = slices.Clone(g.Execs)
	c.FirewallOptions = maps.Clone(g.FirewallOptions)
	c.FirewallRules = cloneRules(g.FirewallRules)
	return &c
}

// HasSnapshot reports whether the guest has a snapshot of that name.
func (g *Guest) HasSnapshot(name string) bool {
	for _, s := range g.Snapshots {
		if s.Name == name {
			return true
		}
	}
	return false
}

// confFile is the guest's /etc/pve/lxc/<vmid>.conf as Proxmox writes it:
// the current config, then a section per snapshot.
func (g *Guest) confFile() string {
	var b strings.Builder
	writeConf(&b, g.Config, g.Lock, g.Raw)
	for _, s := range g.Snapshots {
		fmt.Fprintf(&b, "\n[%s]\n", s.Name)
		writeConf(&b, s.Config, "", s.Raw)
	}
	return b.String()
}

func writeConf(b *strings.Builder, cfg map[string]string, lock string, raw [][2]string) {
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		fmt.Fprintf(b, "%s: %s\n", k, cfg[k])
	}
	if lock != "" {
		fmt.Fprintf(b, "lock: %s\n", lock)
	}
	for _, kv := range raw {
		fmt.Fprintf(b, "%s: %s\n", kv[0], kv[1])
	}
}

// RawValue returns the raw lxc.* values of key joined by "\n".
func (g *Guest) RawValue(key string) string {
	var vals []string
	for _, kv := range g.Raw {
		if kv[0] == key {
			vals = append(vals, kv[1])
		}
	}
	return strings.Join(vals, "\n")
}

// Request is one API request as the fake saw it (never with its token).
type Request struct {
	Method string
	// Path is the path below /api2/json, without the query.
	Path   string
	Params map[string]string
}

// HTTPFault makes matching requests fail.
type HTTPFault struct {
	// Method matches the request method; "" matches any.
	Method string
	// Path is a regular expression matched against the path below
	// /api2/json.
	Path string
	// Status is the HTTP status; Message goes into the status line and the
	// body's message.
	Status  int
	Message string
	// Times is how many requests fail; 0 means every one.
	Times int
	// AfterServe serves the request first and then answers with the
	// fault: the work is done but its answer lost, as when a proxy times
	// out on a request the node carried out.
	AfterServe bool

	re *regexp.Regexp
}

// TaskFault makes the next matching task fail although its request
// succeeded.
type TaskFault struct {
	// Type is the task type (vzstart, qmclone, ...); "" matches any.
	Type string
	// VMID matches the task's guest; 0 matches any.
	VMID int
	// ExitStatus is what the task reports instead of "OK".
	ExitStatus string
}

// ExecFunc decides what a command run inside a guest (pct exec over SSH, or
// the guest agent) prints and how it exits. vmid is 0 for a command run on
// the node itself.
type ExecFunc func(node string, vmid int, argv []string, stdin []byte) (output string, exitCode int)

// Cluster is a fake Proxmox VE cluster. Its methods are safe for concurrent
// use.
type Cluster struct {
	opts Options

	mu        sync.Mutex
	nodes     []string
	down      map[string]bool
	guests    map[int]*Guest
	tasks     map[string]*task
	pid       int
	requests  []Request
	httpFault []*HTTPFault
	taskFault []TaskFault
	running   map[string]int
	maxRun    map[string]int
	execPID   int
	execs     map[int]execResult
	nodeFiles map[string]map[string][]byte
	nodeModes map[string]map[string]os.FileMode
	nodeExecs map[string][][]string
	onRequest func(method, path string)
	filter    AnswerFilter
	exec      ExecFunc
	closed    chan struct{}
	closeOnce sync.Once
	ssh       []*sshServer
}

type task struct {
	upid       string
	node       string
	typ        string
	id         string
	start      time.Time
	done       bool
	exitStatus string
	log        []string
}

type execResult struct {
	out  string
	code int
}

// New returns a cluster with no guests.
func New(opts Options) *Cluster {
	if len(opts.Nodes) == 0 {
		opts.Nodes = []string{"pve1", "pve2", "pve3"}
	}
	if opts.TaskDuration == 0 {
		opts.TaskDuration = 5 * time.Millisecond
	}
	if opts.Version == 0 {
		opts.Version = pveschema.PVE9
	}
	if opts.Storages == nil {
		opts.Storages = map[string]string{"local": "dir", "local-lvm": "lvmthin", "local-zfs": "zfspool"}
	}
	if opts.Bridges == nil {
		opts.Bridges = []string{"vmbr0"}
	}
	if opts.ImportedDiskGB == 0 {
		opts.ImportedDiskGB = 3
	}
	return &Cluster{
		opts:      opts,
		nodes:     slices.Clone(opts.Nodes),
		down:      map[string]bool{},
		guests:    map[int]*Guest{},
		tasks:     map[string]*task{},
		pid:       4000,
		running:   map[string]int{},
		maxRun:    map[string]int{},
		execs:     map[int]execResult{},
		nodeFiles: map[string]map[string][]byte{},
		nodeModes: map[string]map[string]os.FileMode{},
		nodeExecs: map[string][][]string{},
		closed:    make(chan struct{}),
	}
}

// Close releases requests hanging on a down node and stops the SSH servers.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() { close(c.closed) })
	c.mu.Lock()
	servers := c.ssh
	c.ssh = nil
	c.mu.Unlock()
	for _, s := range servers {
		s.close()
	}
}

// Nodes returns the node names.
func (c *Cluster) Nodes() []string { return slices.Clone(c.nodes) }

// SetNodeDown makes a node stop answering (down) or answer again.
func (c *Cluster) SetNodeDown(node string, down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[node] = down
}

func (c *Cluster) isDown(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down[node]
}

// InjectHTTP adds a fault; faults are tried in the order added.
func (c *Cluster) InjectHTTP(f HTTPFault) {
	f.re = regexp.MustCompile(f.Path)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.httpFault = append(c.httpFault, &f)
}

// FailTask makes the next task matching f fail.
func (c *Cluster) FailTask(f TaskFault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.taskFault = append(c.taskFault, f)
}

// OnRequest sets a hook run before each request is served (outside the
// cluster's lock, so it may call SetNodeDown and the like).
func (c *Cluster) OnRequest(fn func(method, path string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRequest = fn
}

// AnswerFilter rewrites the data of a successful answer before it is
// sent, to give the client answers real Proxmox would not (fields
// missing, nulls, wrong types). data is what the fake would send; the
// result is sent instead.
type AnswerFilter func(method, path string, data any) any

// FilterAnswers sets the AnswerFilter; nil sends answers unchanged.
func (c *Cluster) FilterAnswers(fn AnswerFilter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.filter = fn
}

// SetAgentDelay changes Options.AgentDelay.
func (c *Cluster) SetAgentDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts.AgentDelay = d
}

// SetExec sets what commands run inside guests (and on nodes) do; nil
// means every command succeeds silently.
func (c *Cluster) SetExec(fn ExecFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exec = fn
}

// Requests returns every request served so far.
func (c *Cluster) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

// MaxRunningTasks is the most tasks that ran at once on node.
func (c *Cluster) MaxRunningTasks(node string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxRun[node]
}

// Guest returns a copy of a guest, or nil.
func (c *Cluster) Guest(vmid int) *Guest {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.guests[vmid]
	if g == nil {
		return nil
	}
	return g.clone()
}

// Guests returns copies of every guest, by VMID.
func (c *Cluster) Guests() []*Guest {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Guest, 0, len(c.guests))
	for _, id := range sortedIDs(c.guests) {
		out = append(out, c.guests[id].clone())
	}
	return out
}

// NodeFiles returns the files written on a node itself (host setup).
func (c *Cluster) NodeFiles(node string) map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.nodeFiles[node])
}

// SetNodeFile puts a file on a node itself, as the operator would (the old
// tree's host-side scripts, kept the same on every node).
func (c *Cluster) SetNodeFile(node, path string, data []byte, mode os.FileMode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setNodeFile(node, path, data, mode)
}

func (c *Cluster) setNodeFile(node, path string, data []byte, mode os.FileMode) {
	if c.nodeFiles[node] == nil {
		c.nodeFiles[node] = map[string][]byte{}
		c.nodeModes[node] = map[string]os.FileMode{}
	}
	c.nodeFiles[node][path] = slices.Clone(data)
	c.nodeModes[node][path] = mode
}

// NodeExecs returns the commands run on a node itself (host setup).
func (c *Cluster) NodeExecs(node string) [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodeExecs[node])
}

// AddGuest puts a guest on the cluster directly, for test setup.
func (c *Cluster) AddGuest(g Guest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g.Config == nil {
		g.Config = map[string]string{}
	}
	if g.Files == nil {
		g.Files = map[string][]byte{}
	}
	c.guests[g.VMID] = &g
}

// RemoveGuest deletes a guest directly, as someone acting behind
// phoenix's back would.
func (c *Cluster) RemoveGuest(vmid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.guests, vmid)
}

func sortedIDs(m map[int]*Guest) []int {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

func (c *Cluster) hasNode(n string) bool { return slices.Contains(c.nodes, n) }

// typeLabel is how Proxmox names a guest type in messages.
func typeLabel(typ string) string {
	if typ == "lxc" {
		return "CT"
	}
	return "VM"
}

// startTask registers a task on node and finishes it after TaskDuration,
// applying fn then (under the lock). A TaskFault matching it, or fn
// failing, ends it with an error exit status; onFail then runs instead
// (for example to drop a half-created guest). Called with c.mu held.
func (c *Cluster) startTask(node, typ string, vmid int, fn func() error, onFail func()) string {
	c.pid++
	now := time.Now()
	upid := fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%d:%s:", node, c.pid, c.pid*7, now.Unix(), typ, vmid, c.opts.TokenID)
	t := &task{upid: upid, node: node, typ: typ, id: strconv.Itoa(vmid), start: now}
	c.tasks[upid] = t
	c.running[node]++
	if c.running[node] > c.maxRun[node] {
		c.maxRun[node] = c.running[node]
	}
	var fault *TaskFault
	for i, f := range c.taskFault {
		if (f.Type == "" || f.Type == typ) && (f.VMID == 0 || f.VMID == vmid) {
			fault = &f
			c.taskFault = append(c.taskFault[:i], c.taskFault[i+1:]...)
			break
		}
	}
	go func() {
		for {
			select {
			case <-time.After(c.opts.TaskDuration):
			case <-c.closed:
				return
			}
			// A task on a node that stopped answering does not progress.
			if !c.isDown(node) {
				break
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.running[node]--
		t.done = true
		var err error
		if fault != nil {
			err = fmt.Errorf("%s", fault.ExitStatus)
		} else {
			err = fn()
		}
		if err != nil {
			t.exitStatus = err.Error()
			t.log = append(t.log, "TASK ERROR: "+err.Error())
			if onFail != nil {
				onFail()
			}
			return
		}
		t.exitStatus = "OK"
		t.log = append(t.log, "TASK OK")
	}()
	return upid
}
