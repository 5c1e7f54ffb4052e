package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/sim"
)

// These tests run the real binary, as a user or an init system would, to
// prove what survives a SIGKILL and what two processes on one state dir do
// to each other.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func phoenixBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "phoenix-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "phoenix")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type lab struct {
	t        *testing.T
	cfgDir   string
	stateDir string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{t: t, cfgDir: t.TempDir(), stateDir: t.TempDir()}
	for _, f := range []string{api.HypervisorFile, api.LXCFile, api.VMFile} {
		data, err := os.ReadFile(filepath.Join("../../config/examples/lab", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l.cfgDir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func (l *lab) cmd(args ...string) *exec.Cmd {
	full := append([]string{"--config-dir", l.cfgDir, "--state-dir", l.stateDir, "--backend", "sim"}, args...)
	return exec.Command(phoenixBin(l.t), full...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// statuses reads every status file and fails on one that is not whole JSON.
func (l *lab) statuses() map[string]api.Status {
	l.t.Helper()
	out := map[string]api.Status{}
	files, _ := filepath.Glob(filepath.Join(l.stateDir, "status", "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			l.t.Fatal(err)
		}
		var st api.Status
		if err := json.Unmarshal(data, &st); err != nil {
			l.t.Fatalf("status file %s is corrupt after a kill: %v\n%s", f, err, data)
		}
		out[st.ID] = st
	}
	return out
}

// creations counts the create and clone operations per guest in the sim's
// ops.log.
func (l *lab) creations() map[string]int {
	l.t.Helper()
	data, err := os.ReadFile(filepath.Join(l.stateDir, "sim", "ops.log"))
	if err != nil {
		l.t.Fatal(err)
	}
	n := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			l.t.Fatalf("torn ops.log line: %q", sc.Text())
		}
		if f[1] == "create" || f[1] == "clone" {
			n[f[3]]++
		}
	}
	return n
}

func waitReady(t *testing.T, addr string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func TestController_survivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the controller 25 times")
	}
	l := newLab(t)
	rng := rand.New(rand.NewPCG(1, 2))
	// Kills land at random moments; the test goes on until one of them
	// interrupted a status write (its temp file is left behind) so that
	// "every file whole" is proved where it matters, not only between
	// writes.
	const minKills, maxKills = 25, 200
	interrupted := map[string]string{} // temp file -> the status it was replacing
	kills := 0
	for ; kills < minKills || (len(interrupted) == 0 && kills < maxKills); kills++ {
		// A new memory size for every container gives every run status
		// writes to interrupt, also once the lab is built.
		l.setMemory(256 + 16*kills)
		c := l.cmd("--sim-latency", "15ms", "controller", "--workers", "4", "--metrics-addr", freeAddr(t), "--resync", "0")
		stderr, err := c.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// Every other kill waits until the controller works on guests, so
		// that kills land in workflows and status writes, not only in
		// start-up, however slow the machine.
		working := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			closed := false
			for sc.Scan() {
				if !closed && strings.Contains(sc.Text(), `msg="Reconciling guest"`) {
					close(working)
					closed = true
				}
			}
		}()
		if kills%2 == 1 {
			select {
			case <-working:
			case <-time.After(10 * time.Second):
			}
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		} else {
			time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		}
		if err := c.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.Wait()
		sts := l.statuses() // every status file whole after every kill
		tmps, _ := filepath.Glob(filepath.Join(l.stateDir, "status", ".tmp", "*.json.*"))
		for _, tmp := range tmps {
			if _, seen := interrupted[tmp]; seen {
				continue
			}
			id, _, _ := strings.Cut(filepath.Base(tmp), ".")
			interrupted[tmp] = id
			if _, err := os.Stat(filepath.Join(l.stateDir, "status", id+".json")); err == nil {
				if _, ok := sts[id]; !ok {
					t.Errorf("kill %d interrupted the write of %s's status and left it unreadable", kills+1, id)
				}
			}
		}
	}
	if len(interrupted) == 0 {
		t.Fatalf("none of %d kills landed in a status write; the test proved nothing about torn files", kills)
	}
	addr := freeAddr(t)
	c := l.cmd("controller", "--workers", "4", "--metrics-addr", addr, "--resync", "0")
	var logs bytes.Buffer
	c.Stderr = &logs
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	if !waitReady(t, addr, 60*time.Second) {
		t.Fatalf("controller not ready after %d kills\n%s", kills, logs.String())
	}
	cfg, err := desired.Load(l.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	sts := l.statuses()
	for _, id := range cfg.IDs {
		if st := sts[id.String()]; st.Phase != api.PhaseReady {
			t.Errorf("%s is %s after %d kills and a restart: %s", id, st.Phase, kills, st.LastError)
		}
	}
	for id, n := range l.creations() {
		if n != 1 {
			t.Errorf("guest %s was created %d times", id, n)
		}
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	if err := c.Wait(); err != nil {
		t.Errorf("controller after SIGTERM: %v", err)
	}
	t.Logf("%d kills survived, %d of them in the middle of a status write; every guest Ready, each created once", kills, len(interrupted))
}

// setMemory sets memory_mb of every container in the lab's file, saved the
// way editors do (a new file renamed over the old one).
func (l *lab) setMemory(mb int) {
	l.t.Helper()
	path := filepath.Join(l.cfgDir, api.LXCFile)
	data, err := os.ReadFile(path)
	if err != nil {
		l.t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		l.t.Fatal(err)
	}
	for _, g := range doc["lxc_configs"].(map[string]any) {
		g.(map[string]any)["memory_mb"] = mb
	}
	if data, err = json.MarshalIndent(doc, "", "  "); err != nil {
		l.t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		l.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		l.t.Fatal(err)
	}
}

func TestCLI_twoProcessesOnOneStateDir(t *testing.T) {
	l := newLab(t)
	// Two one-shot verbs at once over overlapping chains: the guests they
	// share must be created once, and every status stays whole.
	a := l.cmd("--sim-latency", "5ms", "create", "941", "-o", "json")
	b := l.cmd("--sim-latency", "5ms", "create", "950", "956", "-o", "json")
	var aOut, bOut bytes.Buffer
	a.Stdout, b.Stdout = &aOut, &bOut
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Errorf("first CLI: %v\n%s", err, aOut.String())
	}
	if err := b.Wait(); err != nil {
		t.Errorf("second CLI: %v\n%s", err, bOut.String())
	}
	for id, n := range l.creations() {
		if n != 1 {
			t.Errorf("guest %s was created %d times by two concurrent CLIs", id, n)
		}
	}
	for id, st := range l.statuses() {
		if st.Phase != api.PhaseReady {
			t.Errorf("%s is %s: %s", id, st.Phase, st.LastError)
		}
	}
	// The shared template's workflow ran once: no double apply.
	host, err := sim.New(sim.Options{Dir: filepath.Join(l.stateDir, "sim")})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	g := struct{ Runs map[string]int }{host.Runs(900)}
	if n := g.Runs["features/base_setup"]; n != 1 {
		t.Errorf("900's features ran %d times; want once", n)
	}
}

func TestStateDir_isPrivate(t *testing.T) {
	l := newLab(t)
	state := filepath.Join(l.stateDir, "fresh")
	out, err := exec.Command(phoenixBin(t), "--config-dir", l.cfgDir, "--state-dir", state, "--backend", "sim", "create", "953").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	err = filepath.Walk(state, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		perm := fi.Mode().Perm()
		if fi.IsDir() && perm != 0o700 {
			t.Errorf("folder %s has mode %v, want 0700", path, perm)
		}
		if !fi.IsDir() && perm&0o077 != 0 {
			t.Errorf("file %s has mode %v, readable by others", path, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
