package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/pvestorage"
	"github.com/phoenix-hypervisor/phoenix/reconcilers"
)

// Doctor results.
const (
	checkPass = "pass"
	checkFail = "fail"
	checkSkip = "skip" // does not apply to this backend; not a failure
)

// checkRow is one line of phoenix doctor's table.
type checkRow struct {
	Check  string `json:"check"`
	Target string `json:"target"`
	Result string `json:"result"`
	Hint   string `json:"hint,omitempty"`
}

type doctorDoc struct {
	Verb    string     `json:"verb"`
	Backend string     `json:"backend"`
	OK      bool       `json:"ok"`
	Checks  []checkRow `json:"checks"`
}

// doctorEnv is what doctor looks at on a Proxmox host; tests point it at
// folders of their own.
type doctorEnv struct {
	storageCfg string // /etc/pve/storage.cfg
	sysNet     string // /sys/class/net
	lookPath   func(string) (string, error)
}

func (a *app) doctorCommand() *cobra.Command {
	env := doctorEnv{lookPath: exec.LookPath}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check, changing nothing, that this host can run the plan: tools, storage, bridges, templates, scripts",
		Long: `doctor checks a host before anything is changed and prints a table of
check, target, result and hint; it exits 0 when every check passes and 1
otherwise. On the pve backend: pct and qm present and the Proxmox VE
version; each storage_pool exists and supports what the guests need
(rootdir or images, snapshots and linked clones for clone sources and their
clones); each bridge exists; the ostemplates and cloud images exist; the
scripts tree is complete and safe; VMs with features have the guest agent
enabled. On the pve-api backend the same through the API, on the node each
guest goes to (its node field, its clone source's node, or
--pve-default-node), and the token's privileges on each guest, storage and
bridge (GET /access/permissions). On the sim only what applies (scripts,
agent). -o json gives the same as a document.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig("doctor")
			if err != nil {
				return err
			}
			backend := a.opts.backendName()
			rows := a.doctor(cmd.Context(), cfg, backend, env)
			doc := doctorDoc{Verb: "doctor", Backend: backend, OK: true, Checks: rows}
			for _, r := range rows {
				if r.Result == checkFail {
					doc.OK = false
				}
			}
			if a.opts.Output == "json" {
				if err := a.writeJSON(doc); err != nil {
					return err
				}
			} else {
				writeDoctorTable(a.stdout, rows)
			}
			if !doc.OK {
				return errFailedQuiet
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&env.storageCfg, "pve-storage-cfg", "/etc/pve/storage.cfg", "pve: the storage definitions")
	f.StringVar(&env.sysNet, "sys-class-net", "/sys/class/net", "pve: where the network devices are listed")
	for _, n := range []string{"pve-storage-cfg", "sys-class-net"} {
		_ = f.MarkHidden(n) // for tests; real hosts use the defaults
	}
	return cmd
}

// errFailedQuiet exits 1 without a message: the table said it all.
var errFailedQuiet = &exitError{code: ExitFailed, err: errors.New("doctor: some checks failed")}

func writeDoctorTable(w io.Writer, rows []checkRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tTARGET\tRESULT\tHINT")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Check, r.Target, r.Result, r.Hint)
	}
	tw.Flush()
}

func (a *app) doctor(ctx context.Context, cfg *api.Config, backend string, env doctorEnv) []checkRow {
	var rows []checkRow
	add := func(check, target, result, hint string) {
		rows = append(rows, checkRow{check, target, result, hint})
	}
	switch backend {
	case "pve":
		rows = append(rows, doctorTools(ctx, env)...)
		rows = append(rows, doctorStorage(cfg, env)...)
		rows = append(rows, doctorBridges(cfg, env)...)
		rows = append(rows, doctorImages(cfg, env)...)
	case "pve-api":
		rows = append(rows, a.doctorAPI(ctx, cfg)...)
	default:
		add("backend", backend, checkSkip, "simulated host: tools, storage, bridges and templates do not apply")
	}
	rows = append(rows, doctorScripts(a.opts.scripts(), cfg)...)
	rows = append(rows, doctorAgent(cfg)...)
	return rows
}

// apiDoctor is the pve-api backend's side of doctor: it reads the cluster
// through the API.
type apiDoctor interface {
	Doctor(ctx context.Context, cfg *api.Config) []pveapi.Finding
}

func (a *app) doctorAPI(ctx context.Context, cfg *api.Config) []checkRow {
	h, err := newPVEAPI(&a.opts, a.stderr)
	if err != nil {
		return []checkRow{{"pve-api", a.opts.pveAPI.opts.URL, checkFail, err.Error()}}
	}
	if c, ok := h.(io.Closer); ok {
		defer c.Close()
	}
	d, ok := h.(apiDoctor)
	if !ok {
		return []checkRow{{"pve-api", a.opts.pveAPI.opts.URL, checkSkip, "this backend has no checks"}}
	}
	var rows []checkRow
	for _, f := range d.Doctor(ctx, cfg) {
		res := checkPass
		if !f.OK {
			res = checkFail
		}
		rows = append(rows, checkRow{f.Check, f.Target, res, f.Hint})
	}
	return rows
}

func doctorTools(ctx context.Context, env doctorEnv) []checkRow {
	var rows []checkRow
	for _, tool := range []string{"pct", "qm"} {
		if p, err := env.lookPath(tool); err != nil {
			rows = append(rows, checkRow{"tool", tool, checkFail, "not on PATH: phoenix --backend pve runs on a Proxmox VE node"})
		} else {
			rows = append(rows, checkRow{"tool", tool, checkPass, p})
		}
	}
	p, err := env.lookPath("pveversion")
	if err != nil {
		return append(rows, checkRow{"pve-version", "pveversion", checkFail, "not on PATH (package pve-manager)"})
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, p).Output()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	// pve-manager/8.2.4/faa83925c9641325 (running kernel: ...)
	ver, _, _ := strings.Cut(strings.TrimPrefix(line, "pve-manager/"), "/")
	switch {
	case err != nil:
		rows = append(rows, checkRow{"pve-version", "pveversion", checkFail, err.Error()})
	case strings.HasPrefix(ver, "8.") || strings.HasPrefix(ver, "9."):
		rows = append(rows, checkRow{"pve-version", ver, checkPass, ""})
	default:
		rows = append(rows, checkRow{"pve-version", line, checkFail, "phoenix is tested on Proxmox VE 8 and 9"})
	}
	return rows
}

// storageDef is one entry of storage.cfg.
type storageDef struct {
	typ     string
	content []string
	path    string
}

// parseStorageCfg reads /etc/pve/storage.cfg: "type: id" lines, each
// followed by indented "key value" lines.
func parseStorageCfg(data []byte) map[string]*storageDef {
	out := map[string]*storageDef{}
	var cur *storageDef
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			typ, id, ok := strings.Cut(line, ":")
			if !ok {
				cur = nil
				continue
			}
			cur = &storageDef{typ: strings.TrimSpace(typ)}
			out[strings.TrimSpace(id)] = cur
			continue
		}
		if cur == nil {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch k {
		case "content":
			cur.content = strings.Split(strings.TrimSpace(v), ",")
		case "path":
			cur.path = strings.TrimSpace(v)
		}
	}
	return out
}

func doctorStorage(cfg *api.Config, env doctorEnv) []checkRow {
	data, err := os.ReadFile(env.storageCfg)
	if err != nil {
		return []checkRow{{"storage", env.storageCfg, checkFail, err.Error()}}
	}
	defs := parseStorageCfg(data)
	type need struct {
		content map[string]bool
		snaps   map[api.Kind][]string // guests needing snapshots or linked clones, by kind
		guests  []string
	}
	needs := map[string]*need{}
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		pool := g.Spec.StoragePool
		if pool == "" {
			continue
		}
		n := needs[pool]
		if n == nil {
			n = &need{content: map[string]bool{}, snaps: map[api.Kind][]string{}}
			needs[pool] = n
		}
		n.guests = append(n.guests, id.String())
		if g.Kind == api.KindLXC {
			n.content["rootdir"] = true
		} else {
			n.content["images"] = true
		}
		if g.Spec.TemplateSnapshotName != "" || g.CloneSource() != 0 || g.Spec.EnableLifecycleSnapshots || g.Spec.IsTemplate {
			n.snaps[g.Kind] = append(n.snaps[g.Kind], id.String())
		}
	}
	var rows []checkRow
	pools := make([]string, 0, len(needs))
	for p := range needs {
		pools = append(pools, p)
	}
	sort.Strings(pools)
	for _, p := range pools {
		n := needs[p]
		d := defs[p]
		who := "guests " + strings.Join(n.guests, ", ")
		if d == nil {
			rows = append(rows, checkRow{"storage", p, checkFail, "not in " + env.storageCfg + " (" + who + ")"})
			continue
		}
		var missing []string
		for c := range n.content {
			if !slices.Contains(d.content, c) {
				missing = append(missing, c)
			}
		}
		sort.Strings(missing)
		switch {
		case len(missing) > 0:
			rows = append(rows, checkRow{"storage", p, checkFail, fmt.Sprintf("content lacks %s (pvesm set %s --content %s)", strings.Join(missing, ","), p, strings.Join(append(d.content, missing...), ","))})
		case lacksSnapshots(d.typ, n.snaps) != "":
			rows = append(rows, checkRow{"storage", p, checkFail, lacksSnapshots(d.typ, n.snaps)})
		default:
			rows = append(rows, checkRow{"storage", p, checkPass, d.typ})
		}
	}
	return rows
}

// lacksSnapshots says which guests need snapshots or linked clones that
// storage type typ cannot give them (pvestorage's table, which the
// backends plan with), or "".
func lacksSnapshots(typ string, guests map[api.Kind][]string) string {
	for _, k := range []api.Kind{api.KindLXC, api.KindVM} {
		if len(guests[k]) > 0 && (!pvestorage.Supports(typ, k, pvestorage.Snapshot) || !pvestorage.Supports(typ, k, pvestorage.LinkedClone)) {
			return fmt.Sprintf("type %s has no snapshots or linked clones for %s volumes, which template snapshots and clones need (guests %s)",
				typ, k, strings.Join(guests[k], ", "))
		}
	}
	return ""
}

func doctorBridges(cfg *api.Config, env doctorEnv) []checkRow {
	bridges := map[string]bool{}
	for _, id := range cfg.IDs {
		s := cfg.Guest(id).Spec
		if s.NetworkBridge != "" {
			bridges[s.NetworkBridge] = true
		}
		if s.NetworkConfig != nil && s.NetworkConfig.Bridge != "" {
			bridges[s.NetworkConfig.Bridge] = true
		}
	}
	var rows []checkRow
	for _, b := range slices.Sorted(maps.Keys(bridges)) {
		if !filepath.IsLocal(b) {
			rows = append(rows, checkRow{"bridge", b, checkFail, "not a device name"})
			continue
		}
		if st, err := os.Stat(filepath.Join(env.sysNet, b, "bridge")); err == nil && st.IsDir() {
			rows = append(rows, checkRow{"bridge", b, checkPass, ""})
		} else {
			rows = append(rows, checkRow{"bridge", b, checkFail, "no such bridge (/etc/network/interfaces, then ifreload -a)"})
		}
	}
	return rows
}

// doctorImages checks the ostemplates (an absolute path, or
// storage:vztmpl/file on a storage with a path) and the cloud images
// (relative to the config folder) that guests are created from.
func doctorImages(cfg *api.Config, env doctorEnv) []checkRow {
	data, _ := os.ReadFile(env.storageCfg)
	defs := parseStorageCfg(data)
	seen := map[string]bool{}
	var rows []checkRow
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		if g.CloneSource() != 0 {
			continue
		}
		var src, path, what string
		switch {
		case g.Kind == api.KindLXC && g.Spec.Template != "":
			src, what = g.Spec.Template, "ostemplate"
			if filepath.IsAbs(src) {
				path = src
			} else if store, vol, ok := strings.Cut(src, ":"); ok && strings.HasPrefix(vol, "vztmpl/") {
				if d := defs[store]; d != nil && d.path != "" {
					path = filepath.Join(d.path, "template", "cache", strings.TrimPrefix(vol, "vztmpl/"))
				}
			}
		case g.Kind == api.KindVM && g.Spec.TemplateImage != "":
			src, what = g.Spec.TemplateImage, "cloud-image"
			path = src
			if !filepath.IsAbs(path) {
				path = filepath.Join(cfg.Dir, path)
			}
		default:
			continue
		}
		if seen[src] {
			continue
		}
		seen[src] = true
		switch {
		case path == "":
			rows = append(rows, checkRow{what, src, checkFail, "cannot tell where this volume is (want an absolute path or storage:vztmpl/file on a storage with a path)"})
		default:
			if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
				rows = append(rows, checkRow{what, src, checkFail, "no file " + path + " (guest " + id.String() + ")"})
			} else {
				rows = append(rows, checkRow{what, src, checkPass, ""})
			}
		}
	}
	return rows
}

func doctorScripts(sc reconcilers.Scripts, cfg *api.Config) []checkRow {
	if sc.Dir == "" {
		return []checkRow{{"scripts", "(none)", checkSkip, "no scripts folder: --scripts-dir, or <base>/bin next to --config-dir <base>/etc"}}
	}
	layout := "phoenix layout"
	if sc.Legacy {
		layout = "old tool's layout"
	}
	var rows []checkRow
	if st, err := os.Stat(sc.Dir); err != nil {
		return []checkRow{{"scripts", sc.Dir, checkFail, err.Error()}}
	} else if st.Mode().Perm()&0o022 != 0 {
		rows = append(rows, checkRow{"scripts", sc.Dir, checkFail, "writable by group or others: chmod go-w " + sc.Dir})
	}
	bad := 0
	for _, id := range cfg.IDs {
		for _, err := range sc.Needed(cfg, cfg.Guest(id)) {
			rows = append(rows, checkRow{"scripts", string(cfg.Guest(id).Kind) + " " + id.String(), checkFail, err.Error()})
			bad++
		}
	}
	if bad == 0 && len(rows) == 0 {
		rows = append(rows, checkRow{"scripts", sc.Dir, checkPass, layout + ", every script the guests name is there"})
	}
	return rows
}

// doctorAgent: a VM's features run through the guest agent, which phoenix
// turns on (agent: 1); the cloud image must have qemu-guest-agent.
func doctorAgent(cfg *api.Config) []checkRow {
	var rows []checkRow
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		if g.Kind != api.KindVM || (len(g.Spec.Features) == 0 && !hasNFS(g)) {
			continue
		}
		if v := reconcilers.VMConfig(g)["agent"]; strings.HasPrefix(v, "1") || strings.Contains(v, "enabled=1") {
			rows = append(rows, checkRow{"vm-agent", "vm " + id.String(), checkPass, "agent: 1; the image needs qemu-guest-agent installed"})
		} else {
			rows = append(rows, checkRow{"vm-agent", "vm " + id.String(), checkFail, "features and nfs mounts run through the guest agent"})
		}
	}
	return rows
}

func hasNFS(g *api.Guest) bool {
	for _, v := range g.Spec.Volumes {
		if v.Type == "nfs" {
			return true
		}
	}
	return false
}
