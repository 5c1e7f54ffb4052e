package desired

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Loader loads a config directory again and again. It remembers, across
// loads, each guest's schema check, typed decode and spec hash by the
// guest's bytes, so that loading a changed file again only redoes the
// guests that changed. The controller keeps one for its reloads: an edit of
// one guest in a 10,000-guest file then costs reading and splitting the
// file, not checking 10,000 guests again. A Loader holds the guests of its
// last load only.
type Loader struct {
	mu   sync.Mutex
	prev map[[sha256.Size]byte]*cached
	// files are the guest files of the last load, by path.
	files map[string]*fileMemo
	// Hits and Misses count guests found and not found in the last load.
	hits, misses int
}

// cached is one guest's result, keyed by the SHA-256 of its own bytes
// (the VM's own object, before vm_defaults): a sum rather than the bytes,
// so that 10,000 cached guests do not hold a second copy of the files.
type cached struct {
	key        [sha256.Size]byte
	path, name string
	schema     schemaName
	// raw is the sum of a VM's effective object (vm_defaults applied),
	// which the decode and hash depend on; unset for a container, whose
	// effective object is its own.
	raw   [sha256.Size]byte
	noID  bool
	spec  api.Spec
	hash  string
	ps    problems
	bad   bool
	vmRaw bool
}

// NewLoader returns a loader with an empty cache.
func NewLoader() *Loader { return &Loader{} }

// Load is the package's Load with the loader's cache: guests whose bytes
// did not change since the loader's last load are not checked, decoded or
// hashed again. The result is the one Load gives.
func (l *Loader) Load(dir string) (*api.Config, error) {
	return l.LoadContext(context.Background(), dir)
}

// LoadContext is Load that stops reading when ctx ends.
func (l *Loader) LoadContext(ctx context.Context, dir string) (*api.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return load(ctx, dir, l)
}

// Stats reports how many guests the last load found in the cache and how
// many it had to check.
func (c *Loader) Stats() (hits, misses int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}

// lookup fills p from the cache; nil when p must be checked.
func (c *Loader) lookup(path string, schema schemaName, p *pending) *cached {
	e := c.prev[sha256.Sum256(p.own)]
	if e == nil || e.path != path || e.name != p.name || e.schema != schema || e.noID != (p.g == nil) {
		return nil
	}
	if p.g != nil && e.vmRaw && e.raw != sha256.Sum256(p.g.Raw) {
		return nil
	}
	p.ps = append(problems(nil), e.ps...)
	p.bad = e.bad
	if p.g != nil {
		p.g.Spec = e.spec
		p.g.Hash = e.hash
	}
	return e
}

func (c *Loader) entry(path string, schema schemaName, p *pending) *cached {
	e := &cached{key: sha256.Sum256(p.own), path: path, name: p.name, schema: schema, noID: p.g == nil, ps: p.ps, bad: p.bad}
	if p.g != nil {
		e.spec, e.hash = p.g.Spec, p.g.Hash
		if schema == guestSchemaVM {
			e.vmRaw, e.raw = true, sha256.Sum256(p.g.Raw)
		}
	}
	return e
}

// fileMemo is what loading one guest file found: its problems before the
// guests, then each guest with its own problems; replayed when the file's
// bytes are the same next time.
type fileMemo struct {
	sum        [sha256.Size]byte
	pre        problems
	steps      []fileStep
	entries    []*cached
	unreadable bool
	finished   bool
}

type fileStep struct {
	ps  problems
	g   *api.Guest
	bad bool
}
