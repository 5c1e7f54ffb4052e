package fakepveapi

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/pveschema"
	"github.com/phoenix-hypervisor/phoenix/internal/pvestorage"
)

// schemaEndpoint names the schema of the requests whose parameters
// Proxmox verifies before it does anything: create, config, clone,
// resize, snapshot and template. op is "METHOD rest" below the guest.
func schemaEndpoint(typ, op string) string {
	lxc := typ == "lxc"
	pick := func(l, q string) string {
		if lxc {
			return l
		}
		return q
	}
	switch op {
	case "POST ":
		return pick(pveschema.LXCCreate, pveschema.VMCreate)
	case "PUT config":
		return pick(pveschema.LXCConfig, pveschema.VMConfig)
	case "POST config":
		if lxc {
			return ""
		}
		return pveschema.VMConfigAsync
	case "POST clone":
		return pick(pveschema.LXCClone, pveschema.VMClone)
	case "PUT resize":
		return pick(pveschema.LXCResize, pveschema.VMResize)
	case "POST snapshot":
		return pick(pveschema.LXCSnapshot, pveschema.VMSnapshot)
	case "POST template":
		return pick(pveschema.LXCTemplate, pveschema.VMTemplate)
	}
	return ""
}

// checkSchema verifies a request's parameters, with the path's node and
// vmid, against the schema of the PVE version the cluster plays, and
// answers as Proxmox's RESTHandler does: 400 "Parameter verification
// failed." with the reason per parameter.
func (c *Cluster) checkSchema(endpoint, node, vmid string, p params) *apiError {
	if endpoint == "" {
		return nil
	}
	ep, err := pveschema.MustLoad(c.opts.Version).Endpoint(endpoint)
	if err != nil {
		return errf(http.StatusNotImplemented, "%v", err)
	}
	all := map[string]string{"node": node}
	if vmid != "" {
		all["vmid"] = vmid
	}
	for k, v := range p.s {
		all[k] = v
	}
	var verr *pveschema.Error
	if err := ep.Check(all); errors.As(err, &verr) {
		return &apiError{status: http.StatusBadRequest, msg: "Parameter verification failed.", fields: verr.Params}
	}
	return nil
}

// apiKind is the api.Kind of a Proxmox guest type.
func apiKind(typ string) api.Kind {
	if typ == "lxc" {
		return api.KindLXC
	}
	return api.KindVM
}

// volumes are the config keys holding a volume on a storage, with their
// storage: no bind mounts, device paths, CD-ROMs or "none".
func volumes(cfg map[string]string) [][2]string {
	var out [][2]string
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		v := cfg[k]
		if !diskKeyRE.MatchString(k) || strings.Contains(v, "media=cdrom") {
			continue
		}
		vol, _, _ := strings.Cut(v, ",")
		storage, _, ok := strings.Cut(vol, ":")
		if !ok || strings.HasPrefix(vol, "/") {
			continue
		}
		out = append(out, [2]string{k, storage})
	}
	return out
}

// lacks returns the first volume of cfg whose storage cannot do feat, as
// pve-storage's volume_has_feature would answer.
func (c *Cluster) lacks(typ string, cfg map[string]string, feat pvestorage.Feature) (key, storage string, ok bool) {
	for _, v := range volumes(cfg) {
		st, known := c.opts.Storages[v[1]]
		if known && !pvestorage.Supports(st, apiKind(typ), feat) {
			return v[0], v[1], true
		}
	}
	return "", "", false
}

// storageList is GET /storage and /nodes/{node}/storage: every storage
// with its type; shared ones are those not in LocalStorages.
func (c *Cluster) storageList(node string) []map[string]any {
	out := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(c.opts.Storages)) {
		e := map[string]any{"storage": id, "type": c.opts.Storages[id], "content": c.contentOf(id),
			"shared": b2i(!slices.Contains(c.opts.LocalStorages, id))}
		if !c.may("/storage/"+id, "Datastore.Audit", "Datastore.AllocateSpace") {
			continue // Proxmox lists only the storages the token may see
		}
		if node != "" {
			e["active"], e["enabled"] = 1, 1
		}
		out = append(out, e)
	}
	return out
}

// snapshotConfig is GET .../snapshot/{name}/config.
func (c *Cluster) snapshotConfig(g *Guest, name string) (any, *apiError) {
	for _, s := range g.Snapshots {
		if s.Name == name {
			out := map[string]any{}
			for k, v := range s.Config {
				out[k] = v
			}
			return out, nil
		}
	}
	return nil, errf(500, "snapshot '%s' does not exist", name)
}
