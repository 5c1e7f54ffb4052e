package pmxcfs

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/utils/clock"
)

// Lifetime is pmxcfs' fixed lock lifetime (CFS_LOCK_TIMEOUT).
const Lifetime = 120 * time.Second

const lockDir = "priv/lock"

// Cluster is the lock state every node shares.
type Cluster struct {
	root  string
	clock clock.PassiveClock

	mu      sync.Mutex
	locks   map[string]*lock
	quorate map[string]bool
}

type lock struct {
	writer string
	mtime  int64
	// changed is when the lock was last written: the start of its
	// lifetime.
	changed time.Time
}

// New returns a cluster whose nodes see the file system at root (the path
// they use for /etc/pve), with clk as pmxcfs' clock. Every node starts
// quorate.
func New(root string, clk clock.PassiveClock) *Cluster {
	return &Cluster{root: filepath.Clean(root), clock: clk, locks: map[string]*lock{}, quorate: map[string]bool{}}
}

// SetQuorate gives node quorum or takes it away (a partition).
func (c *Cluster) SetQuorate(node string, q bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.quorate[node] = q
}

// Holder is the node that wrote lock name last; ok is false when there is
// no such lock.
func (c *Cluster) Holder(name string) (node string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.locks[name]
	if !ok {
		return "", false
	}
	return l.writer, true
}

// Node is one node's view of the file system; it implements leader.FS.
func (c *Cluster) Node(name string) *Node { return &Node{c: c, name: name} }

// Node is one cluster node's view of /etc/pve.
type Node struct {
	c    *Cluster
	name string
}

func pathErr(op, path string, errno syscall.Errno) error {
	return &os.PathError{Op: op, Path: path, Err: errno}
}

// split returns the lock name of path, or which known folder it is.
func (n *Node) split(path string) (name, folder string) {
	rel, err := filepath.Rel(n.c.root, filepath.Clean(path))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", "outside"
	}
	switch rel {
	case ".", "priv", lockDir:
		return "", rel
	}
	if filepath.Dir(rel) == lockDir {
		return filepath.Base(rel), ""
	}
	return "", "other"
}

// quorate is called with c.mu held.
func (n *Node) quorate() bool {
	q, ok := n.c.quorate[n.name]
	return !ok || q
}

// Mkdir creates a lock.
func (n *Node) Mkdir(path string) error {
	name, folder := n.split(path)
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	switch {
	case folder == ".", folder == "priv", folder == lockDir:
		return pathErr("mkdir", path, syscall.EEXIST)
	case !n.quorate():
		return pathErr("mkdir", path, syscall.EACCES)
	case folder != "":
		return pathErr("mkdir", path, syscall.EACCES)
	}
	if _, ok := n.c.locks[name]; ok {
		return pathErr("mkdir", path, syscall.EEXIST)
	}
	now := n.c.clock.Now()
	n.c.locks[name] = &lock{writer: n.name, mtime: now.Unix(), changed: now}
	return nil
}

// Utime renews a lock (mtime > 0) or asks pmxcfs to drop it once expired
// (mtime == 0).
func (n *Node) Utime(path string, atime, mtime int64) error {
	name, folder := n.split(path)
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if !n.quorate() {
		return pathErr("utime", path, syscall.EACCES)
	}
	if folder != "" {
		return pathErr("utime", path, syscall.EACCES)
	}
	l, ok := n.c.locks[name]
	if !ok {
		return pathErr("utime", path, syscall.ENOENT)
	}
	now := n.c.clock.Now()
	if mtime == 0 {
		if now.Sub(l.changed) > Lifetime {
			delete(n.c.locks, name)
			return pathErr("utime", path, syscall.ENOENT)
		}
		return pathErr("utime", path, syscall.EACCES)
	}
	if mtime < l.mtime || l.writer != n.name {
		return pathErr("utime", path, syscall.EACCES)
	}
	l.mtime, l.changed = mtime, now
	return nil
}

// Rmdir drops a lock.
func (n *Node) Rmdir(path string) error {
	name, folder := n.split(path)
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	if !n.quorate() || folder != "" {
		return pathErr("rmdir", path, syscall.EACCES)
	}
	if _, ok := n.c.locks[name]; !ok {
		return pathErr("rmdir", path, syscall.ENOENT)
	}
	delete(n.c.locks, name)
	return nil
}

// IsDir reports whether path is a folder: /etc/pve, priv, priv/lock or a
// lock.
func (n *Node) IsDir(path string) bool {
	name, folder := n.split(path)
	n.c.mu.Lock()
	defer n.c.mu.Unlock()
	switch folder {
	case ".", "priv", lockDir:
		return true
	case "":
		_, ok := n.c.locks[name]
		return ok
	}
	return false
}
