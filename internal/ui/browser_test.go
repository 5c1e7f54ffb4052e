package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/cli"
	"github.com/phoenix-hypervisor/phoenix/internal/status"
	"github.com/phoenix-hypervisor/phoenix/internal/ui"

	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

const exampleScripts = "../../config/examples/scripts"

// screenshotPath is the README's picture of the page; -update rewrites it.
const screenshotPath = "../../docs/img/status-page.png"

// findChromium returns the browser to drive, or skips the test: CI
// installs Debian's chromium (.ci/run), so there it always runs.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PHOENIX_CHROMIUM"); p != "" {
		return p
	}
	names := []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("no Chromium found (PHOENIX_CHROMIUM unset, none of %v on PATH): install it with apt-get install -y chromium (.ci/run does) to run the browser test", names)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIP: " + msg)
	return ""
}

// syncBuffer collects the controller's log lines.
type syncBuffer = testlab.SyncBuffer

// logValue finds the first JSON log line with msg and returns its key.
func logValue(logs, msg, key string) string {
	for _, line := range strings.Split(logs, "\n") {
		if gjson.Get(line, "msg").String() == msg {
			return gjson.Get(line, key).String()
		}
	}
	return ""
}

// eventually polls cond until it holds; the deadline only bounds a hung
// test, it asserts no speed.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last: %s)", what, last)
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// editGuest changes one field of a container in the LXC file the way an
// editor does: a new file renamed over the old.
func editGuest(t *testing.T, cfgDir string, id api.ID, field string, value any) {
	t.Helper()
	path := filepath.Join(cfgDir, api.LXCFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if data, err = sjson.SetBytes(data, "lxc_configs."+id.String()+"."+field, value); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".swp"
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestStatusPage_browser drives the status page in headless Chromium on a
// controller running the example lab on the simulated host: every guest a
// node with its phase, details on click, a broken guest turning Failed on
// its own, and a converge asked for from the page and recorded.
func TestStatusPage_browser(t *testing.T) {
	chrome := findChromium(t)
	cfgDir, stateDir, scriptsDir := t.TempDir(), t.TempDir(), t.TempDir()
	copyTree(t, exampleLab, cfgDir)
	copyTree(t, exampleScripts, scriptsDir)
	cfg := loadLab(t, cfgDir)
	store, err := status.NewStore(filepath.Join(stateDir, "status"))
	if err != nil {
		t.Fatal(err)
	}

	// The controller, as `phoenix controller --ui-allow-converge` runs it.
	logs := &syncBuffer{}
	ctlCtx, stopCtl := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		var out bytes.Buffer
		exited <- cli.Run(ctlCtx, []string{"--config-dir", cfgDir, "--state-dir", stateDir, "--scripts-dir", scriptsDir,
			"--backend", "sim", "--sim-latency", "5ms",
			"controller", "--metrics-addr", "127.0.0.1:0", "--ui-allow-converge", "--log-format", "json",
			"--debounce", "50ms", "--retry-base-delay", "500ms"}, &out, logs)
	}()
	defer func() {
		stopCtl()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("phoenix controller exited %d:\n%s", code, logs)
			}
		case <-time.After(60 * time.Second):
			t.Error("phoenix controller did not stop")
		}
	}()
	var addr string
	eventually(t, "the controller's listener", func() (bool, string) {
		select {
		case code := <-exited:
			t.Fatalf("phoenix controller exited %d:\n%s", code, logs)
		default:
		}
		addr = logValue(logs.String(), "Serving metrics", "addr")
		return addr != "", ""
	})
	readyAll := func() (bool, string) {
		for _, id := range cfg.IDs {
			st, err := store.Get(id, cfg.Guest(id).Kind)
			if err != nil || st.Phase != api.PhaseReady {
				return false, fmt.Sprintf("%s %v %v", id, st, err)
			}
		}
		return true, ""
	}
	eventually(t, "every guest Ready", readyAll)
	token, _, err := ui.LoadOrCreateToken(stateDir)
	if err != nil {
		t.Fatal(err)
	}

	// Headless Chromium with a fresh profile. The background-networking
	// flags matter: there is no internet here, and Chromium's own
	// background requests would otherwise fail its start.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1600, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	bctx, cancelTimeout := context.WithTimeout(bctx, 5*time.Minute)
	defer cancelTimeout()
	shot := func(name string) []byte {
		buf, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot: %v", err)
			return nil
		}
		path := filepath.Join(os.TempDir(), name)
		if err := os.WriteFile(path, buf, 0o644); err == nil {
			t.Logf("screenshot in %s", path)
		}
		return buf
	}
	// waitJS waits until a JavaScript expression is true in the page.
	waitJS := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
			shot("phoenix-status-page-failure.png")
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
	evalJS := func(expr string, v any) {
		t.Helper()
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[json.RawMessage](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("evaluate %s: %v (%s)", expr, err, raw)
		}
	}

	url := "http://" + addr + "/"
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}

	// Every guest is a node of the graph, drawn in its recorded phase, and
	// a row of the table.
	waitJS("the graph and the table", fmt.Sprintf(`document.querySelectorAll('#graph g.node').length === %d && document.querySelectorAll('#guests tbody tr').length === %d`, len(cfg.IDs), len(cfg.IDs)))
	var drawn map[string]string
	evalJS(`Object.fromEntries([...document.querySelectorAll('#graph g.node')].map(n => [n.dataset.id, n.dataset.phase]))`, &drawn)
	for _, id := range cfg.IDs {
		st, _ := store.Get(id, cfg.Guest(id).Kind)
		if drawn[id.String()] != string(st.Phase) {
			t.Errorf("guest %s drawn %q, recorded %s", id, drawn[id.String()], st.Phase)
		}
	}
	if len(drawn) != len(cfg.IDs) {
		t.Errorf("%d nodes, want %d", len(drawn), len(cfg.IDs))
	}
	var kinds map[string]string
	evalJS(`Object.fromEntries([...document.querySelectorAll('#graph g.node')].map(n => [n.dataset.id, n.dataset.kind + (n.dataset.template === 'true' ? '+template' : '')]))`, &kinds)
	if kinds["8000"] != "vm+template" || kinds["941"] != "lxc" || kinds["900"] != "lxc+template" {
		t.Errorf("kinds drawn: %v", kinds)
	}

	// Click a guest: its status, conditions, steps and spec.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#guest-941`))); err != nil {
		t.Fatal(err)
	}
	waitJS("941's details", `document.querySelector('#detail-body').dataset.id === '941'`)
	detail, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#detail-body`)))
	if err != nil {
		t.Fatal(err)
	}
	st941, _ := store.Get(941, api.KindLXC)
	for _, want := range []string{"granite-vllm", "Ready", "ReconciliationSucceeded", "Last workflow: " + fmt.Sprint(len(st941.LastSteps)) + " steps",
		"define", "snapshot-final", "Effective spec", `"vllm_model"`, "921 (clone)", "953 (dependency)"} {
		if !strings.Contains(detail, want) {
			t.Errorf("941's details lack %q:\n%s", want, detail)
		}
	}
	var steps int
	evalJS(`document.querySelectorAll('#detail-body .steps tbody tr').length`, &steps)
	if steps != len(st941.LastSteps) || steps == 0 {
		t.Errorf("%d step rows, want %d", steps, len(st941.LastSteps))
	}
	// The same by keyboard: focus a node, press Enter.
	if err := chromedp.Do(bctx, chromedp.Focus(chromedp.CSS(`#guest-953`)), chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitJS("953's details by keyboard", `document.querySelector('#detail-body').dataset.id === '953'`)

	// Break a guest: its feature script goes missing, and a spec change
	// makes the controller reconcile it.
	if err := os.Remove(filepath.Join(scriptsDir, "features", "ollama.sh")); err != nil {
		t.Fatal(err)
	}
	failedAt := make(chan time.Time, 1)
	go func() {
		// When the Failed record was written, for the latency measurement.
		path := filepath.Join(stateDir, "status", "955.json")
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if st, err := store.Get(955, api.KindLXC); err == nil && st.Phase == api.PhaseFailed {
				if fi, err := os.Stat(path); err == nil {
					failedAt <- fi.ModTime()
				}
				return
			}
		}
	}()
	memory := gjson.GetBytes(mustRead(t, filepath.Join(cfgDir, api.LXCFile)), "lxc_configs.955.memory_mb").Int()
	edited := time.Now()
	editGuest(t, cfgDir, 955, "memory_mb", memory+1024)
	waitJS("955 drawn Failed", `document.querySelector('#guest-955').dataset.phase === 'Failed' && document.querySelector('#guests tr[data-id="955"]').dataset.phase === 'Failed'`)
	seen := time.Now()
	t.Logf("955 turned Failed on the page %s after its file was edited", seen.Sub(edited).Round(time.Millisecond))
	select {
	case at := <-failedAt:
		var ms int64
		evalJS(`window.phoenixUpdates.find(u => u.id === '955' && u.phase === 'Failed').at`, &ms)
		t.Logf("page update latency: the Failed record was written at %s, the page showed it %s later",
			at.Format("15:04:05.000"), time.UnixMilli(ms).Sub(at).Round(time.Millisecond))
	default:
		t.Log("the Failed record was not timed (the poller missed it)")
	}
	var errText string
	evalJS(`document.querySelector('#guests tr[data-id="955"] td.error').textContent`, &errText)
	if !strings.Contains(errText, "ollama") {
		t.Errorf("955's last error on the page: %q", errText)
	}

	// Converge a guest from the page: the token is recorded.
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`#guests tr[data-id="941"]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS("941's details again", `document.querySelector('#detail-body').dataset.id === '941' && !document.querySelector('#converge').hidden`)
	// A wrong token is refused, and the page says so.
	clearToken := func() {
		var ok bool
		evalJS(`(document.querySelector('#token').value = '', true)`, &ok)
	}
	clearToken()
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), strings.Repeat("f", 64)),
		chromedp.Click(chromedp.CSS(`#converge-button`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS("the refusal", `document.querySelector('#converge-msg').textContent.includes('refused')`)
	if st, _ := store.Get(941, api.KindLXC); st.LastHandledConvergeAt != "" || loadLab(t, cfgDir).Guest(941).ConvergeToken() != "" {
		t.Fatal("a wrong token asked for a converge")
	}
	clearToken()
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Click(chromedp.CSS(`#converge-button`)),
	); err != nil {
		t.Fatal(err)
	}
	waitJS("the converge handled", `document.querySelector('#converge-msg').textContent.includes('handled')`)
	msg, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#converge-msg`)))
	st941, _ = store.Get(941, api.KindLXC)
	requested := loadLab(t, cfgDir).Guest(941).ConvergeToken()
	if st941.LastHandledConvergeAt == "" || st941.LastHandledConvergeAt != requested || !strings.Contains(msg, requested) {
		t.Fatalf("converge from the page: message %q, annotation %q, recorded %q", msg, requested, st941.LastHandledConvergeAt)
	}
	waitJS("941's token in the table", fmt.Sprintf(`document.querySelector('#guests tr[data-id="941"] td.token').dataset.token === %q`, requested))
	t.Logf("converge from the page recorded token %s", requested)

	// The picture for the README: the broken guest selected.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#guest-955`))); err != nil {
		t.Fatal(err)
	}
	waitJS("955's details", `document.querySelector('#detail-body').dataset.id === '955' && document.querySelector('#detail-body').textContent.includes('ollama')`)
	png := shot("phoenix-status-page.png")
	if *update && png != nil {
		if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(screenshotPath, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", screenshotPath)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
