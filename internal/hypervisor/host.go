package hypervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// ErrNotFound is returned (wrapped) for a guest that does not exist.
var ErrNotFound = errors.New("guest does not exist")

// ErrLocked is returned (wrapped) when the host refuses an operation because
// the guest is locked by another one; retrying later may succeed.
var ErrLocked = errors.New("guest is locked")

// Guest is a guest as the host sees it.
type Guest struct {
	ID      api.ID
	Kind    api.Kind
	Running bool
	// Template is true once the guest was converted to a template.
	Template bool
	// Config holds the guest's settings by their pct/qm config key (memory,
	// cores, net0, hostname or name, mp0, lxc.apparmor.profile, ...).
	Config map[string]string
	// Snapshots lists snapshot names, oldest first.
	Snapshots []string
	// DiskGB is the size of the root disk (rootfs or scsi0).
	DiskGB int
	// Firewall is the guest's firewall in pvefirewall.Format's form, ""
	// when it has none (or the backend keeps none); FirewallOwned says
	// phoenix wrote it.
	Firewall      string
	FirewallOwned bool
}

// HasSnapshot reports whether the guest has a snapshot of that name.
func (g *Guest) HasSnapshot(name string) bool {
	for _, s := range g.Snapshots {
		if s == name {
			return true
		}
	}
	return false
}

// CreateSpec describes a guest made from scratch.
type CreateSpec struct {
	// Source is the LXC ostemplate or the VM's cloud image.
	Source string
	// Storage is the storage pool for the root disk.
	Storage string
	// DiskGB is the root disk size.
	DiskGB int
	// Config holds the initial settings by config key.
	Config map[string]string
}

// CloneSpec describes a clone.
type CloneSpec struct {
	// Snapshot of the source to clone from; empty clones the current state
	// (or the template, for a template source).
	Snapshot string
	// Name is the new guest's hostname (LXC) or name (VM).
	Name string
	// Full asks for a full copy rather than a linked clone.
	Full bool
}

// ScriptKind says which folder of the scripts directory a script lives in.
type ScriptKind string

// Script kinds, named after their folder.
const (
	FeatureScript ScriptKind = "features"
	AppScript     ScriptKind = "apps"
	HealthScript  ScriptKind = "health"
)

// Script is something run inside a guest.
type Script struct {
	Kind ScriptKind
	// Name is the feature name, the application script's file name, or the
	// health check's name.
	Name string
	// Path is the script on the phoenix host; empty when no scripts folder
	// is configured (the sim backend then only records the run).
	Path string
	// Command, for a health check, is the command line run in the guest
	// instead of a script.
	Command []string
	// Spec is the guest's full JSON spec, unknown fields included, handed
	// to the script.
	Spec json.RawMessage

	// The old tool's scripts (a scripts folder in its layout) are run the
	// way it ran them, which the fields below describe. With Args set, the
	// script gets Args as its arguments instead of the spec's path, and no
	// spec is copied.
	Args []string
	// OnHost runs the script on the phoenix host, not in the guest: the old
	// LXC feature installers and health checks drive the guest themselves
	// (pct exec) given its ID.
	OnHost bool
	// Dir, for a script run in the guest, is the folder inside the guest
	// that the script, the Beside scripts and the Data files (host paths)
	// are copied into before it runs as Dir/<script name>; the folder is
	// removed afterwards. Beside scripts pass the same checks as the
	// script; Data files (the config files phoenix loaded) are private.
	Dir    string
	Beside []string
	Data   []string
}

// Host is a Proxmox node (or cluster) that phoenix drives.
type Host interface {
	// Get returns the guest, or an error wrapping ErrNotFound.
	Get(ctx context.Context, kind api.Kind, id api.ID) (*Guest, error)
	// Create makes a guest from an ostemplate or a cloud image.
	Create(ctx context.Context, kind api.Kind, id api.ID, spec CreateSpec) error
	// Clone makes dst from src.
	Clone(ctx context.Context, kind api.Kind, src, dst api.ID, spec CloneSpec) error
	// Set changes config keys; an empty value deletes the key.
	Set(ctx context.Context, kind api.Kind, id api.ID, values map[string]string) error
	// Resize grows the root disk to sizeGB; it never shrinks.
	Resize(ctx context.Context, kind api.Kind, id api.ID, sizeGB int) error
	Start(ctx context.Context, kind api.Kind, id api.ID) error
	Stop(ctx context.Context, kind api.Kind, id api.ID) error
	// Destroy removes a stopped guest and its disks.
	Destroy(ctx context.Context, kind api.Kind, id api.ID) error
	Snapshot(ctx context.Context, kind api.Kind, id api.ID, name string) error
	// ConvertToTemplate turns a stopped guest into a template.
	ConvertToTemplate(ctx context.Context, kind api.Kind, id api.ID) error
	// Run runs a script inside a running guest; a non-zero exit is an error
	// carrying the tail of the script's output.
	Run(ctx context.Context, kind api.Kind, id api.ID, script Script) error
}

// SetupRunner is implemented by backends that can run the host setup steps
// of phoenix_hypervisor_config.json.
type SetupRunner interface {
	// RunSetupStep runs one named host setup step with its settings.
	RunSetupStep(ctx context.Context, step string, settings json.RawMessage) error
}

// Placer is implemented by backends that spread guests over several nodes
// (pve-api). Where a guest belongs is desired state (its node field) that the
// Host methods do not carry, so whoever loads the desired state hands it to
// the backend, before the first operation and again after every reload; the
// backend looks a guest's node up in it when it creates or clones the guest.
type Placer interface {
	// SetPlacement gives the backend the desired state it places guests by.
	SetPlacement(cfg *api.Config)
}

// StateReader is implemented by backends that can tell whether a guest
// exists, runs and is a template from one list of the whole host, far
// cheaper than Get (pve-api: one /cluster/resources request per pass
// instead of three requests per guest).
type StateReader interface {
	// State returns the guest without Config, Snapshots and DiskGB, or an
	// error wrapping ErrNotFound.
	State(ctx context.Context, kind api.Kind, id api.ID) (*Guest, error)
}

// Probe is Exists for callers that need only existence, power state and
// the template flag: it asks StateReader when the backend has one. The
// Guest it returns may lack Config, Snapshots and DiskGB.
func Probe(ctx context.Context, h Host, kind api.Kind, id api.ID) (*Guest, bool, error) {
	sr, ok := h.(StateReader)
	if !ok {
		return Exists(ctx, h, kind, id)
	}
	g, err := sr.State(ctx, kind, id)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return g, true, nil
}

// NotFound builds the error for a missing guest.
func NotFound(kind api.Kind, id api.ID) error {
	return fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
}

// Exists reports whether the guest exists, turning ErrNotFound into false.
func Exists(ctx context.Context, h Host, kind api.Kind, id api.ID) (*Guest, bool, error) {
	g, err := h.Get(ctx, kind, id)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return g, true, nil
}
