// Command pveschema-gen extracts, from Proxmox VE's API schema (pve-docs'
// api-viewer/apidata.js turned into {"METHOD /path": info}), the endpoints
// whose parameters pct and qm take, and writes them, trimmed of
// descriptions, to internal/pveschema/data/pve-<version>.json.
//
//	go run ./hack/pveschema-gen -in DIR -out internal/pveschema/data
//
// DIR holds pve-8-api.json and pve-9-api.json.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// endpoints are the API calls behind the pct and qm verbs phoenix runs:
// pct/qm create, set, clone, resize, snapshot and template take exactly
// these parameters.
var endpoints = []string{
	"POST /nodes/{node}/lxc",
	"PUT /nodes/{node}/lxc/{vmid}/config",
	"POST /nodes/{node}/lxc/{vmid}/clone",
	"PUT /nodes/{node}/lxc/{vmid}/resize",
	"POST /nodes/{node}/lxc/{vmid}/snapshot",
	"POST /nodes/{node}/lxc/{vmid}/template",
	"POST /nodes/{node}/qemu",
	"POST /nodes/{node}/qemu/{vmid}/config",
	"PUT /nodes/{node}/qemu/{vmid}/config",
	"POST /nodes/{node}/qemu/{vmid}/clone",
	"PUT /nodes/{node}/qemu/{vmid}/resize",
	"POST /nodes/{node}/qemu/{vmid}/snapshot",
	"POST /nodes/{node}/qemu/{vmid}/template",
}

// kept are the schema fields validation needs.
var kept = map[string]bool{
	"type": true, "format": true, "pattern": true, "enum": true, "minimum": true, "maximum": true,
	"maxLength": true, "minLength": true, "optional": true, "default_key": true, "alias": true,
	"keyAlias": true, "requires": true,
}

// maxIndex is the highest n of the indexed options whose description does
// not say "(n is 0 to N)": the MAX_* constants of pve-container's
// PVE/LXC/Config.pm and qemu-server's PVE/QemuServer.pm.
var maxIndex = map[string]int{
	"lxc net[n]": 31, "lxc mp[n]": 255, "lxc unused[n]": 255, "lxc dev[n]": 255,
	"qemu net[n]": 31, "qemu ipconfig[n]": 31, "qemu unused[n]": 255, "qemu hostpci[n]": 15,
	"qemu numa[n]": 7, "qemu virtiofs[n]": 9,
	// "n is 0 to 4, ..., n can be up to 14": the schema registers 0 to 13.
	"qemu usb[n]": 13,
}

var rangeRE = regexp.MustCompile(`\(n is 0 to (\d+)\)`)

func main() {
	in := flag.String("in", "", "folder with pve-8-api.json and pve-9-api.json")
	out := flag.String("out", "internal/pveschema/data", "output folder")
	flag.Parse()
	for _, v := range []string{"8", "9"} {
		if err := convert(filepath.Join(*in, "pve-"+v+"-api.json"), filepath.Join(*out, "pve-"+v+".json")); err != nil {
			fmt.Fprintln(os.Stderr, "pveschema-gen:", err)
			os.Exit(1)
		}
	}
}

func convert(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var all map[string]struct {
		Parameters struct {
			Properties map[string]map[string]any `json:"properties"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(data, &all); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	res := map[string]map[string]any{}
	for _, ep := range endpoints {
		info, ok := all[ep]
		if !ok {
			return fmt.Errorf("%s: no endpoint %q", src, ep)
		}
		kind := "lxc"
		if strings.Contains(ep, "/qemu") {
			kind = "qemu"
		}
		props := map[string]any{}
		for name, p := range info.Parameters.Properties {
			t := trim(p)
			if strings.HasSuffix(name, "[n]") {
				n, ok := maxIndex[kind+" "+name]
				if m := rangeRE.FindStringSubmatch(fmt.Sprint(p["description"])); m != nil {
					n, _ = strconv.Atoi(m[1])
					ok = true
				}
				if !ok {
					return fmt.Errorf("%s: %s %s: no index range", src, ep, name)
				}
				t["x-max-index"] = n
			}
			props[name] = t
		}
		res[ep] = props
	}
	out, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(dst, append(out, '\n'), 0o644)
}

// trim keeps the fields validation needs, in nested property-string
// formats too.
func trim(p map[string]any) map[string]any {
	t := map[string]any{}
	for k, v := range p {
		if !kept[k] {
			continue
		}
		if sub, ok := v.(map[string]any); ok && k == "format" {
			f := map[string]any{}
			for sk, sv := range sub {
				if m, ok := sv.(map[string]any); ok {
					f[sk] = trim(m)
				}
			}
			v = f
		}
		t[k] = v
	}
	return t
}
