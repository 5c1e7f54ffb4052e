package pveschema

import (
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed data/pve-8.json data/pve-9.json
var data embed.FS

// Version is a Proxmox VE major version whose schema is embedded.
type Version int

// The versions embedded.
const (
	PVE8 Version = 8
	PVE9 Version = 9
)

// Endpoints whose parameters the embedded schema holds: the API calls
// behind pct and qm create, set, clone, resize, snapshot and template.
const (
	LXCCreate     = "POST /nodes/{node}/lxc"
	LXCConfig     = "PUT /nodes/{node}/lxc/{vmid}/config"
	LXCClone      = "POST /nodes/{node}/lxc/{vmid}/clone"
	LXCResize     = "PUT /nodes/{node}/lxc/{vmid}/resize"
	LXCSnapshot   = "POST /nodes/{node}/lxc/{vmid}/snapshot"
	LXCTemplate   = "POST /nodes/{node}/lxc/{vmid}/template"
	VMCreate      = "POST /nodes/{node}/qemu"
	VMConfig      = "PUT /nodes/{node}/qemu/{vmid}/config"
	VMConfigAsync = "POST /nodes/{node}/qemu/{vmid}/config"
	VMClone       = "POST /nodes/{node}/qemu/{vmid}/clone"
	VMResize      = "PUT /nodes/{node}/qemu/{vmid}/resize"
	VMSnapshot    = "POST /nodes/{node}/qemu/{vmid}/snapshot"
	VMTemplate    = "POST /nodes/{node}/qemu/{vmid}/template"
)

// Schema is one Proxmox VE version's parameters of the embedded endpoints.
type Schema struct {
	Version   Version
	endpoints map[string]*Endpoint
}

var (
	loadMu sync.Mutex
	loaded = map[Version]*Schema{}
)

// Load returns the embedded schema of version v, parsed once per process.
func Load(v Version) (*Schema, error) {
	loadMu.Lock()
	defer loadMu.Unlock()
	if s := loaded[v]; s != nil {
		return s, nil
	}
	raw, err := data.ReadFile(fmt.Sprintf("data/pve-%d.json", v))
	if err != nil {
		return nil, fmt.Errorf("pveschema: no schema for Proxmox VE %d", v)
	}
	var eps map[string]map[string]*Prop
	if err := json.Unmarshal(raw, &eps); err != nil {
		return nil, fmt.Errorf("pveschema: PVE %d: %w", v, err)
	}
	s := &Schema{Version: v, endpoints: map[string]*Endpoint{}}
	for name, props := range eps {
		e := &Endpoint{Name: name, props: map[string]*Prop{}, indexed: map[string]*Prop{}}
		for k, p := range props {
			if err := p.compile(); err != nil {
				return nil, fmt.Errorf("pveschema: PVE %d %s %s: %w", v, name, k, err)
			}
			if base, ok := strings.CutSuffix(k, "[n]"); ok {
				e.indexed[base] = p
			} else {
				e.props[k] = p
			}
		}
		s.endpoints[name] = e
	}
	loaded[v] = s
	return s, nil
}

// MustLoad is Load for the versions known to be embedded.
func MustLoad(v Version) *Schema {
	s, err := Load(v)
	if err != nil {
		panic(err)
	}
	return s
}

// Endpoint returns the parameters of an endpoint such as LXCConfig.
func (s *Schema) Endpoint(name string) (*Endpoint, error) {
	if e := s.endpoints[name]; e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("pveschema: PVE %d has no endpoint %q", s.Version, name)
}

// Endpoint is the parameters of one API call.
type Endpoint struct {
	Name    string
	props   map[string]*Prop
	indexed map[string]*Prop // "net" for net[n]
}

// Lookup returns the parameter named name: a plain one (cores) or one of
// an indexed family (net0 of net[n], within its range).
func (e *Endpoint) Lookup(name string) (*Prop, bool) {
	if p, ok := e.props[name]; ok {
		return p, true
	}
	i := strings.IndexFunc(name, func(r rune) bool { return r >= '0' && r <= '9' })
	if i <= 0 {
		return nil, false
	}
	p, ok := e.indexed[name[:i]]
	if !ok {
		return nil, false
	}
	digits := name[i:]
	n, err := strconv.Atoi(digits)
	if err != nil || strconv.Itoa(n) != digits || n < 0 || p.MaxIndex == nil || n > *p.MaxIndex {
		return nil, false
	}
	return p, true
}

// Check verifies params as Proxmox does before it runs the call: every
// name must be a parameter of the endpoint, every value must pass its
// schema. The error is an *Error listing each bad parameter. Required
// parameters (vmid, node) are not asked for: pct and qm take them as
// arguments.
func (e *Endpoint) Check(params map[string]string) error {
	errs := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(params)) {
		p, ok := e.Lookup(k)
		if !ok {
			errs[k] = "property is not defined in schema and the schema does not allow additional properties"
			continue
		}
		p.check(k, params[k], errs)
	}
	if len(errs) > 0 {
		return &Error{Params: errs}
	}
	return nil
}

// CheckOption verifies one parameter; see Check.
func (e *Endpoint) CheckOption(name, value string) error {
	return e.Check(map[string]string{name: value})
}

// Error is a failed parameter verification: reasons by parameter (for
// keys inside a property string, "net0.bridge").
type Error struct {
	Params map[string]string
}

// Error prints the reasons as Proxmox does, sorted by parameter.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("400 Parameter verification failed.")
	for _, k := range slices.Sorted(maps.Keys(e.Params)) {
		b.WriteString("\n" + k + ": " + e.Params[k])
	}
	return b.String()
}

// Prop is one parameter's schema, or one key's of a property string.
type Prop struct {
	Type       string          `json:"type"`
	RawFormat  json.RawMessage `json:"format"`
	Pattern    string          `json:"pattern"`
	Enum       []string        `json:"enum"`
	Minimum    *number         `json:"minimum"`
	Maximum    *number         `json:"maximum"`
	MaxLength  *int            `json:"maxLength"`
	MinLength  *int            `json:"minLength"`
	Optional   number          `json:"optional"`
	DefaultKey number          `json:"default_key"`
	Alias      string          `json:"alias"`
	KeyAlias   string          `json:"keyAlias"`
	MaxIndex   *int            `json:"x-max-index"`

	// Format is a named format ("dns-name", "pve-configid-list"); Keys,
	// the keys of a property string.
	Format  string
	Keys    map[string]*Prop
	pattern *regexp.Regexp
}

// number reads a JSON number that Proxmox sometimes writes as a string.
type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return err
	}
	*n = number(f)
	return nil
}

// perlToRE2 rewrites the Perl regex syntax Proxmox's patterns use.
var perlToRE2 = strings.NewReplacer(`(?^:`, `(?:`, `{,`, `{0,`, `\0`, `\x00`)

func (p *Prop) compile() error {
	if len(p.RawFormat) > 0 {
		if p.RawFormat[0] == '"' {
			if err := json.Unmarshal(p.RawFormat, &p.Format); err != nil {
				return err
			}
		} else {
			if err := json.Unmarshal(p.RawFormat, &p.Keys); err != nil {
				return err
			}
			for k, sub := range p.Keys {
				if err := sub.compile(); err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
			}
		}
	}
	if p.Pattern != "" {
		re, err := regexp.Compile(`^(?:` + perlToRE2.Replace(p.Pattern) + `)$`)
		if err != nil {
			return fmt.Errorf("pattern %q: %w", p.Pattern, err)
		}
		p.pattern = re
	}
	return nil
}
