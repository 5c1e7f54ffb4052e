package desired

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
)

// Load reads the desired state from dir and validates it. It returns an
// *InvalidError listing every problem found when the files are not valid;
// the returned Config is then nil.
//
// The LXC and VM files are found by their standard names in dir, unless
// phoenix_hypervisor_config.json names them in core_paths and the file it
// names exists: the reference lab's core_paths point at the old tool's
// absolute install paths, which must not stop the same files from loading
// from another folder.
func Load(dir string) (*api.Config, error) { return load(context.Background(), dir, nil) }

// LoadContext is Load that stops reading when ctx ends (a signal).
func LoadContext(ctx context.Context, dir string) (*api.Config, error) { return load(ctx, dir, nil) }

func load(ctx context.Context, dir string, cache *Loader) (*api.Config, error) {
	var ps problems
	c := &loading{Config: &api.Config{Dir: dir, Guests: map[api.ID]*api.Guest{}}, cache: cache, ctx: ctx}
	if cache != nil {
		c.used = make(map[[32]byte]*cached, len(cache.prev))
		c.usedFiles = map[string]*fileMemo{}
		cache.hits, cache.misses = 0, 0
		defer func() {
			cache.prev, cache.files = c.used, c.usedFiles
			c.cache, c.used, c.usedFiles = nil, nil, nil
		}()
	}

	lxcPath := filepath.Join(dir, api.LXCFile)
	vmPath := filepath.Join(dir, api.VMFile)
	hvPath := filepath.Join(dir, api.HypervisorFile)
	if data, err := c.read(hvPath); err == nil {
		c.HypervisorPath = hvPath
		if top, ok := parseFile(&ps, hvPath, data); ok {
			c.Hypervisor = top
			validateDoc(&ps, hvPath, schemaHypervisor, data)
			lxcPath = corePath(c.Hypervisor, hvPath, "lxc_config_file", lxcPath)
			vmPath = corePath(c.Hypervisor, hvPath, "vm_config_file", vmPath)
		}
	} else if ctx.Err() != nil {
		return nil, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		ps.add(hvPath, "", "", "read: %v", err)
	}

	stacksPath := filepath.Join(dir, api.StacksFile)
	if data, err := os.ReadFile(stacksPath); err == nil {
		if top, ok := parseFile(&ps, stacksPath, data); ok {
			c.StacksPath, c.Stacks = stacksPath, top
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		ps.add(stacksPath, "", "", "read: %v", err)
	}

	files := 0
	files += c.loadLXC(&ps, lxcPath)
	files += c.loadVM(&ps, vmPath)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	if files == 0 && len(ps) == 0 {
		ps.add(dir, "", "", "no %s or %s in this folder (set --config-dir or PHOENIX_CONFIG_DIR)", api.LXCFile, api.VMFile)
	}
	c.index()
	validateGuests(&ps, c)
	errs, warns := ps.split()
	if len(errs) > 0 {
		return nil, &api.InvalidError{Problems: errs, Warnings: warns}
	}
	c.Warnings = warns
	return c.Config, nil
}

func corePath(hv map[string]json.RawMessage, hvPath, key, def string) string {
	var paths map[string]any
	if err := json.Unmarshal(hv["core_paths"], &paths); err != nil {
		return def
	}
	p, _ := paths[key].(string)
	if p == "" {
		return def
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(hvPath), p)
	}
	if _, err := os.Stat(p); err != nil {
		return def
	}
	return p
}

// parseFile checks that data is one UTF-8 JSON object and returns its
// top-level members. It reports problems itself and returns false on failure.
func parseFile(ps *problems, path string, data []byte) (map[string]json.RawMessage, bool) {
	if msg := encodingProblem(data); msg != "" {
		ps.add(path, "", "", "%s", msg)
		return nil, false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		ps.add(path, "", "", "file is empty; want a JSON object")
		return nil, false
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		line, col := position(data, off)
		ps.add(path, "", "", "invalid UTF-8 at line %d, column %d (byte %d)", line, col, off)
		return nil, false
	}
	if !json.Valid(data) {
		// The slow path, only to say where the file is broken.
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		err := dec.Decode(&v)
		if err == nil {
			// One whole value, then something that is not: `""}`.
			line, col := position(data, int(dec.InputOffset()))
			ps.add(path, "", "", "unexpected data after the JSON value at line %d, column %d", line, col)
			return nil, false
		}
		ps.add(path, "", "", "%s", jsonErr(data, err))
		return nil, false
	}
	trimmed := bytes.TrimSpace(data)
	if trimmed[0] != '{' {
		ps.add(path, "", "", "top level: want a JSON object, got %s", rawType(trimmed))
		return nil, false
	}
	entries, dups := objectEntries(trimmed)
	for _, k := range dups {
		ps.add(path, "", k, "key %q is given twice at the top level; keep one", k)
	}
	top := make(map[string]json.RawMessage, len(entries))
	for _, e := range entries {
		top[e.key] = e.raw
		// The guests are checked one by one as they are loaded (and
		// remembered by a Loader); everything else is checked here.
		switch e.key {
		case "lxc_configs", "vms":
			continue
		case "vm_defaults":
			exactGuest(ps, path, "vm_defaults", e.raw)
			continue
		}
		at := fieldPath{{key: e.key}}
		scanValue(ps, path, "", &at, e.raw)
	}
	return top, true
}

func jsonErr(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, int(se.Offset))
		return fmt.Sprintf("malformed JSON at line %d, column %d: %v", line, col, se)
	}
	return "malformed JSON: " + err.Error()
}

func position(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line = 1 + bytes.Count(data[:off], []byte{'\n'})
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

func rawType(raw []byte) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// SpecHash identifies a guest's effective spec. Annotations are left out, so
// a converge request alone is not a spec change; the order of top-level keys
// and white space do not count. It works on the bytes (split, sort,
// compact) rather than decoding and encoding, which at 10,000 guests was a
// third of the cost of loading.
func SpecHash(raw json.RawMessage) string { return specHash(raw, nil) }

// specHash is SpecHash of raw, whose members, when entries is not nil,
// are entries (from a check that listed them already); it sorts entries.
func specHash(raw json.RawMessage, entries []entry) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		sum := sha256.Sum256(raw)
		return hex.EncodeToString(sum[:8])
	}
	if entries == nil {
		entries, _ = objectEntries(raw)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	h := sha256.New()
	buf := make([]byte, 0, len(raw)+64)
	for _, e := range entries {
		if e.key == "annotations" {
			continue
		}
		buf = appendQuote(buf, e.key) // as fmt's %q
		buf = append(buf, ':')
		// As json.Compact: the white space between tokens goes.
		buf = appendCompact(buf, e.raw)
		buf = append(buf, ',')
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// appendQuote is strconv.AppendQuote, without its per-rune work for a
// key of printable ASCII other than a quote or a backslash, which it
// writes as it is (every field name).
func appendQuote(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return strconv.AppendQuote(dst, s)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendCompact appends valid JSON src to dst without the white space
// between tokens: what json.Compact does, without its validating scanner
// (the values come from a file that passed json.Valid).
func appendCompact(dst, src []byte) []byte {
	inString, escaped := false, false
	start := 0
	for i, c := range src {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

// read reads one config file: a regular file of at most
// fsutil.MaxConfigSize bytes, so that a FIFO, a device or an endless file
// is an error at once rather than a hang.
func (c *loading) read(path string) ([]byte, error) {
	return fsutil.ReadRegular(c.ctx, path, fsutil.MaxConfigSize)
}

// Strict turns the warnings of a loaded config into an *api.InvalidError,
// for validate --strict and controller --strict; nil when there are none.
func Strict(cfg *api.Config) error {
	if len(cfg.Warnings) == 0 {
		return nil
	}
	ps := make([]api.Problem, len(cfg.Warnings))
	for i, w := range cfg.Warnings {
		w.Warning = false
		w.Msg += " (an error under --strict)"
		ps[i] = w
	}
	return &api.InvalidError{Problems: ps}
}
