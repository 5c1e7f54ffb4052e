package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
	"github.com/phoenix-hypervisor/phoenix/internal/pvefirewall"
	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// Options configure a simulated node.
type Options struct {
	// Dir holds the node's state (<state-dir>/sim).
	Dir string
	// Latency is added to every operation that changes the host or runs a
	// script. Reads are free, like a cached `pct status`.
	Latency time.Duration
	// FailRate is the probability that an operation which changes the host
	// or runs a script fails before doing anything.
	FailRate float64
	// Seed makes injected failures repeatable.
	Seed uint64
	// ReadOnly opens an existing node for reading only: nothing is
	// created, written or locked in Dir, and every change is refused. For
	// read-only verbs, which must work on a state dir they may not write.
	ReadOnly bool
}

// Sim is a simulated Proxmox node.
type Sim struct {
	opts  Options
	state *stateLog
	rmu   sync.Mutex
	rng   *rand.Rand
	log   *os.File
}

var (
	_ hypervisor.Host        = (*Sim)(nil)
	_ hypervisor.SetupRunner = (*Sim)(nil)
)

// New opens (creating if needed) the simulated node in opts.Dir.
func New(opts Options) (*Sim, error) {
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	if opts.ReadOnly {
		if err := fsutil.CheckDir(opts.Dir); err != nil {
			return nil, fmt.Errorf("sim state: %w", err)
		}
		state, err := openLog(opts.Dir, true)
		if err != nil {
			return nil, err
		}
		return &Sim{opts: opts, state: state, rng: rng}, nil
	}
	if err := fsutil.MkdirPrivate(opts.Dir); err != nil {
		return nil, fmt.Errorf("sim state: %w", err)
	}
	state, err := openLog(opts.Dir, false)
	if err != nil {
		return nil, err
	}
	log, err := fsutil.OpenNoFollow(filepath.Join(opts.Dir, "ops.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		state.close()
		return nil, fmt.Errorf("sim state: %w", err)
	}
	return &Sim{opts: opts, state: state, rng: rng, log: log}, nil
}

// Close releases the node's open files.
func (s *Sim) Close() error {
	if s.log == nil {
		return s.state.close()
	}
	return errors.Join(s.state.close(), s.log.Close())
}

// Dir is where the node keeps its state.
func (s *Sim) Dir() string { return s.opts.Dir }

// record is one guest's state: one line of the state log.
type record struct {
	ID        api.ID            `json:"id"`
	Kind      api.Kind          `json:"kind"`
	Running   bool              `json:"running"`
	Template  bool              `json:"template,omitempty"`
	Config    map[string]string `json:"config"`
	Snapshots []string          `json:"snapshots,omitempty"`
	DiskGB    int               `json:"disk_gb"`
	// Runs counts scripts run inside, by "<folder>/<name>".
	Runs map[string]int `json:"runs,omitempty"`
	// Firewall is the guest's .fw file as Proxmox would keep it.
	Firewall string `json:"firewall,omitempty"`
}

// read returns a copy of the guest's record that the caller may change;
// ErrNotFound also when a guest of the other kind holds the ID (one ID
// space, as on Proxmox).
func (s *Sim) read(kind api.Kind, id api.ID) (*record, error) {
	r, err := s.state.get(id)
	if err != nil {
		return nil, err
	}
	if r == nil || r.Kind != kind {
		return nil, hypervisor.NotFound(kind, id)
	}
	return r.clone(), nil
}

// clone copies a record deep enough that changing the copy leaves r alone.
func (r *record) clone() *record {
	c := *r
	c.Config = maps.Clone(r.Config)
	c.Snapshots = slices.Clone(r.Snapshots)
	c.Runs = maps.Clone(r.Runs)
	return &c
}

// op runs one host-changing operation: latency, injected failure, then fn
// under the state log's writers' lock, so that two phoenix processes on one
// state dir never lose each other's change. fn gets the current record
// (nil when absent) and returns the record to write (nil to delete).
func (s *Sim) op(ctx context.Context, name string, kind api.Kind, id api.ID, fn func(r *record) (*record, error)) error {
	return s.opLocked(ctx, name, kind, id, false, fn)
}

// errUnchanged, from an operation's fn, means there is nothing to do: no
// write, no line in ops.log.
var errUnchanged = errors.New("unchanged")

// locked refuses to change a guest whose config holds a lock (a backup,
// a migration), as every mutating pct and qm command does.
func locked(name string, r *record) error {
	if l := r.Config["lock"]; l != "" {
		return fmt.Errorf("sim: %s %s %s: %w (%s)", name, r.Kind, r.ID, hypervisor.ErrLocked, l)
	}
	return nil
}

// opLocked is op; ignoreLock lets a change through to a locked guest (the
// lock itself being set or removed).
func (s *Sim) opLocked(ctx context.Context, name string, kind api.Kind, id api.ID, ignoreLock bool, fn func(r *record) (*record, error)) error {
	if err := s.pause(ctx); err != nil {
		return err
	}
	if s.fail() {
		return fmt.Errorf("sim: injected failure: %s %s %s", name, kind, id)
	}
	unlock, err := s.state.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.read(kind, id)
	if err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
		return err
	}
	if cur == nil && name == "create" {
		if other, _ := s.state.get(id); other != nil {
			return fmt.Errorf("sim: %s %s: ID %s is in use by another guest", name, kind, id)
		}
	}
	if cur != nil && !ignoreLock {
		if err := locked(name, cur); err != nil {
			return err
		}
	}
	next, err := fn(cur)
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.state.append(id, next); err != nil {
		return err
	}
	return s.logOp(name, kind, id)
}

func (s *Sim) pause(ctx context.Context) error {
	return retry.Sleep(ctx, s.opts.Latency)
}

func (s *Sim) fail() bool {
	if s.opts.FailRate <= 0 {
		return false
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.rng.Float64() < s.opts.FailRate
}

// record appends one line per change to ops.log. Each line is one write
// on an O_APPEND file, so lines from several processes never interleave.
func (s *Sim) record(line string) error {
	if s.log == nil {
		return errReadOnly
	}
	_, err := s.log.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + " " + line + "\n")
	return err
}

func (s *Sim) logOp(name string, kind api.Kind, id api.ID) error {
	return s.record(fmt.Sprintf("%s %s %s", name, kind, id))
}

func missing(kind api.Kind, id api.ID) error { return hypervisor.NotFound(kind, id) }

// Get returns the guest as the node sees it.
func (s *Sim) Get(ctx context.Context, kind api.Kind, id api.ID) (*hypervisor.Guest, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := s.read(kind, id)
	if err != nil {
		return nil, err
	}
	g := &hypervisor.Guest{ID: r.ID, Kind: r.Kind, Running: r.Running, Template: r.Template,
		Config: r.Config, Snapshots: r.Snapshots, DiskGB: r.DiskGB}
	if g.Firewall, g.FirewallOwned, err = r.firewall(); err != nil {
		return nil, err
	}
	return g, nil
}

func (r *record) firewall() (string, bool, error) {
	if r.Firewall == "" {
		return "", false, nil
	}
	fw, owned, err := pvefirewall.Parse([]byte(r.Firewall))
	if err != nil {
		return "", false, fmt.Errorf("sim: firewall of %s %s: %w", r.Kind, r.ID, err)
	}
	return pvefirewall.Format(fw), owned, nil
}

// Firewall reads the guest's firewall alone (hypervisor.Firewaller).
func (s *Sim) Firewall(ctx context.Context, kind api.Kind, id api.ID) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	r, err := s.read(kind, id)
	if err != nil {
		return "", false, err
	}
	return r.firewall()
}

// SetFirewall writes the guest's firewall file, as the pve backend does.
func (s *Sim) SetFirewall(ctx context.Context, kind api.Kind, id api.ID, fw api.Firewall) error {
	for i, rule := range fw.Rules {
		if errs := pvefirewall.Validate(rule); len(errs) > 0 {
			return fmt.Errorf("sim: firewall of %s %s: rule %d: %v", kind, id, i, errs[0])
		}
	}
	text := string(pvefirewall.File(fw))
	return s.op(ctx, "firewall", kind, id, func(r *record) (*record, error) {
		if r == nil {
			return nil, missing(kind, id)
		}
		if r.Firewall == text {
			return nil, errUnchanged
		}
		r.Firewall = text
		return r, nil
	})
}

// Create makes a guest from an ostemplate or image.
func (s *Sim) Create(ctx context.Context, kind api.Kind, id api.ID, spec hypervisor.CreateSpec) error {
	return s.op(ctx, "create", kind, id, func(r *record) (*record, error) {
		if r != nil {
			return nil, fmt.Errorf("sim: create %s %s: already exists", kind, id)
		}
		if spec.Source == "" {
			return nil, fmt.Errorf("sim: create %s %s: no template or image to create from", kind, id)
		}
		cfg := map[string]string{}
		for k, v := range spec.Config {
			if v != "" {
				cfg[k] = v
			}
		}
		return &record{ID: id, Kind: kind, Config: cfg, DiskGB: spec.DiskGB}, nil
	})
}

// Clone makes dst from src, from a snapshot when one is named.
func (s *Sim) Clone(ctx context.Context, kind api.Kind, src, dst api.ID, spec hypervisor.CloneSpec) error {
	source, err := s.read(kind, src)
	if err != nil {
		return fmt.Errorf("sim: clone %s from %s: %w", dst, src, err)
	}
	if err := locked("clone from", source); err != nil {
		return err
	}
	if spec.Snapshot != "" && !contains(source.Snapshots, spec.Snapshot) {
		return fmt.Errorf("sim: clone %s from %s: source has no snapshot %q", dst, src, spec.Snapshot)
	}
	return s.op(ctx, "clone", kind, dst, func(r *record) (*record, error) {
		if r != nil {
			return nil, fmt.Errorf("sim: clone %s %s: already exists", kind, dst)
		}
		cfg := make(map[string]string, len(source.Config))
		for k, v := range source.Config {
			cfg[k] = v
		}
		nameKey := "hostname"
		if kind == api.KindVM {
			nameKey = "name"
		}
		if spec.Name != "" {
			cfg[nameKey] = spec.Name
		}
		// Proxmox copies the source's firewall file to the clone.
		return &record{ID: dst, Kind: kind, Config: cfg, DiskGB: source.DiskGB, Firewall: source.Firewall}, nil
	})
}

// Set changes config keys; an empty value deletes the key.
func (s *Sim) Set(ctx context.Context, kind api.Kind, id api.ID, values map[string]string) error {
	onlyLock := len(values) > 0
	for k := range values {
		onlyLock = onlyLock && k == "lock"
	}
	return s.opLocked(ctx, "set", kind, id, onlyLock, func(r *record) (*record, error) {
		if r == nil {
			return nil, missing(kind, id)
		}
		if r.Config == nil {
			r.Config = map[string]string{}
		}
		for k, v := range values {
			if v == "" {
				delete(r.Config, k)
			} else {
				r.Config[k] = v
			}
		}
		return r, nil
	})
}

// Resize grows the root disk.
func (s *Sim) Resize(ctx context.Context, kind api.Kind, id api.ID, sizeGB int) error {
	return s.op(ctx, "resize", kind, id, func(r *record) (*record, error) {
		if r == nil {
			return nil, missing(kind, id)
		}
		switch {
		case sizeGB < r.DiskGB:
			return nil, fmt.Errorf("sim: resize %s %s to %dG: shrinking a disk is not supported (now %dG)", kind, id, sizeGB, r.DiskGB)
		case sizeGB == r.DiskGB:
			return nil, errUnchanged
		}
		r.DiskGB = sizeGB
		return r, nil
	})
}

// Start starts a stopped guest.
func (s *Sim) Start(ctx context.Context, kind api.Kind, id api.ID) error {
	return s.op(ctx, "start", kind, id, func(r *record) (*record, error) {
		switch {
		case r == nil:
			return nil, missing(kind, id)
		case r.Template:
			return nil, fmt.Errorf("sim: start %s %s: a template cannot be started", kind, id)
		case r.Running:
			return nil, fmt.Errorf("sim: start %s %s: already running", kind, id)
		}
		r.Running = true
		return r, nil
	})
}

// Stop stops a running guest.
func (s *Sim) Stop(ctx context.Context, kind api.Kind, id api.ID) error {
	return s.op(ctx, "stop", kind, id, func(r *record) (*record, error) {
		switch {
		case r == nil:
			return nil, missing(kind, id)
		case !r.Running:
			return nil, fmt.Errorf("sim: stop %s %s: not running", kind, id)
		}
		r.Running = false
		return r, nil
	})
}

// Destroy removes a stopped guest.
func (s *Sim) Destroy(ctx context.Context, kind api.Kind, id api.ID) error {
	return s.op(ctx, "destroy", kind, id, func(r *record) (*record, error) {
		switch {
		case r == nil:
			return nil, missing(kind, id)
		case r.Running:
			return nil, fmt.Errorf("sim: destroy %s %s: guest is running", kind, id)
		}
		return nil, nil
	})
}

var snapName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,39}$`)

// Snapshot takes a named snapshot.
func (s *Sim) Snapshot(ctx context.Context, kind api.Kind, id api.ID, name string) error {
	return s.op(ctx, "snapshot", kind, id, func(r *record) (*record, error) {
		switch {
		case r == nil:
			return nil, missing(kind, id)
		case !snapName.MatchString(name):
			return nil, fmt.Errorf("sim: snapshot %s %s: invalid snapshot name %q", kind, id, name)
		case contains(r.Snapshots, name):
			return nil, fmt.Errorf("sim: snapshot %s %s: snapshot %q already exists", kind, id, name)
		}
		r.Snapshots = append(r.Snapshots, name)
		return r, nil
	})
}

// ConvertToTemplate turns a stopped guest into a template.
func (s *Sim) ConvertToTemplate(ctx context.Context, kind api.Kind, id api.ID) error {
	return s.op(ctx, "template", kind, id, func(r *record) (*record, error) {
		switch {
		case r == nil:
			return nil, missing(kind, id)
		case r.Running:
			return nil, fmt.Errorf("sim: template %s %s: guest is running", kind, id)
		case len(r.Snapshots) > 0:
			return nil, fmt.Errorf("sim: template %s %s: unable to create template, because the guest contains snapshots", kind, id)
		}
		r.Template = true
		r.Config["template"] = "1"
		return r, nil
	})
}

// Run records a script run inside a running guest.
func (s *Sim) Run(ctx context.Context, kind api.Kind, id api.ID, script hypervisor.Script) error {
	key := string(script.Kind) + "/" + script.Name
	// pct exec and the guest agent do not look at the config lock.
	return s.opLocked(ctx, "run:"+key, kind, id, true, func(r *record) (*record, error) {
		switch {
		case r == nil:
			return nil, missing(kind, id)
		case !r.Running:
			return nil, fmt.Errorf("sim: run %s in %s %s: guest is not running", key, kind, id)
		}
		if script.Path != "" {
			if _, err := os.Stat(script.Path); err != nil {
				return nil, fmt.Errorf("sim: run %s in %s %s: %w", key, kind, id, err)
			}
		}
		if r.Runs == nil {
			r.Runs = map[string]int{}
		}
		r.Runs[key]++
		return r, nil
	})
}

// RunSetupStep records a host setup step; the simulated node has no disks
// or services to set up.
func (s *Sim) RunSetupStep(ctx context.Context, step string, settings json.RawMessage) error {
	if err := s.pause(ctx); err != nil {
		return err
	}
	if s.fail() {
		return fmt.Errorf("sim: injected failure: setup step %s", step)
	}
	return s.record(fmt.Sprintf("setup %s %d", step, len(settings)))
}

// Runs reports how often each script ran inside a guest (test and debug aid).
func (s *Sim) Runs(id api.ID) map[string]int {
	r, err := s.state.get(id)
	if err != nil || r == nil {
		return nil
	}
	return maps.Clone(r.Runs)
}

// Dump returns every guest's state as the sim keeps it (one JSON document
// each), for before/after comparisons in tests.
func (s *Sim) Dump() (map[api.ID]string, error) {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if err := s.state.refresh(); err != nil {
		return nil, err
	}
	out := make(map[api.ID]string, len(s.state.recs))
	for id, rec := range s.state.recs {
		data, err := json.Marshal(rec.r)
		if err != nil {
			return nil, err
		}
		out[id] = string(data)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// EnsureDir records a bind-mount folder phoenix would create on the node;
// the simulated node has no file system of its own.
func (s *Sim) EnsureDir(ctx context.Context, path string, uid, gid int) error {
	if err := s.pause(ctx); err != nil {
		return err
	}
	if s.fail() {
		return fmt.Errorf("sim: injected failure: mkdir %s", path)
	}
	return s.record(fmt.Sprintf("hostdir %s %d:%d", path, uid, gid))
}

// RunOnHost records a script run on the node itself; the simulated node
// runs nothing.
func (s *Sim) RunOnHost(ctx context.Context, path string, args []string) error {
	if err := s.pause(ctx); err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("sim: host script: %w", err)
	}
	return s.record(fmt.Sprintf("hostscript %s %d", filepath.Base(path), len(args)))
}
