package sim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

func newSim(t *testing.T, opts Options) *Sim {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSim_refusesWhatProxmoxRefuses(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, Options{})
	create := func(id api.ID) error {
		return s.Create(ctx, api.KindLXC, id, hypervisor.CreateSpec{Source: "tpl", DiskGB: 8, Config: map[string]string{"hostname": "a"}})
	}
	if err := create(900); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func() error
		want string
	}{
		{"create twice", func() error { return create(900) }, "already exists"},
		{"stop stopped", func() error { return s.Stop(ctx, api.KindLXC, 900) }, "not running"},
		{"shrink", func() error { return s.Resize(ctx, api.KindLXC, 900, 4) }, "shrinking"},
		{"bad snapshot name", func() error { return s.Snapshot(ctx, api.KindLXC, 900, "1-bad") }, "invalid snapshot name"},
		{"clone from missing snapshot", func() error {
			return s.Clone(ctx, api.KindLXC, 900, 901, hypervisor.CloneSpec{Snapshot: "golden"})
		}, "no snapshot"},
		{"run in stopped guest", func() error {
			return s.Run(ctx, api.KindLXC, 900, hypervisor.Script{Kind: hypervisor.FeatureScript, Name: "docker"})
		}, "not running"},
		{"wrong kind", func() error { return s.Start(ctx, api.KindVM, 900) }, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.op(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if err := s.Start(ctx, api.KindLXC, 900); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"start running":    func() error { return s.Start(ctx, api.KindLXC, 900) },
		"destroy running":  func() error { return s.Destroy(ctx, api.KindLXC, 900) },
		"template running": func() error { return s.ConvertToTemplate(ctx, api.KindLXC, 900) },
	} {
		if err := op(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := s.Get(ctx, api.KindLXC, 999); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func TestSim_stateOutlivesTheProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindVM, 8000, hypervisor.CreateSpec{Source: "img", DiskGB: 10, Config: map[string]string{"name": "t"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Snapshot(ctx, api.KindVM, 8000, "base"); err != nil {
		t.Fatal(err)
	}
	b := newSim(t, Options{Dir: dir})
	if err := b.Clone(ctx, api.KindVM, 8000, 8001, hypervisor.CloneSpec{Snapshot: "base", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	g, err := a.Get(ctx, api.KindVM, 8001)
	if err != nil || g.Config["name"] != "c" || g.DiskGB != 10 {
		t.Fatalf("clone seen by the other instance = %+v, %v", g, err)
	}
}

func TestSim_failRateIsSeeded(t *testing.T) {
	ctx := context.Background()
	run := func() []bool {
		s := newSim(t, Options{FailRate: 0.5, Seed: 42})
		var out []bool
		for i := 0; i < 40; i++ {
			err := s.Create(ctx, api.KindLXC, api.ID(1000+i), hypervisor.CreateSpec{Source: "t"})
			out = append(out, err != nil)
		}
		return out
	}
	a, b := run(), run()
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run %d differs between two runs with the same seed", i)
		}
		if a[i] {
			fails++
		}
	}
	if fails == 0 || fails == 40 {
		t.Errorf("%d of 40 operations failed at rate 0.5", fails)
	}
}

func TestSim_concurrentWritersLoseNothing(t *testing.T) {
	// Two instances on one folder stand for two phoenix processes.
	ctx := context.Background()
	dir := t.TempDir()
	a, b := newSim(t, Options{Dir: dir}), newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "t", Config: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		key := "k" + api.ID(i).String()
		go func() { defer wg.Done(); _ = a.Set(ctx, api.KindLXC, 900, map[string]string{"a" + key: "1"}) }()
		go func() { defer wg.Done(); _ = b.Set(ctx, api.KindLXC, 900, map[string]string{"b" + key: "1"}) }()
	}
	wg.Wait()
	g, err := a.Get(ctx, api.KindLXC, 900)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Config) != 100 {
		t.Errorf("config has %d keys after 100 concurrent sets, want 100: updates were lost", len(g.Config))
	}
}

// Writers of one process change different guests side by side while
// another process writes too: every change of both reaches the log, and a
// process that opens the state afterwards sees them all.
func TestSim_writersOfOneProcessLoseNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := newSim(t, Options{Dir: dir}), newSim(t, Options{Dir: dir})
	const guests, sets = 16, 20
	for id := api.ID(900); id < 900+guests; id++ {
		if err := a.Create(ctx, api.KindLXC, id, hypervisor.CreateSpec{Source: "t", Config: map[string]string{}}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for id := api.ID(900); id < 900+guests; id++ {
		for _, s := range []*Sim{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < sets; i++ {
					key := fmt.Sprintf("k%p%d", s, i)
					if err := s.Set(ctx, api.KindLXC, id, map[string]string{key: "1"}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
	}
	wg.Wait()
	fresh := newSim(t, Options{Dir: dir})
	for id := api.ID(900); id < 900+guests; id++ {
		g, err := fresh.Get(ctx, api.KindLXC, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Config) != 2*sets {
			t.Errorf("guest %s has %d keys after %d sets, want them all", id, len(g.Config), 2*sets)
		}
	}
}

// A process whose writers keep the flock busy without a break still lets
// another process in: after holdMax its writers stop joining until the
// flock was let go.
func TestSim_busyProcessLetsAnotherIn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := newSim(t, Options{Dir: dir}), newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "t", Config: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var busy sync.WaitGroup
	// Writers of a that overlap: one joins every millisecond and holds
	// for three, so that a's share of the flock never drops to none by
	// itself.
	hold := func() {
		if err := a.state.take(); err != nil {
			t.Error(err)
			return
		}
		busy.Add(1)
		go func() {
			defer busy.Done()
			time.Sleep(3 * time.Millisecond)
			a.state.give()
		}()
	}
	hold()
	busy.Add(1)
	go func() {
		defer busy.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				hold()
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- b.Set(ctx, api.KindLXC, 900, map[string]string{"memory": "1024"}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second): // 50 times holdMax
		t.Errorf("another process waited 5s for the flock of a busy one")
	}
	close(stop)
	busy.Wait()
	if t.Failed() {
		<-done
	}
}

// Get remembers what it read, but a change made by another process (here
// another Sim on the same folder), or one made behind the sim's back,
// shows at once; and changing what Get returned changes nothing.
func TestSim_getSeesOtherProcessesChanges(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := newSim(t, Options{Dir: dir})
	b := newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "tpl", Config: map[string]string{"memory": "512"}}); err != nil {
		t.Fatal(err)
	}
	g, err := a.Get(ctx, api.KindLXC, 900)
	if err != nil || g.Config["memory"] != "512" {
		t.Fatalf("Get = %+v, %v", g, err)
	}
	g.Config["memory"] = "scribbled"
	for i, want := range []string{"1024", "2048", "4096"} {
		if err := b.Set(ctx, api.KindLXC, 900, map[string]string{"memory": want}); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := a.Start(ctx, api.KindLXC, 900); err != nil {
				t.Fatal(err)
			}
		}
		g, err := a.Get(ctx, api.KindLXC, 900)
		if err != nil || g.Config["memory"] != want {
			t.Fatalf("after b's change %d: a.Get = %+v, %v; want memory %s", i, g, err, want)
		}
	}
	if err := b.Stop(ctx, api.KindLXC, 900); err != nil {
		t.Fatal(err)
	}
	if err := b.Destroy(ctx, api.KindLXC, 900); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, api.KindLXC, 900); !errors.Is(err, hypervisor.ErrNotFound) {
		t.Fatalf("after b destroyed it: a.Get err = %v, want not found", err)
	}
}

// A process killed in the middle of an append leaves a line without its
// end. The next operation, by any process, must cut it off rather than
// glue its own record to it, and nothing recorded before is lost.
func TestSim_tornAppendIsCutOff(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "t", Config: map[string]string{"memory": "512"}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"id":900,"kind":"lxc","running":true,"con`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b := newSim(t, Options{Dir: dir})
	if g, err := b.Get(ctx, api.KindLXC, 900); err != nil || g.Running || g.Config["memory"] != "512" {
		t.Fatalf("Get with a torn tail = %+v, %v; want the last whole record", g, err)
	}
	if err := b.Set(ctx, api.KindLXC, 900, map[string]string{"cores": "2"}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Sim{"writer": b, "other": a, "fresh": newSim(t, Options{Dir: dir})} {
		g, err := s.Get(ctx, api.KindLXC, 900)
		if err != nil || g.Config["cores"] != "2" || g.Config["memory"] != "512" {
			t.Errorf("%s: Get after the torn line = %+v, %v", name, g, err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, logName))
	if strings.Contains(string(data), `"con{`) || strings.Count(string(data), "\n") != 2 {
		t.Errorf("state log after the cut:\n%s", data)
	}
}

// The log is compacted when most of it is history; another process that
// still holds the old file must see the compacted state, and a guest
// destroyed before the compaction stays gone.
func TestSim_compactionKeepsEveryGuest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := newSim(t, Options{Dir: dir}), newSim(t, Options{Dir: dir})
	for id := api.ID(1000); id < 1010; id++ {
		if err := a.Create(ctx, api.KindLXC, id, hypervisor.CreateSpec{Source: "t", Config: map[string]string{"memory": "1"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Destroy(ctx, api.KindLXC, 1009); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, api.KindLXC, 1000); err != nil {
		t.Fatal(err) // b now holds the log file open
	}
	big := strings.Repeat("x", 4096)
	last := 0
	// Twice: the second compaction copies the line of a guest left alone
	// since the first (1008) from where the first one put it.
	for round := range 2 {
		for range 2*compactMin/4096 + 10 {
			last++
			if err := a.Set(ctx, api.KindLXC, api.ID(1000+last%8), map[string]string{"description": big, "memory": fmt.Sprint(last)}); err != nil {
				t.Fatal(err)
			}
		}
		// More than 2*compactMin was written in this round alone.
		if fi, _ := os.Stat(filepath.Join(dir, logName)); fi.Size() > 2*compactMin {
			t.Fatalf("round %d: no compaction: log is %d bytes", round, fi.Size())
		}
	}
	want, err := a.Dump()
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Sim{"other": b, "fresh": newSim(t, Options{Dir: dir})} {
		got, err := s.Dump()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 9 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s sees %d guests after compaction, want the writer's 9", name, len(got))
		}
		if g, err := s.Get(ctx, api.KindLXC, 1008); err != nil || g.Config["memory"] != "1" {
			t.Errorf("%s: the guest left alone = %+v, %v", name, g, err)
		}
		if _, err := s.Get(ctx, api.KindLXC, 1009); !errors.Is(err, hypervisor.ErrNotFound) {
			t.Errorf("%s: destroyed guest is back: %v", name, err)
		}
		if g, err := s.Get(ctx, api.KindLXC, api.ID(1000+last%8)); err != nil || g.Config["memory"] != fmt.Sprint(last) {
			t.Errorf("%s: Get after compaction = memory %q, %v; want the last write's %d", name, g.Config["memory"], err, last)
		}
	}
}

// A state dir written by an earlier phoenix (one file per guest) keeps its
// guests.
func TestSim_migratesOneFilePerGuest(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "guests"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := `{"id": 950, "kind": "lxc", "running": true, "config": {"hostname": "web"}, "disk_gb": 8, "runs": {"features/docker": 1}}`
	if err := os.WriteFile(filepath.Join(dir, "guests", "950.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSim(t, Options{Dir: dir})
	g, err := s.Get(context.Background(), api.KindLXC, 950)
	if err != nil || !g.Running || g.Config["hostname"] != "web" || g.DiskGB != 8 || s.Runs(950)["features/docker"] != 1 {
		t.Fatalf("migrated guest = %+v, %v", g, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "guests")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old folder still there: %v", err)
	}
}

// BenchmarkGet reads a guest among many, as every reconcile does several
// times: the record comes from memory, not from the log.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	s := benchSim(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(ctx, api.KindLXC, api.ID(1000+i%1000)); err != nil {
			b.Fatal(err)
		}
	}
}

// A state dir from an earlier phoenix has no change counter in state.lock.
// Opening it and reading writes nothing; the first change adds the
// counter, and a process that opened the node before still sees every
// change.
func TestSim_stateDirWithoutChangeCounter(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := newSim(t, Options{Dir: dir})
	if err := a.Create(ctx, api.KindLXC, 900, hypervisor.CreateSpec{Source: "t", Config: map[string]string{"memory": "512"}}); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(dir, lockName)
	if err := os.Truncate(lockPath, 0); err != nil { // as an earlier phoenix left it
		t.Fatal(err)
	}
	reader := newSim(t, Options{Dir: dir})
	if g, err := reader.Get(ctx, api.KindLXC, 900); err != nil || g.Config["memory"] != "512" {
		t.Fatalf("Get = %+v, %v", g, err)
	}
	if fi, _ := os.Stat(lockPath); fi.Size() != 0 {
		t.Fatalf("opening and reading wrote %d bytes to state.lock", fi.Size())
	}
	writer := newSim(t, Options{Dir: dir})
	for _, want := range []string{"1024", "2048"} {
		if err := writer.Set(ctx, api.KindLXC, 900, map[string]string{"memory": want}); err != nil {
			t.Fatal(err)
		}
		for name, s := range map[string]*Sim{"reader": reader, "writer": writer} {
			if g, err := s.Get(ctx, api.KindLXC, 900); err != nil || g.Config["memory"] != want {
				t.Fatalf("%s: Get after the change to %s = %+v, %v", name, want, g, err)
			}
		}
	}
	if fi, _ := os.Stat(lockPath); fi.Size() != counterSize {
		t.Errorf("state.lock is %d bytes after a change, want the %d-byte counter", fi.Size(), counterSize)
	}
}

// BenchmarkGetWhileWriting is Get on many goroutines while others change
// guests, as the controller's workers do: a read must not wait for a
// write's system call.
func BenchmarkGetWhileWriting(b *testing.B) {
	ctx := context.Background()
	s := benchSim(b)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = s.Set(ctx, api.KindLXC, api.ID(1000+i%1000), map[string]string{"cores": fmt.Sprint(i % 8)})
		}
	})
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, api.KindLXC, api.ID(1000+i%1000)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
}

// benchSim is a sim node with containers 1000 to 1999, closed when b ends.
func benchSim(b *testing.B) *Sim {
	b.Helper()
	s, err := New(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	for id := api.ID(1000); id < 2000; id++ {
		cfg := map[string]string{"memory": "2048", "cores": "2", "hostname": fmt.Sprint("guest-", id), "net0": "name=eth0,bridge=vmbr0,ip=dhcp"}
		if err := s.Create(context.Background(), api.KindLXC, id, hypervisor.CreateSpec{Source: "tpl", Config: cfg, DiskGB: 8}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}
