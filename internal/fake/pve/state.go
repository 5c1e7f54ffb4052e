package pve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
)

// guest is one guest's state file.
type guest struct {
	ID      int               `json:"id"`
	Kind    string            `json:"kind"` // "lxc" or "vm"
	Running bool              `json:"running"`
	Config  map[string]string `json:"config"`
	// Raw holds the container's lxc.* lines in file order; the config file
	// is their truth, this a copy.
	Raw       []rawLine  `json:"raw,omitempty"`
	Snapshots []snapshot `json:"snapshots,omitempty"`
	// Volumes are the disks allocated for the guest, with their size in bytes.
	Volumes map[string]int64 `json:"volumes,omitempty"`
	// NextDisk numbers the next volume: vm-<id>-disk-<n>.
	NextDisk int `json:"next_disk"`
	// Files are the files pushed into the guest, by path.
	Files map[string]string `json:"files,omitempty"`
	// Execs are the commands run inside the guest, in order.
	Execs [][]string `json:"execs,omitempty"`
	// StartedAt is when the guest was last started (Unix nanoseconds):
	// its guest agent answers FAKEPVE_AGENT_DELAY later.
	StartedAt int64 `json:"started_at,omitempty"`
}

type rawLine struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type snapshot struct {
	Name   string            `json:"name"`
	Time   int64             `json:"time"`
	Config map[string]string `json:"config"`
	Raw    []rawLine         `json:"raw,omitempty"`
}

// fake is one invocation with its locks.
type fake struct {
	*config
	stateLock  *os.File
	guestLocks map[int]*os.File
}

func (f *fake) kind() string {
	if f.tool == "pct" {
		return "lxc"
	}
	return "vm"
}

// typ is how messages name the tool's guests.
func (f *fake) typ() string {
	if f.tool == "pct" {
		return "CT"
	}
	return "VM"
}

func typOf(kind string) string {
	if kind == "lxc" {
		return "CT"
	}
	return "VM"
}

// lockState takes the flock that serialises invocations.
func (f *fake) lockState() error {
	if f.stateLock != nil {
		return nil
	}
	l, err := flock(filepath.Join(f.state, ".lock"))
	if err != nil {
		return fmt.Errorf("fakepve: %w", err)
	}
	f.stateLock = l
	return nil
}

// lockGuest takes the container config lock pct takes, which
// internal/hypervisor/pve takes too while it edits lxc.* lines.
func (f *fake) lockGuest(id int) error {
	if f.guestLocks == nil {
		f.guestLocks = map[int]*os.File{}
	}
	if f.guestLocks[id] != nil {
		return nil
	}
	l, err := flock(filepath.Join(f.lockDir, "pve-config-"+strconv.Itoa(id)+".lock"))
	if err != nil {
		return fmt.Errorf("fakepve: %w", err)
	}
	f.guestLocks[id] = l
	return nil
}

// releaseAll drops every lock, as the end of the process would.
func (f *fake) releaseAll() {
	for id, l := range f.guestLocks {
		l.Close()
		delete(f.guestLocks, id)
	}
	if f.stateLock != nil {
		f.stateLock.Close()
		f.stateLock = nil
	}
}

func (f *fake) guestPath(id int) string {
	return filepath.Join(f.state, "guests", strconv.Itoa(id)+".json")
}

// confPath is where Proxmox keeps a guest's config: <pve-etc>/lxc or
// <pve-etc>/qemu-server.
func (f *fake) confPath(kind string, id int) string {
	if kind == "vm" {
		return filepath.Join(f.qemuDir, strconv.Itoa(id)+".conf")
	}
	return filepath.Join(f.confDir, strconv.Itoa(id)+".conf")
}

// load reads a guest of any kind; nil when there is none.
func (f *fake) load(id int) (*guest, error) {
	if err := f.lockGuest(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(f.guestPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fakepve: %w", err)
	}
	g := &guest{}
	if err := json.Unmarshal(data, g); err != nil {
		return nil, fmt.Errorf("fakepve: %s: %w", f.guestPath(id), err)
	}
	if g.Kind == "lxc" {
		conf, err := os.ReadFile(f.confPath("lxc", id))
		switch {
		case err == nil:
			g.Raw = parseRaw(conf)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("fakepve: %w", err)
		}
	}
	return g, nil
}

// get loads a guest of the tool's kind, failing as pct/qm do when there is
// none (also when the ID is the other kind's).
func (f *fake) get(arg string) (*guest, error) {
	id, err := parseID(arg)
	if err != nil {
		return nil, err
	}
	g, err := f.load(id)
	if err != nil {
		return nil, err
	}
	if g == nil || g.Kind != f.kind() {
		dir := "lxc"
		if f.tool == "qm" {
			dir = "qemu-server"
		}
		return nil, fail("Configuration file 'nodes/%s/%s/%d.conf' does not exist", f.node, dir, id)
	}
	return g, nil
}

// save writes the guest's state file and, for a container, its config file.
func (f *fake) save(g *guest) error {
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(f.guestPath(g.ID), data); err != nil {
		return err
	}
	return writeFile(f.confPath(g.Kind, g.ID), renderConf(g))
}

func (f *fake) remove(g *guest) error {
	for _, p := range []string{f.guestPath(g.ID), f.confPath(g.Kind, g.ID)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// all loads every guest, for checks across guests (linked clones).
func (f *fake) all() ([]*guest, error) {
	entries, err := os.ReadDir(filepath.Join(f.state, "guests"))
	if err != nil {
		return nil, err
	}
	var gs []*guest
	for _, e := range entries {
		id, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".json"))
		if err != nil || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		g, err := f.load(id)
		if err != nil {
			return nil, err
		}
		if g != nil {
			gs = append(gs, g)
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].ID < gs[j].ID })
	return gs, nil
}

func writeFile(path string, data []byte) error {
	if err := fsutil.WriteFileNoSync(path, data, 0o644); err != nil {
		return fmt.Errorf("fakepve: %w", err)
	}
	return nil
}

// mainConfig is the current config as pct/qm config print it: keys sorted,
// parent when there are snapshots, then the raw lxc.* lines.
func mainConfig(g *guest) []string {
	cfg := maps.Clone(g.Config)
	if n := len(g.Snapshots); n > 0 {
		cfg["parent"] = g.Snapshots[n-1].Name
	}
	return configLines(cfg, g.Raw)
}

func configLines(cfg map[string]string, raw []rawLine) []string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		if strings.Contains(cfg[k], "\n") {
			// Only the description may span lines; pct config prints it
			// as one.
			lines = append(lines, k+": "+strings.ReplaceAll(cfg[k], "\n", " "))
			continue
		}
		lines = append(lines, k+": "+cfg[k])
	}
	for _, r := range raw {
		lines = append(lines, r.Key+": "+r.Value)
	}
	return lines
}

// renderConf writes a guest config as Proxmox stores it
// (PVE::LXC::Config::write_pct_config, PVE::QemuServer::write_vm_config):
// the description as '#' comment lines, the other keys sorted, raw lxc.*
// lines last; then one [section] per snapshot, sorted by name, each with
// its parent and snaptime.
func renderConf(g *guest) []byte {
	var b strings.Builder
	cfg := maps.Clone(g.Config)
	if n := len(g.Snapshots); n > 0 {
		cfg["parent"] = g.Snapshots[n-1].Name
	}
	writeSection(&b, cfg, g.Raw)
	snaps := slices.Clone(g.Snapshots)
	parents := map[string]string{}
	for i, s := range g.Snapshots {
		if i > 0 {
			parents[s.Name] = g.Snapshots[i-1].Name
		}
	}
	slices.SortFunc(snaps, func(a, b snapshot) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range snaps {
		cfg := maps.Clone(s.Config)
		if p := parents[s.Name]; p != "" {
			cfg["parent"] = p
		}
		cfg["snaptime"] = strconv.FormatInt(s.Time, 10)
		fmt.Fprintf(&b, "\n[%s]\n", s.Name)
		writeSection(&b, cfg, s.Raw)
	}
	return []byte(b.String())
}

func writeSection(b *strings.Builder, cfg map[string]string, raw []rawLine) {
	if d := cfg["description"]; d != "" {
		for l := range strings.SplitSeq(d, "\n") {
			b.WriteString("#" + encodeText(l) + "\n")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		if k != "description" {
			b.WriteString(k + ": " + cfg[k] + "\n")
		}
	}
	for _, r := range raw {
		b.WriteString(r.Key + ": " + r.Value + "\n")
	}
}

// encodeText is PVE::Tools::encode_text: control and high-bit bytes, and
// ':', percent-encoded.
func encodeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != ':' && c != '%' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// parseRaw reads the lxc.* lines of a config file's current config.
func parseRaw(conf []byte) []rawLine {
	var raw []rawLine
	for line := range strings.Lines(string(conf)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.HasPrefix(k, "lxc.") {
			raw = append(raw, rawLine{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return raw
}

func now() int64 { return time.Now().Unix() }

// firewallPath is the guest's firewall file, <pve-etc>/firewall/<id>.fw.
func (f *fake) firewallPath(id int) string {
	return filepath.Join(f.pveEtc, "firewall", strconv.Itoa(id)+".fw")
}

// copyFirewall copies src's firewall file to dst, if src has one.
func (f *fake) copyFirewall(src, dst int) error {
	data, err := os.ReadFile(f.firewallPath(src))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(f.firewallPath(dst), data, 0o640)
}
