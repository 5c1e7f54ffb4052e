package cli_test

// Tests of --backend pve-api, run through cli.Run against a fake
// three-node cluster (internal/fake/pveapi) on 127.0.0.1, with the fake's nodes
// reachable over SSH for container scripts and raw lxc.* keys.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/phoenix-hypervisor/phoenix/internal/cli"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/plan"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

const (
	apiReferenceLab = "../../testdata/reference-lab"
	apiTokenID      = "root@pam!phoenix"
	// apiSecret must never appear in any output, log or state file.
	apiSecret = "8d0c4e7a-6f1b-4c52-9a3e-5b7d2f1e0c9a"
)

// labNodes places the reference lab on three nodes: each node holds guests,
// and 901, 910, 921, 941, 953 and 957 are cloned across nodes. Guests not
// listed follow their clone source; 900 would go to the default node.
var labNodes = map[string]string{
	"900": "pve1", "901": "pve2", "910": "pve3", "921": "pve3", "941": "pve1",
	"953": "pve2", "957": "pve3", "8000": "pve3",
}

// apiLab is a fake cluster, a copy of the reference lab with node fields,
// scripts, a token file and SSH keys: everything phoenix --backend pve-api
// needs.
type apiLab struct {
	t                                     testing.TB
	fake                                  *fakepveapi.Cluster
	url                                   string
	cfgDir, stateDir, scriptsDir, secrets string
	tokenFile                             string
	sshFlags                              []string
	extra                                 []string
	// lxc and vm are the lab's guests with their clone source.
	source map[string]string
}

type labOpt func(*fakepveapi.Options)

func newAPILab(t testing.TB, opts ...labOpt) *apiLab {
	t.Helper()
	if _, err := os.Stat(apiReferenceLab); err != nil {
		// The lab is part of the repository: a missing copy is a broken checkout.
		t.Fatalf("reference lab: %v", err)
	}
	fo := fakepveapi.Options{TokenID: apiTokenID, Secret: apiSecret, TaskDuration: 2 * time.Millisecond}
	for _, o := range opts {
		o(&fo)
	}
	l := &apiLab{t: t, fake: fakepveapi.New(fo), cfgDir: t.TempDir(), stateDir: t.TempDir(), scriptsDir: t.TempDir(),
		secrets: t.TempDir(), source: map[string]string{}}
	srv := httptest.NewServer(l.fake)
	t.Cleanup(func() { l.fake.Close(); srv.Close() })
	l.url = srv.URL
	l.tokenFile = filepath.Join(l.secrets, "token")
	l.write(l.tokenFile, apiTokenID+"="+apiSecret+"\n", 0o600)
	l.copyLab()
	l.startSSH()
	return l
}

func (l *apiLab) write(path, content string, mode os.FileMode) {
	l.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		l.t.Fatal(err)
	}
}

// copyLab copies the reference lab, adds node fields, and writes a script
// for every feature and application script it names.
func (l *apiLab) copyLab() {
	l.t.Helper()
	read := func(name string) map[string]any {
		data, err := os.ReadFile(filepath.Join(apiReferenceLab, name))
		if err != nil {
			l.t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			l.t.Fatal(err)
		}
		return doc
	}
	scripts := map[string]bool{}
	guest := func(id string, g map[string]any) {
		if n, ok := labNodes[id]; ok {
			g["node"] = n
		}
		for _, k := range []string{"clone_from_ctid", "clone_from_vmid"} {
			if src, ok := g[k]; ok {
				l.source[id] = fmt.Sprint(src)
			}
		}
		if fs, ok := g["features"].([]any); ok {
			for _, f := range fs {
				scripts["features/"+f.(string)+".sh"] = true
			}
		}
		if a, ok := g["application_script"].(string); ok {
			scripts["apps/"+a] = true
		}
	}
	lxc := read("phoenix_lxc_configs.json")
	for id, g := range lxc["lxc_configs"].(map[string]any) {
		guest(id, g.(map[string]any))
	}
	vms := read("phoenix_vm_configs.json")
	for _, g := range vms["vms"].([]any) {
		guest(fmt.Sprint(g.(map[string]any)["vmid"]), g.(map[string]any))
	}
	// The lab names its template and image by path, as the old tool did
	// as root on the node; an API token must use volume IDs.
	volumeIDs(lxc, "template", func(p string) string { return "local:vztmpl/" + filepath.Base(p) })
	volumeIDs(vms, "template_image", func(p string) string {
		return "local:import/" + strings.TrimSuffix(filepath.Base(p), ".img") + ".qcow2"
	})
	for name, doc := range map[string]map[string]any{"phoenix_lxc_configs.json": lxc, "phoenix_vm_configs.json": vms} {
		data, _ := json.MarshalIndent(doc, "", "  ")
		l.write(filepath.Join(l.cfgDir, name), string(data), 0o644)
	}
	for s := range scripts {
		l.write(filepath.Join(l.scriptsDir, s), "#!/bin/bash\nset -e\necho "+s+"\n", 0o644)
	}
}

// volumeIDs replaces every value of key in doc that is not a volume ID.
func volumeIDs(doc any, key string, to func(string) string) {
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			if s, ok := v.(string); ok && k == key && !strings.Contains(s, ":") {
				d[k] = to(s)
				continue
			}
			volumeIDs(v, key, to)
		}
	case []any:
		for _, v := range d {
			volumeIDs(v, key, to)
		}
	}
}

// startSSH starts the fake nodes' SSH servers with a fresh client key and
// a known_hosts file holding their host keys.
func (l *apiLab) startSSH() {
	l.t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		l.t.Fatal(err)
	}
	key := filepath.Join(l.secrets, "id_ed25519")
	l.write(key, string(pem.EncodeToMemory(block)), 0o600)
	spub, _ := ssh.NewPublicKey(pub)
	eps, err := l.fake.StartSSH(spub)
	if err != nil {
		l.t.Fatal(err)
	}
	kh := filepath.Join(l.secrets, "known_hosts")
	l.write(kh, fakepveapi.KnownHosts(eps), 0o600)
	l.sshFlags = []string{"--pve-ssh-key", key, "--pve-ssh-known-hosts", kh}
	for _, ep := range eps {
		l.sshFlags = append(l.sshFlags, "--pve-ssh-addr", ep.Node+"="+ep.Addr)
	}
}

// baseArgs are the flags of every run: the pve-api backend with short
// timeouts and fast polling, as a test against a loopback fake can afford.
func (l *apiLab) baseArgs() []string {
	args := []string{"--config-dir", l.cfgDir, "--state-dir", l.stateDir, "--scripts-dir", l.scriptsDir,
		"--backend", "pve-api", "--pve-url", l.url, "--pve-token-file", l.tokenFile, "--pve-default-node", "pve1",
		"--pve-api-timeout", "2s", "--pve-api-task-poll", "2ms", "--pve-api-backoff", "5ms", "--parallel", "8"}
	return append(append(args, l.sshFlags...), l.extra...)
}

// allOutput collects every output of every run, for the token check.
var allOutput struct {
	sync.Mutex
	b bytes.Buffer
}

func (l *apiLab) run(args ...string) (int, string, string) {
	l.t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), append(l.baseArgs(), args...), &out, &errOut)
	allOutput.Lock()
	allOutput.b.WriteString(out.String() + errOut.String())
	allOutput.Unlock()
	return code, out.String(), errOut.String()
}

func (l *apiLab) mustRun(args ...string) string {
	l.t.Helper()
	code, out, errOut := l.run(args...)
	if code != 0 {
		l.t.Fatalf("phoenix %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// runJSON runs a verb with -o json, checks the document against the
// result schema and decodes it.
func (l *apiLab) runJSON(args ...string) (int, plan.ResultDoc, string) {
	l.t.Helper()
	code, out, errOut := l.run(append(args, "-o", "json")...)
	testlab.ValidateJSON(l.t, "testdata/result.schema.json", out)
	var doc plan.ResultDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		l.t.Fatalf("phoenix %s -o json: %v\n%s\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return code, doc, errOut
}

// wantNode is where a guest of the lab belongs: its node field, else its
// clone source's node, else the default node.
func (l *apiLab) wantNode(id string) string {
	if n, ok := labNodes[id]; ok {
		return n
	}
	if src, ok := l.source[id]; ok {
		return l.wantNode(src)
	}
	return "pve1"
}

// dependsOn reports whether guest id needs a guest for which pred holds,
// through clone sources and dependencies (of the lab's JSON).
func (l *apiLab) dependsOn(id string, pred func(string) bool) bool {
	for src := id; ; {
		s, ok := l.source[src]
		if !ok {
			break
		}
		if pred(s) {
			return true
		}
		src = s
	}
	for _, d := range l.deps(id) {
		if pred(d) || l.dependsOn(d, pred) {
			return true
		}
	}
	return false
}

func (l *apiLab) deps(id string) []string {
	data, _ := os.ReadFile(filepath.Join(l.cfgDir, "phoenix_lxc_configs.json"))
	var doc struct {
		LXC map[string]struct {
			Dependencies []any `json:"dependencies"`
		} `json:"lxc_configs"`
	}
	json.Unmarshal(data, &doc)
	var out []string
	for _, d := range doc.LXC[id].Dependencies {
		out = append(out, fmt.Sprint(d))
	}
	return out
}

// writes returns the guests that requests since mark changed, by VMID.
func (l *apiLab) writes(mark int) []string {
	seen := map[string]bool{}
	for _, r := range l.fake.Requests()[mark:] {
		if r.Method == "GET" {
			continue
		}
		seg := strings.Split(strings.Trim(r.Path, "/"), "/")
		switch {
		case len(seg) == 3: // create: POST /nodes/{node}/{type}
			seen[r.Params["vmid"]] = true
		case len(seg) >= 4 && seg[len(seg)-1] == "clone":
			seen[r.Params["newid"]] = true
		case len(seg) >= 4:
			seen[seg[3]] = true
		}
	}
	var out []string
	for id := range seen {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func byID(doc plan.ResultDoc) map[string]plan.ActionDoc {
	m := map[string]plan.ActionDoc{}
	for _, a := range doc.Actions {
		if a.Action == "start" {
			m[a.ID+"/start"] = a
		} else {
			m[a.ID] = a
		}
	}
	return m
}

// provision builds 941's chain.
func (l *apiLab) provision() {
	l.t.Helper()
	l.mustRun("create", "941")
}

func TestPVEAPI_createOnProvisionedStackActsOnTargetOnly(t *testing.T) {
	l := newAPILab(t)
	l.provision()
	execsBefore := map[string]int{}
	for _, g := range l.fake.Guests() {
		execsBefore[fmt.Sprint(g.VMID)] = len(g.Execs)
	}
	mark := len(l.fake.Requests())

	code, doc, errOut := l.runJSON("create", "941")
	if code != 0 || !doc.OK {
		t.Fatalf("exit %d ok %v\n%s", code, doc.OK, errOut)
	}
	acts := byID(doc)
	for _, id := range []string{"900", "901", "921", "953"} {
		if a := acts[id]; a.Action != "skip" || a.Reason != "exists" || a.Result != "skipped" {
			t.Errorf("%s: %+v, want skip (exists)", id, a)
		}
	}
	if a := acts["941"]; a.Action != "create" || a.Reason != "target" || a.Result != "ok" {
		t.Errorf("941: %+v", a)
	}
	if got := l.writes(mark); !slices.Equal(got, []string{"941"}) && len(got) != 0 {
		t.Errorf("API writes touched %v, want 941 only", got)
	}
	for _, g := range l.fake.Guests() {
		id := fmt.Sprint(g.VMID)
		if id != "941" && len(g.Execs) != execsBefore[id] {
			t.Errorf("scripts ran in %s", id)
		}
	}
	if g := l.fake.Guest(941); len(g.Execs) <= execsBefore["941"] {
		t.Error("941's features and app script did not run again")
	}
}

func TestPVEAPI_createRebuildsMissingDependencyFirst(t *testing.T) {
	l := newAPILab(t)
	l.provision()
	l.mustRun("stop", "941")
	l.mustRun("delete", "--force", "921")
	if l.fake.Guest(921) != nil {
		t.Fatal("921 not deleted")
	}
	mark := len(l.fake.Requests())

	code, doc, errOut := l.runJSON("create", "941")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	acts := byID(doc)
	if a := acts["921"]; a.Action != "create" || a.Reason != "missing-dependency" || a.Result != "ok" {
		t.Errorf("921: %+v", a)
	}
	for _, id := range []string{"900", "901", "953"} {
		if a := acts[id]; a.Action != "skip" {
			t.Errorf("%s: %+v, want skip", id, a)
		}
	}
	if g := l.fake.Guest(921); g == nil || g.Node != "pve3" || !g.HasSnapshot("pre-configured") {
		t.Errorf("921 after create: %+v", g)
	}
	// 921 was finished (its template snapshot taken) before 941 was touched.
	last921, first941 := -1, -1
	for i, r := range l.fake.Requests()[mark:] {
		if r.Method == "GET" {
			continue
		}
		if strings.Contains(r.Path, "/921/") || r.Params["newid"] == "921" {
			last921 = i
		}
		if first941 < 0 && strings.Contains(r.Path, "/941/") {
			first941 = i
		}
	}
	if last921 < 0 || first941 < 0 || last921 > first941 {
		t.Errorf("order: last write to 921 at %d, first to 941 at %d", last921, first941)
	}
}

func TestPVEAPI_convergeRunsTheWorkflowOnTheWholeChain(t *testing.T) {
	l := newAPILab(t)
	l.provision()
	execsBefore := map[int]int{}
	for _, g := range l.fake.Guests() {
		execsBefore[g.VMID] = len(g.Execs)
	}
	code, doc, errOut := l.runJSON("converge", "941")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	var got []string
	for _, a := range doc.Actions {
		if a.Action != "create" || a.Result != "ok" {
			t.Errorf("%s: %+v, want create/ok", a.ID, a)
		}
		got = append(got, a.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"900", "901", "921", "941", "953"}) {
		t.Errorf("converged %v", got)
	}
	for _, id := range []int{900, 901, 921, 941, 953} {
		if g := l.fake.Guest(id); len(g.Execs) <= execsBefore[id] {
			t.Errorf("converge did not run %d's features again", id)
		}
	}
}

func TestPVEAPI_LetsGoOnThreeNodes(t *testing.T) {
	l := newAPILab(t, func(o *fakepveapi.Options) { o.TaskDuration = 5 * time.Millisecond })
	l.extra = []string{"--pve-api-node-concurrency", "2"}
	// A transient proxy error and a lock on the way: retried, not fatal.
	l.fake.InjectHTTP(fakepveapi.HTTPFault{Method: "GET", Path: `^/cluster/resources`, Status: 503, Message: "Service Unavailable", Times: 2})
	l.fake.InjectHTTP(fakepveapi.HTTPFault{Method: "POST", Path: `/lxc/953/status/start$`, Status: 500, Message: "CT is locked (snapshot)", Times: 1})

	code, doc, errOut := l.runJSON("LetsGo")
	if code != 0 || !doc.OK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	perNode := map[string]int{}
	for _, g := range l.fake.Guests() {
		id := fmt.Sprint(g.VMID)
		if want := l.wantNode(id); g.Node != want {
			t.Errorf("%s is on %s, want %s", id, g.Node, want)
		}
		perNode[g.Node]++
	}
	if len(perNode) != 3 {
		t.Errorf("guests per node %v: want guests on all three", perNode)
	}
	if len(l.fake.Guests()) != 19 {
		t.Errorf("%d guests, want 19", len(l.fake.Guests()))
	}
	for id, a := range byID(doc) {
		// A guest the create workflow started already is skipped by its
		// start action.
		if a.Result != "ok" && !(a.Action == "start" && a.Result == "skipped") {
			t.Errorf("%s: %+v", id, a)
		}
		if start, ok := strings.CutSuffix(id, "/start"); ok {
			var n int
			fmt.Sscan(start, &n)
			if g := l.fake.Guest(n); !g.Running {
				t.Errorf("%s not running", start)
			}
		}
	}
	if g := l.fake.Guest(8000); !g.Template {
		t.Error("8000 is not a template")
	}
	if g := l.fake.Guest(941); g.RawValue("lxc.apparmor.profile") != "unconfined" {
		t.Errorf("941's raw keys: %v", g.Raw)
	}
	if g := l.fake.Guest(8001); len(g.Execs) == 0 {
		t.Error("8001's docker feature did not run through the guest agent")
	}
	for _, n := range l.fake.Nodes() {
		if m := l.fake.MaxRunningTasks(n); m > 2 {
			t.Errorf("node %s ran %d tasks at once; --pve-api-node-concurrency 2", n, m)
		}
	}
	// Idempotent: a second LetsGo creates nothing and finds all running.
	mark := len(l.fake.Requests())
	code, doc, errOut = l.runJSON("LetsGo")
	if code != 0 {
		t.Fatalf("second LetsGo: exit %d\n%s", code, errOut)
	}
	for _, r := range l.fake.Requests()[mark:] {
		if r.Method == "POST" && (strings.HasSuffix(r.Path, "/clone") || strings.Count(r.Path, "/") == 3) {
			t.Errorf("second LetsGo created: %s %s", r.Method, r.Path)
		}
	}
}

func TestPVEAPI_crossNodeCloneUsesTarget(t *testing.T) {
	l := newAPILab(t)
	l.provision()
	var clones []string
	for _, r := range l.fake.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/clone") {
			clones = append(clones, fmt.Sprintf("%s newid=%s target=%s", r.Path, r.Params["newid"], r.Params["target"]))
		}
	}
	want := []string{
		"/nodes/pve1/lxc/900/clone newid=901 target=pve2", // 901: node pve2, source on pve1
		"/nodes/pve1/lxc/900/clone newid=953 target=pve2",
		"/nodes/pve2/lxc/901/clone newid=921 target=pve3",
		"/nodes/pve3/lxc/921/clone newid=941 target=pve1",
	}
	slices.Sort(clones)
	if !slices.Equal(clones, want) {
		t.Errorf("clones\n%s\nwant\n%s", strings.Join(clones, "\n"), strings.Join(want, "\n"))
	}
	for id, node := range map[int]string{900: "pve1", 901: "pve2", 921: "pve3", 941: "pve1", 953: "pve2"} {
		if g := l.fake.Guest(id); g == nil || g.Node != node {
			t.Errorf("%d: %+v, want on %s", id, g, node)
		}
	}
	// The clone came from the template snapshot.
	for _, r := range l.fake.Requests() {
		if r.Params["newid"] == "941" && r.Params["snapname"] != "pre-configured" {
			t.Errorf("941 cloned from snapshot %q", r.Params["snapname"])
		}
	}
}

func TestPVEAPI_nodeThatStopsAnsweringMidRun(t *testing.T) {
	l := newAPILab(t)
	l.extra = []string{"--pve-api-timeout", "500ms"}
	// pve3 dies while 921, cloned and configured there, is being started;
	// other guests on pve3 may be done by then, or not started yet.
	var once sync.Once
	l.fake.OnRequest(func(method, path string) {
		if method == "POST" && path == "/nodes/pve3/lxc/921/status/start" {
			once.Do(func() { l.fake.SetNodeDown("pve3", true) })
		}
	})
	code, doc, errOut := l.runJSON("LetsGo")
	if code != 1 || doc.OK {
		t.Fatalf("exit %d with pve3 down mid-run, want 1\n%s", code, errOut)
	}
	onPVE3 := func(id string) bool { return l.wantNode(id) == "pve3" }
	failed := 0
	for _, a := range doc.Actions {
		if a.Result != "ok" {
			t.Logf("%s %s: %s %s", a.Action, a.ID, a.Result, a.Error)
		}
		if a.Action != "create" {
			continue
		}
		switch {
		case onPVE3(a.ID), l.dependsOn(a.ID, onPVE3):
			// Done before pve3 stopped answering, failed naming pve3, or
			// cancelled because what it needs failed.
			if a.Result == "failed" {
				failed++
				if !strings.Contains(a.Error, "pve3") {
					t.Errorf("%s failed without naming pve3: %s", a.ID, a.Error)
				}
			}
		default:
			if a.Result != "ok" {
				t.Errorf("%s (independent of pve3) %s: %s", a.ID, a.Result, a.Error)
			}
		}
	}
	if failed == 0 {
		t.Error("no guest on pve3 failed")
	}
	if a := byID(doc)["921"]; a.Result != "failed" || !strings.Contains(a.Error, "start on node pve3: POST /nodes/pve3/lxc/921/status/start: no answer within 500ms (is node pve3 up?)") {
		t.Errorf("921: %s %s", a.Result, a.Error)
	}
	if a := byID(doc)["941"]; a.Result != "cancelled" {
		t.Errorf("941 (cloned from 921) %s, want cancelled", a.Result)
	}
	if !strings.Contains(errOut, "pve3") {
		t.Errorf("stderr does not name pve3:\n%s", errOut)
	}

	l.fake.SetNodeDown("pve3", false)
	code, doc, errOut = l.runJSON("LetsGo")
	if code != 0 || !doc.OK {
		t.Fatalf("rerun with pve3 back: exit %d\n%s", code, errOut)
	}
	if n := len(l.fake.Guests()); n != 19 {
		t.Errorf("%d guests after the rerun, want 19", n)
	}
}

func TestPVEAPI_failedTaskFailsTheStepAndIsRecorded(t *testing.T) {
	l := newAPILab(t)
	const exit = "startup for container '953' failed"
	l.fake.FailTask(fakepveapi.TaskFault{Type: "vzstart", VMID: 953, ExitStatus: exit})
	code, doc, errOut := l.runJSON("create", "953")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	a := byID(doc)["953"]
	if a.Result != "failed" || !strings.Contains(a.Error, "step start: lxc 953: start on node pve2: task vzstart on node pve2 failed: "+exit) {
		t.Errorf("953: %+v", a)
	}
	data, err := os.ReadFile(filepath.Join(l.stateDir, "status", "953.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Phase     string `json:"phase"`
		LastError string `json:"lastError"`
	}
	json.Unmarshal(data, &st)
	if st.Phase != "Failed" || !strings.Contains(st.LastError, exit) {
		t.Errorf("status %s", data)
	}
	l.mustRun("create", "953")
	if g := l.fake.Guest(953); !g.Running {
		t.Errorf("953 after the rerun: %+v", g)
	}
}

// TestPVEAPI_taskStatusWithoutUPIDAndNode: a task status answer that
// lacks upid and node (a proxy, another version) does not stop phoenix:
// the task is tracked by the UPID the write answered.
func TestPVEAPI_taskStatusWithoutUPIDAndNode(t *testing.T) {
	l := newAPILab(t)
	l.fake.FilterAnswers(func(method, path string, data any) any {
		if st, ok := data.(map[string]any); ok && strings.Contains(path, "/tasks/") {
			delete(st, "upid")
			delete(st, "node")
		}
		return data
	})
	code, doc, errOut := l.runJSON("create", "941")
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, errOut)
	}
	if a := byID(doc)["941"]; a.Result != "ok" {
		t.Errorf("941: %+v", a)
	}
	if g := l.fake.Guest(941); g == nil || !g.Running {
		t.Errorf("941 after create: %+v", g)
	}
}

// TestPVEAPI_taskStatusWithoutStatusFailsNamingTaskAndEndpoint: a task
// status with no status at all fails the step with a message naming the
// task and the endpoint, exit 1, no panic.
func TestPVEAPI_taskStatusWithoutStatusFailsNamingTaskAndEndpoint(t *testing.T) {
	l := newAPILab(t)
	l.fake.FilterAnswers(func(method, path string, data any) any {
		if strings.Contains(path, "/tasks/") {
			return map[string]any{"exitstatus": nil}
		}
		return data
	})
	code, doc, errOut := l.runJSON("create", "900")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	a := byID(doc)["900"]
	if !strings.Contains(a.Error, "wait for task vzcreate (started by POST /nodes/pve1/lxc): GET /nodes/pve1/tasks/UPID:pve1:") ||
		!strings.Contains(a.Error, "/status: answer: no status") {
		t.Errorf("900: %s", a.Error)
	}
}

func TestPVEAPI_containerScriptsWithoutSSHFailWithAClearMessage(t *testing.T) {
	l := newAPILab(t)
	l.sshFlags = nil
	// Drop what only root@pam may set, which is refused up front without
	// SSH (TestPVEAPI_tokenRefusesWhatOnlyRootMay), to reach the raw keys.
	l.editLXC(func(id string, g map[string]any) {
		delete(g, "pct_options")
		delete(g, "gpu_assignment")
	})
	code, doc, errOut := l.runJSON("create", "900")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	a := byID(doc)["900"]
	if !strings.Contains(a.Error, "the Proxmox API cannot do this") || !strings.Contains(a.Error, "--pve-ssh-key") {
		t.Errorf("900: %s", a.Error)
	}
	if l.fake.Guest(900) != nil {
		t.Error("900 was created although its lxc.* keys cannot be set")
	}
}

// editLXC changes the lab's containers in place.
func (l *apiLab) editLXC(fn func(id string, g map[string]any)) {
	l.t.Helper()
	path := filepath.Join(l.cfgDir, "phoenix_lxc_configs.json")
	data, err := os.ReadFile(path)
	if err != nil {
		l.t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		l.t.Fatal(err)
	}
	for id, g := range doc["lxc_configs"].(map[string]any) {
		fn(id, g.(map[string]any))
	}
	data, _ = json.MarshalIndent(doc, "", "  ")
	l.write(path, string(data), 0o644)
}

// TestPVEAPI_tokenRefusesWhatOnlyRootMay: a template named by its path,
// and (without SSH) features other than nesting and device passthrough,
// are refused before anything runs: exit 2, every problem named by file,
// guest and field, nothing sent to the cluster but reads.
func TestPVEAPI_tokenRefusesWhatOnlyRootMay(t *testing.T) {
	l := newAPILab(t)
	l.sshFlags = nil
	l.editLXC(func(id string, g map[string]any) {
		if id == "900" {
			g["template"] = "/var/lib/vz/template/cache/ubuntu-24.04-standard_24.04-2_amd64.tar.zst"
		}
	})
	code, out, errOut := l.run("create", "900")
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`phoenix_lxc_configs.json: guest 900: field template: "/var/lib/vz/template/cache/ubuntu-24.04-standard_24.04-2_amd64.tar.zst" is a file path, and Proxmox answers an API token "Only root can pass arbitrary filesystem paths."; give the template's volume ID instead, e.g. local:vztmpl/`,
		"field pct_options: features other than nesting",
		"field gpu_assignment: device passthrough (dev[n]) can be set only by root@pam, which no API token is; give phoenix SSH access",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, r := range l.fake.Requests() {
		if r.Method != "GET" {
			t.Errorf("sent %s %s", r.Method, r.Path)
		}
	}
}

// TestPVEAPI_rootOnlySettingsGoThroughPctOverSSH: with SSH, a container's
// device passthrough and features beyond nesting are set with pct set on
// its node; the API requests never carry them.
func TestPVEAPI_rootOnlySettingsGoThroughPctOverSSH(t *testing.T) {
	l := newAPILab(t)
	l.mustRun("create", "941")
	for _, r := range l.fake.Requests() {
		for k := range r.Params {
			if strings.HasPrefix(k, "dev") || (k == "features" && r.Params[k] != "nesting=1") {
				t.Errorf("%s %s carried %s=%s", r.Method, r.Path, k, r.Params[k])
			}
		}
	}
	var checked int
	for _, g := range l.fake.Guests() {
		if g.Type != "lxc" {
			continue
		}
		if g.Config["dev0"] != "" || strings.Contains(g.Config["features"], "keyctl") {
			checked++
		}
	}
	if checked == 0 {
		t.Error("no container got its devices or features; the lab should have some")
	}
}

func TestPVEAPI_tokenFileMustBeOwnerOnly(t *testing.T) {
	l := newAPILab(t)
	os.Chmod(l.tokenFile, 0o644)
	code, out, errOut := l.run("create", "900")
	if code != 2 || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
	if len(l.fake.Requests()) != 0 {
		t.Error("the API was called with a token others can read")
	}
}

func TestPVEAPI_flagsAndTLS(t *testing.T) {
	l := newAPILab(t)
	code, _, errOut := l.run("status", "900")
	if code != 0 || !strings.Contains(errOut, "warning: --pve-url "+l.url+" is plain http") {
		t.Errorf("http URL: exit %d, stderr %q", code, errOut)
	}

	tlsSrv := httptest.NewTLSServer(l.fake)
	defer tlsSrv.Close()
	ca := filepath.Join(l.secrets, "ca.pem")
	l.write(ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})), 0o644)
	l.url = tlsSrv.URL
	tests := []struct {
		name     string
		extra    []string
		wantCode int
		wantErr  string
	}{
		{name: "unverifiable certificate", wantCode: 1, wantErr: "certificate"},
		{name: "the cluster's CA", extra: []string{"--pve-ca-file", ca}},
		{name: "insecure on request", extra: []string{"--pve-insecure"}, wantErr: "--pve-insecure: the API's TLS certificate is not verified"},
		{name: "no URL", extra: []string{"--pve-url", ""}, wantCode: 2, wantErr: "needs --pve-url"},
		{name: "no token file", extra: []string{"--pve-token-file", ""}, wantCode: 2, wantErr: "needs --pve-token-file"},
		{name: "bad ssh addr", extra: []string{"--pve-ssh-addr", "pve1"}, wantCode: 2, wantErr: "want NODE=HOST:PORT"},
		{name: "missing CA file", extra: []string{"--pve-ca-file", ca + ".missing"}, wantCode: 2, wantErr: "CA file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l.extra = append([]string{"--pve-api-retries", "0"}, tt.extra...)
			code, out, errOut := l.run("status", "900", "-o", "json")
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)\n%s", code, tt.wantCode, errOut, tt.wantErr, out)
			}
			if strings.Contains(errOut, "plain http") {
				t.Error("https URL warned as plain http")
			}
		})
	}
}

// TestPVEAPI_tokenNeverAppears checks the output of every run of the tests
// before it in this file, plus runs of its own that fail in the ways most
// likely to print a request (a refused token, a node down, a bad file), and
// every file phoenix left in its state dir.
func TestPVEAPI_tokenNeverAppears(t *testing.T) {
	l := newAPILab(t)
	l.mustRun("create", "953", "-o", "json")
	l.run("status", "-o", "json")
	l.run("converge", "--dry-run", "953")
	l.fake.SetNodeDown("pve2", true)
	l.extra = []string{"--pve-api-timeout", "300ms"}
	l.run("converge", "953")
	l.fake.SetNodeDown("pve2", false)
	l.write(l.tokenFile, apiTokenID+"=not-"+apiSecret+"\n", 0o600)
	if code, _, errOut := l.run("status", "953"); code == 0 || !strings.Contains(errOut, "refused the token") {
		t.Errorf("wrong token: exit %d, %s", code, errOut)
	}
	l.write(l.tokenFile, apiSecret+"\n", 0o600)
	if code, _, errOut := l.run("status", "953"); code != 2 || !strings.Contains(errOut, "want one line") {
		t.Errorf("malformed token: exit %d, %s", code, errOut)
	}
	os.Chmod(l.tokenFile, 0o640)
	l.run("create", "953")

	allOutput.Lock()
	out := allOutput.b.String()
	allOutput.Unlock()
	if strings.Contains(out, apiSecret) {
		i := strings.Index(out, apiSecret)
		t.Errorf("the token secret appears in the output: ...%s...", out[max(0, i-200):min(len(out), i+100)])
	}
	if out == "" {
		t.Error("no output collected")
	}
	filepath.WalkDir(l.stateDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, _ := os.ReadFile(path); bytes.Contains(data, []byte(apiSecret)) {
				t.Errorf("%s holds the token secret", path)
			}
		}
		return nil
	})
	for _, r := range l.fake.Requests() {
		for k, v := range r.Params {
			if strings.Contains(v, apiSecret) {
				t.Errorf("request %s %s sent the secret as parameter %s", r.Method, r.Path, k)
			}
		}
	}
}

// TestPVEAPI_controllerPlacesGuestsByNodeField runs the controller on the
// cluster until every guest is in place: the controller hands each valid
// reload to the backend, so node fields hold there too.
func TestPVEAPI_controllerPlacesGuestsByNodeField(t *testing.T) {
	l := newAPILab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- cli.Run(ctx, append(l.baseArgs(), "controller", "--metrics-addr", "", "--workers", "8", "--resync", "0"), &out, &errOut)
	}()
	for {
		if len(l.fake.Guests()) == 19 {
			all := true
			for _, g := range l.fake.Guests() {
				if g.Lock != "" || (g.VMID == 941 && !g.Running) {
					all = false
				}
			}
			if all {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("controller exited %d\n%s", code, errOut.String())
		case <-ctx.Done():
			t.Fatalf("guests after 60s: %d\n%s", len(l.fake.Guests()), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	<-done
	for _, g := range l.fake.Guests() {
		id := fmt.Sprint(g.VMID)
		if want := l.wantNode(id); g.Node != want {
			t.Errorf("%s is on %s, want %s", id, g.Node, want)
		}
	}
	if strings.Contains(out.String()+errOut.String(), apiSecret) {
		t.Error("the controller's output shows the token secret")
	}
}

// TestPVEAPI_controllerResyncReadsOnlyTheGuestList: on a provisioned
// cluster, resync passes send nothing but GET /cluster/resources; when a
// guest disappears behind phoenix's back, configs and snapshots are read
// only for it and the guests its chain needs.
func TestPVEAPI_controllerResyncReadsOnlyTheGuestList(t *testing.T) {
	l := newAPILab(t)
	l.mustRun("LetsGo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	mark := len(l.fake.Requests())
	go func() {
		done <- cli.Run(ctx, append(l.baseArgs(), "controller", "--metrics-addr", "", "--workers", "4", "--resync", "100ms"), &out, &errOut)
	}()
	lists := func(from int) int {
		n := 0
		for _, r := range l.fake.Requests()[from:] {
			if r.Path == "/cluster/resources" {
				n++
			}
		}
		return n
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case code := <-done:
				t.Fatalf("controller exited %d\n%s", code, errOut.String())
			case <-ctx.Done():
				t.Fatalf("%s: not after 60s\n%s", what, errOut.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// Several passes (the list is reused for 2s, passes come every 100ms).
	waitUntil("three lists", func() bool { return lists(mark) >= 3 })
	steady := l.fake.Requests()[mark:]
	for _, r := range steady {
		if r.Path != "/cluster/resources" {
			t.Errorf("steady state sent %s %s; want only GET /cluster/resources", r.Method, r.Path)
		}
	}

	gone := l.fake.Guest(941)
	mark = len(l.fake.Requests())
	l.fake.RemoveGuest(941)
	waitUntil("941 back and running", func() bool { g := l.fake.Guest(941); return g != nil && g.Running && g.Lock == "" })
	cancel()
	<-done
	inChain := func(id string) bool {
		return id == "941" || l.dependsOn("941", func(d string) bool { return d == id })
	}
	for _, r := range l.fake.Requests()[mark:] {
		seg := strings.Split(strings.Trim(r.Path, "/"), "/")
		if r.Method == "GET" && len(seg) >= 5 && seg[0] == "nodes" && seg[2] != "tasks" && !inChain(seg[3]) {
			t.Errorf("recreating 941 read %s, which 941 does not need", r.Path)
		}
	}
	if g := l.fake.Guest(941); g.Node != gone.Node {
		t.Errorf("941 came back on %s, was on %s", g.Node, gone.Node)
	}
}
