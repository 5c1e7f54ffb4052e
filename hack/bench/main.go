// Command bench runs every row of the performance targets (docs/benchmarks.md) and
// prints one table, medians over several runs with min and max, to stdout
// and to docs/benchmarks.md, with the machine, the Go version and the date.
//
//	go run ./hack/bench                    # what `make bench` runs
//	go run ./hack/bench -runs 3 -slow-runs 1 -n 2000 -out ''   # a quick look
//
// Rows:
//
//   - no-op `phoenix create 941` on the provisioned reference lab (sim, no
//     latency) over `phoenix --version`, run in pairs; the ratio per pair;
//   - LetsGo on the example lab, --sim-latency 20ms, critical_path_ms /
//     elapsed_ms at --parallel 1, 2, 4 and 8, a fresh state dir per run;
//   - load + validate + plan of a generated lab: the Go benchmark
//     BenchmarkLoadValidatePlan/10k, once per run;
//   - the controller on a generated lab (sim, no latency): time from start to
//     the first full sync (a fresh state dir); then, restarted on that state,
//     the no-op pass over every existing guest (time to ready again; the
//     host must see no operation), its CPU use while idle afterwards, 50
//     edits of one guest with the time from the file's rename to the log
//     line that starts its reconcile (exactly one reconcile per edit, of
//     that guest only), and the resident memory.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/lab"
)

type options struct {
	runs, slowRuns, n, edits, workers, noopRuns int
	out, only                                   string
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 5, "runs of each fast row (LetsGo, load+validate+plan)")
	flag.IntVar(&o.noopRuns, "noop-runs", 30, "pairs of runs of the no-op create row")
	flag.IntVar(&o.slowRuns, "slow-runs", 3, "runs of the controller rows (each a full initial sync)")
	flag.IntVar(&o.n, "n", 10000, "guests of the generated lab for the controller rows")
	flag.IntVar(&o.edits, "edits", 50, "edits per controller run for the edit-to-reconcile row")
	flag.IntVar(&o.workers, "workers", 8, "controller --workers")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "markdown file the table is written to ('' for none)")
	flag.StringVar(&o.only, "only", "", "run only rows whose name contains this (noop, letsgo, load, controller)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// row is one line of the table.
type row struct {
	what, target, unit string
	samples            []float64
	// met judges the median; note says how it was measured or what failed.
	met  func(median float64) bool
	note string
}

func (r row) stats() (med, lo, hi float64) {
	if len(r.samples) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(r.samples)
	slices.Sort(s)
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

func (r row) format(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch {
	case r.unit == "":
		return strconv.FormatFloat(v, 'f', 3, 64)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, r.unit)
	default:
		return fmt.Sprintf("%.1f %s", v, r.unit)
	}
}

type bench struct {
	o    options
	root string
	work string
	bin  string
	lab  string
	rows []row
}

func run(o options) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "phoenix-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b := &bench{o: o, root: root, work: work, bin: filepath.Join(work, "phoenix")}
	started := time.Now()
	load0 := loadAvg()
	logf("building phoenix")
	if err := sh(root, "go", "build", "-o", b.bin, "./cmd/phoenix"); err != nil {
		return err
	}
	want := func(name string) bool { return o.only == "" || strings.Contains(name, o.only) }
	// The controller rows run first and are listed last. The other rows
	// create and remove thousands of files (state dirs, go test's temp
	// files); on ext4 without a journal (this project's build machines)
	// every file created in the next minutes scans past each inode freed
	// (docs/benchmarks.md), and the first sync creates 10,000.
	var controllerRows []row
	if want("controller") {
		b.lab = filepath.Join(work, "lab")
		logf("generating a %d-guest lab", o.n)
		lo := lab.Defaults()
		lo.N, lo.Seed = o.n, 1
		l, err := lab.Generate(lo)
		if err != nil {
			return err
		}
		if err := l.Write(b.lab); err != nil {
			return err
		}
		b.controller()
		controllerRows, b.rows = b.rows, nil
	}
	if want("noop") {
		b.noop()
	}
	if want("letsgo") {
		b.letsGo()
	}
	if want("load") {
		b.loadValidatePlan()
	}
	b.rows = append(b.rows, controllerRows...)
	doc := b.report(started, load0)
	fmt.Print(doc)
	if o.out != "" {
		// Sections under "## " headings come from other benchmarks
		// (docs/benchmarks.md says which): keep them.
		if old, err := os.ReadFile(o.out); err == nil {
			if i := strings.Index(string(old), "\n## "); i >= 0 {
				doc += string(old[i:])
			}
		}
		if err := os.WriteFile(o.out, []byte(doc), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func sh(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// noop: `phoenix create 941` on a provisioned reference lab over
// `phoenix --version`, in pairs so that both see the same machine load.
func (b *bench) noop() {
	logf("no-op create vs --version, %d pairs", b.o.noopRuns)
	r := row{what: "no-op `phoenix create 941`, provisioned reference lab (sim) / `phoenix --version`", target: "≤ 2", unit: "",
		met: func(m float64) bool { return m <= 2 }}
	state := filepath.Join(b.work, "noop-state")
	lab := filepath.Join(b.root, "testdata", "reference-lab")
	p := func(args ...string) *exec.Cmd {
		return exec.Command(b.bin, append([]string{"--config-dir", lab, "--state-dir", state, "--backend", "sim"}, args...)...)
	}
	if out, err := p("LetsGo").CombinedOutput(); err != nil {
		r.note = fmt.Sprintf("LetsGo failed: %v %s", err, out)
		b.rows = append(b.rows, r)
		return
	}
	var vs, cs []float64
	for range b.o.noopRuns {
		v, err1 := timed(exec.Command(b.bin, "--version"))
		c, err2 := timed(p("create", "941"))
		if err1 != nil || err2 != nil {
			r.note = fmt.Sprintf("run failed: %v %v", err1, err2)
			break
		}
		vs, cs = append(vs, v), append(cs, c)
		r.samples = append(r.samples, c/v)
	}
	vm, _, _ := row{samples: vs}.stats()
	cm, _, _ := row{samples: cs}.stats()
	r.note += fmt.Sprintf("ratio per pair; medians: create %.1f ms, --version %.1f ms", cm, vm)
	b.rows = append(b.rows, r)
}

func timed(cmd *exec.Cmd) (ms float64, err error) {
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	return float64(d) / float64(time.Millisecond), nil
}

// letsGo: critical_path_ms / elapsed_ms of LetsGo on the example lab.
func (b *bench) letsGo() {
	for _, par := range []int{1, 2, 4, 8} {
		logf("LetsGo --parallel %d, %d runs", par, b.o.runs)
		r := row{what: fmt.Sprintf("LetsGo, example lab, --sim-latency 20ms, --parallel %d: critical_path_ms / elapsed_ms", par), unit: ""}
		if par == 8 {
			r.target = "≥ 0.85"
			r.met = func(m float64) bool { return m >= 0.85 }
		} else {
			r.target = "(report)"
		}
		for i := range b.o.runs {
			state := filepath.Join(b.work, fmt.Sprintf("letsgo-%d-%d", par, i))
			cmd := exec.Command(b.bin, "--config-dir", filepath.Join(b.root, "config/examples/lab"),
				"--scripts-dir", filepath.Join(b.root, "config/examples/scripts"), "--state-dir", state,
				"--backend", "sim", "--sim-latency", "20ms", "--parallel", strconv.Itoa(par), "-o", "json", "LetsGo")
			out, err := cmd.Output()
			var doc struct {
				OK           bool    `json:"ok"`
				ElapsedMS    float64 `json:"elapsed_ms"`
				CriticalPath float64 `json:"critical_path_ms"`
			}
			if err == nil {
				err = json.Unmarshal(out, &doc)
			}
			if err != nil || !doc.OK || doc.ElapsedMS == 0 {
				r.note = fmt.Sprintf("run failed: %v", err)
				break
			}
			r.samples = append(r.samples, doc.CriticalPath/doc.ElapsedMS)
			r.note = fmt.Sprintf("last run: critical path %.0f ms, elapsed %.0f ms", doc.CriticalPath, doc.ElapsedMS)
		}
		b.rows = append(b.rows, r)
	}
}

var nsPerOp = regexp.MustCompile(`BenchmarkLoadValidatePlan/10k\S*\s+\d+\s+(\d+) ns/op`)

// loadValidatePlan runs the Go benchmark once per run.
func (b *bench) loadValidatePlan() {
	logf("BenchmarkLoadValidatePlan/10k, %d runs", b.o.runs)
	r := row{what: "load + validate + plan (LetsGo) of a generated 10,000-guest config", target: "< 200 ms", unit: "ms",
		met: func(m float64) bool { return m < 200 }, note: "`go test -bench 'LoadValidatePlan/10k$' ./internal/plan`, one sample per -count"}
	cmd := exec.Command("go", "test", "-run", "XXX", "-bench", "LoadValidatePlan/10k$", "-count", strconv.Itoa(b.o.runs), "./internal/plan/")
	cmd.Dir = b.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.note = fmt.Sprintf("go test failed: %v", err)
	}
	for _, m := range nsPerOp.FindAllStringSubmatch(string(out), -1) {
		ns, _ := strconv.ParseFloat(m[1], 64)
		r.samples = append(r.samples, ns/1e6)
	}
	b.rows = append(b.rows, r)
}

func fmtSeconds(v []float64) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return out
}

// controller runs the controller rows.
func (b *bench) controller() {
	n := b.o.n
	sync := row{what: fmt.Sprintf("controller initial sync of %d guests (sim, no latency, --workers %d): start to ready", n, b.o.workers),
		target: "< 5 s", unit: "s", met: func(m float64) bool { return m < 5 }}
	noop := row{what: fmt.Sprintf("controller no-op pass over %d existing guests (restart on a synced state dir): start to ready", n),
		target: "< 2 s", unit: "s", met: func(m float64) bool { return m < 2 }}
	idle := row{what: "controller CPU while idle after the pass (share of one core, over 5 s)", target: "near 0", unit: "%",
		met: func(m float64) bool { return m < 1 }}
	edit := row{what: fmt.Sprintf("edit of one guest in a %d-guest file -> its reconcile starts: p99 of %d edits (default debounce)", n, b.o.edits),
		target: "p99 < 250 ms, one reconcile per edit", unit: "ms", met: func(m float64) bool { return m < 250 }}
	rss := row{what: fmt.Sprintf("controller resident memory at %d guests (at rest, 2 s after the edits)", n), target: "< 150 MB", unit: "MB",
		met: func(m float64) bool { return m < 150 }}
	cfg, err := desired.Load(b.lab)
	if err != nil {
		sync.note = err.Error()
		b.rows = append(b.rows, sync)
		return
	}
	var target *api.Guest
	for _, id := range cfg.IDs {
		if g := cfg.Guest(id); g.Kind == api.KindLXC && !g.IsTemplateSource() {
			target = g
		}
	}
	extraReconciles, editFailures := 0, 0
	var syncCPU []float64 // the controller's user + sys CPU seconds when ready
	for i := range b.o.slowRuns {
		state := filepath.Join(b.work, fmt.Sprintf("controller-%d", i))
		logf("controller run %d/%d: initial sync", i+1, b.o.slowRuns)
		c, err := b.startController(state)
		if err != nil {
			sync.note = err.Error()
			break
		}
		d, err := c.waitReady(30 * time.Minute)
		cpu := cpuTime(c.cmd.Process.Pid)
		c.stop()
		if err != nil {
			sync.note = err.Error()
			break
		}
		sync.samples = append(sync.samples, d.Seconds())
		syncCPU = append(syncCPU, cpu.Seconds())
		ops0 := lines(filepath.Join(state, "sim", "ops.log"))

		logf("controller run %d/%d: restart (no-op pass), idle CPU, %d edits", i+1, b.o.slowRuns, b.o.edits)
		c, err = b.startController(state)
		if err != nil {
			noop.note = err.Error()
			break
		}
		d, err = c.waitReady(10 * time.Minute)
		if err != nil {
			c.stop()
			noop.note = err.Error()
			break
		}
		noop.samples = append(noop.samples, d.Seconds())
		if ops := lines(filepath.Join(state, "sim", "ops.log")); ops != ops0 {
			noop.note = fmt.Sprintf("the pass changed the host: %d operations", ops-ops0)
		} else {
			noop.note = "no host operation in any pass (ops.log unchanged)"
		}
		time.Sleep(500 * time.Millisecond)
		cpu0 := cpuTime(c.cmd.Process.Pid)
		time.Sleep(5 * time.Second)
		idle.samples = append(idle.samples, 100*(cpuTime(c.cmd.Process.Pid)-cpu0).Seconds()/5)

		lat, extra, failed := c.edits(b.lab, target, b.o.edits)
		extraReconciles += extra
		editFailures += failed
		if len(lat) > 0 {
			slices.Sort(lat)
			p99 := lat[int(math.Ceil(0.99*float64(len(lat))))-1]
			edit.samples = append(edit.samples, p99)
			edit.note = fmt.Sprintf("last run: median %.0f ms, max %.0f ms", lat[len(lat)/2], lat[len(lat)-1])
		}
		// At rest: the controller hands a reload's memory back once the
		// files have been quiet for a second.
		time.Sleep(2 * time.Second)
		rss.samples = append(rss.samples, float64(rssBytes(c.cmd.Process.Pid))/1e6)
		c.stop()
	}
	if len(syncCPU) > 0 && sync.note == "" {
		sync.note = fmt.Sprintf("controller CPU (user + sys) when ready: %s s", strings.Join(fmtSeconds(syncCPU), ", "))
	}
	edit.note += fmt.Sprintf("; reconciles beyond one per edit: %d; edits not reconciled: %d", extraReconciles, editFailures)
	if extraReconciles > 0 || editFailures > 0 {
		edit.met = func(float64) bool { return false }
	}
	b.rows = append(b.rows, sync, noop, idle, edit, rss)
}

type controllerProc struct {
	cmd   *exec.Cmd
	start time.Time
	mu    sync.Mutex
	cond  *sync.Cond
	// events are the log lines about reconciles and readiness, in order.
	events []event
	done   bool
}

type event struct {
	at    time.Time
	msg   string
	guest string
}

var (
	msgRE   = regexp.MustCompile(`msg="([^"]*)"`)
	guestRE = regexp.MustCompile(` guest=(\d+)`)
)

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:19464"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (b *bench) startController(state string) (*controllerProc, error) {
	cmd := exec.Command(b.bin, "--config-dir", b.lab, "--state-dir", state, "--backend", "sim",
		"controller", "--workers", strconv.Itoa(b.o.workers), "--metrics-addr", freeAddr(), "--resync", "1h")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	c := &controllerProc{cmd: cmd}
	c.cond = sync.NewCond(&c.mu)
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go c.read(stderr)
	return c, nil
}

func (c *controllerProc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		now := time.Now()
		line := sc.Text()
		m := msgRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case "Reconciling guest", "Reconciled guest", "Reconcile failed; will retry", "Reconcile failed; not retrying until the files change",
			"First full sync done; ready", "Config loaded":
		default:
			continue
		}
		ev := event{at: now, msg: m[1]}
		if g := guestRE.FindStringSubmatch(line); g != nil {
			ev.guest = g[1]
		}
		c.mu.Lock()
		c.events = append(c.events, ev)
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.done = true
	c.cond.Broadcast()
	c.mu.Unlock()
}

// waitFor waits until pred holds for an event at index >= from, and returns
// that index.
func (c *controllerProc) waitFor(from int, limit time.Duration, pred func(event) bool) (int, error) {
	deadline := time.Now().Add(limit)
	timer := time.AfterFunc(limit, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for i := from; i < len(c.events); i++ {
			if pred(c.events[i]) {
				return i, nil
			}
		}
		from = len(c.events)
		if c.done {
			return 0, fmt.Errorf("controller exited")
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("timed out after %s", limit)
		}
		c.cond.Wait()
	}
}

func (c *controllerProc) waitReady(limit time.Duration) (time.Duration, error) {
	i, err := c.waitFor(0, limit, func(e event) bool { return e.msg == "First full sync done; ready" })
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[i].at.Sub(c.start), nil
}

func (c *controllerProc) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// edits changes the target's memory_mb n times, each saved the way editors
// do (write a new file, rename it over the old), and waits for its
// reconcile to start and end. It returns the latencies in ms, how many
// reconciles ran beyond one per edit, and how many edits were never
// reconciled.
func (c *controllerProc) edits(lab string, g *api.Guest, n int) (lat []float64, extra, failed int) {
	path := filepath.Join(lab, api.LXCFile)
	id := g.ID.String()
	mem := g.Spec.MemoryMB
	for i := range n {
		data, err := os.ReadFile(path)
		if err != nil {
			return lat, extra, n - i
		}
		mem += 64
		data, err = sjson.SetBytes(data, "lxc_configs."+id+".memory_mb", mem)
		if err != nil {
			return lat, extra, n - i
		}
		tmp := filepath.Join(lab, ".bench.swp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return lat, extra, n - i
		}
		from := c.count()
		t0 := time.Now()
		if err := os.Rename(tmp, path); err != nil {
			return lat, extra, n - i
		}
		s, err := c.waitFor(from, 30*time.Second, func(e event) bool { return e.msg == "Reconciling guest" && e.guest == id })
		if err != nil {
			failed++
			continue
		}
		c.mu.Lock()
		lat = append(lat, float64(c.events[s].at.Sub(t0))/float64(time.Millisecond))
		c.mu.Unlock()
		if _, err := c.waitFor(s, 30*time.Second, func(e event) bool { return e.msg != "Reconciling guest" && e.guest == id }); err != nil {
			failed++
			continue
		}
		// Anything else this edit set off shows within the debounce time.
		time.Sleep(300 * time.Millisecond)
		c.mu.Lock()
		starts := 0
		for _, e := range c.events[from:] {
			if e.msg == "Reconciling guest" {
				starts++
			}
		}
		c.mu.Unlock()
		extra += starts - 1
	}
	return lat, extra, failed
}

func (c *controllerProc) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		_ = c.cmd.Process.Kill()
		<-done
	}
}

func lines(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	return bytes.Count(data, []byte{'\n'})
}

// cpuTime is the user and system time a process used so far.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func rssBytes(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func output(dir, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func (b *bench) report(started time.Time, load0 string) string {
	var w strings.Builder
	w.WriteString("# Benchmarks\n\n")
	w.WriteString("Written by `make bench` (`go run ./hack/bench`); the targets are the project's performance targets. Medians over\n")
	w.WriteString("several runs, with min and max. Speed is shown here only, never asserted by tests.\n\n")
	fmt.Fprintf(&w, "- date: %s (took %s)\n", started.UTC().Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Second))
	fmt.Fprintf(&w, "- machine: %d CPUs (nproc), %s, %s; load average %s at the start, %s at the end\n",
		runtime.NumCPU(), cpuModel(), output(b.root, "uname", "-sr"), load0, loadAvg())
	fmt.Fprintf(&w, "- Go: %s; phoenix %s\n", output(b.root, "go", "env", "GOVERSION"), output(b.root, "git", "describe", "--always", "--dirty"))
	fmt.Fprintf(&w, "- runs: %d per fast row, %d pairs for the no-op row, %d controller runs of %d edits each\n\n",
		b.o.runs, b.o.noopRuns, b.o.slowRuns, b.o.edits)
	w.WriteString("| what | target | median | min | max | runs | met | notes |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range b.rows {
		med, lo, hi := r.stats()
		met := "-"
		if r.met != nil && len(r.samples) > 0 {
			met = "no"
			if r.met(med) {
				met = "yes"
			}
		}
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %d | %s | %s |\n", r.what, r.target, r.format(med), r.format(lo), r.format(hi), len(r.samples), met, r.note)
	}
	w.WriteString(footer)
	return w.String()
}

const footer = `
Reproduce: ` + "`make bench`" + ` (knobs: ` + "`make bench BENCH_FLAGS='-runs 3 -slow-runs 1 -n 2000'`" + `, ` + "`-h`" + ` lists
them); the Go benchmarks of the hot paths (load, fast and slow guest validation, cross-guest
checks, cached reload, spec hashing, graph closure, plan, status write and read) with
` + "`make bench-go`" + `; a CPU profile of a running controller with ` + "`phoenix controller --pprof`" + `
and ` + "`go tool pprof http://127.0.0.1:9464/debug/pprof/profile?seconds=10`" + `.
`
