package sim

import (
	"fmt"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// keyed is a set of mutexes by guest ID, for goroutines of one process.
type keyed struct {
	mu sync.Mutex
	m  map[int]*sync.Mutex
}

func (k *keyed) lock(id int) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[int]*sync.Mutex{}
	}
	l := k.m[id]
	if l == nil {
		l = &sync.Mutex{}
		k.m[id] = l
	}
	k.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// stripeCount is how many lock files spread guests across processes: enough
// that two processes rarely wait for each other, few enough to keep open.
const stripeCount = 64

// stripes are flock'd files shared by every process on one state dir. A
// guest maps to one stripe by its ID. The files stay open: opening one per
// operation cost more than the operation.
type stripes struct {
	dir   string
	once  sync.Once
	err   error
	files [stripeCount]*os.File
}

func (s *stripes) open() {
	if _, s.err = fsutil.SubdirPrivate(filepath.Dir(s.dir), filepath.Base(s.dir)); s.err != nil {
		return
	}
	for i := range s.files {
		f, err := fsutil.OpenNoFollow(filepath.Join(s.dir, fmt.Sprintf("%02d", i)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			s.err = err
			return
		}
		s.files[i] = f
	}
}

// lock takes the stripe of id. Within one process the caller already holds
// the guest's mutex: flock is per open file, so it only excludes others.
func (s *stripes) lock(id int) (func(), error) {
	s.once.Do(s.open)
	if s.err != nil {
		return nil, fmt.Errorf("sim locks: %w", s.err)
	}
	f := s.files[id%stripeCount]
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }, nil
}

func (s *stripes) close() {
	for _, f := range s.files {
		if f != nil {
			f.Close()
		}
	}
}
