package pveapi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// Proxmox checks some container settings against the literal user
// root@pam (pve-container's check_ct_modify_config_perm), and an API
// token's user is root@pam!name at best: no token, whatever its
// privileges, may set them. phoenix sets them with pct set on the
// container's node over SSH, where pct runs as root:
//
//   - dev[n] (device passthrough, gpu_assignment);
//   - features other than nesting, and any feature of a privileged
//     container (pct_options).
//
// Likewise only root may name a file by its path (ostemplate, import-from):
// a token must give a volume ID, which CheckConfig asks for up front.

// rootOnly separates the keys only root@pam may set from those the API
// takes. privileged says the container is privileged (unprivileged: 0).
func rootOnly(kind api.Kind, values map[string]string, privileged bool) (apiVals, root map[string]string) {
	apiVals, root = map[string]string{}, map[string]string{}
	for k, v := range values {
		if kind == api.KindLXC && (devKeyRE.MatchString(k) || (k == "features" && (privileged || !nestingOnly(v)))) {
			root[k] = v
		} else {
			apiVals[k] = v
		}
	}
	return apiVals, root
}

var devKeyRE = regexp.MustCompile(`^dev\d+$`)

// nestingOnly reports whether a features value sets nothing but nesting.
// An empty value (dropping every feature) may drop others, so it is not.
func nestingOnly(features string) bool {
	if features == "" {
		return false
	}
	for _, f := range strings.Split(features, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(f), "="); k != "nesting" {
			return false
		}
	}
	return true
}

// setAsRoot sets root-only keys of container id with pct set on its node
// over SSH; an empty value deletes the key. A locked container is retried.
func (h *Host) setAsRoot(ctx context.Context, node string, id api.ID, values map[string]string) error {
	if h.ssh == nil {
		return h.needRoot(values, id)
	}
	argv := []string{"pct", "set", id.String()}
	var del []string
	for _, k := range sortedKeys(values) {
		if values[k] == "" {
			del = append(del, k)
			continue
		}
		if strings.ContainsAny(values[k], "\r\n") {
			return fmt.Errorf("%s: a value may not hold a line break", k)
		}
		argv = append(argv, "--"+k, values[k])
	}
	if len(del) > 0 {
		argv = append(argv, "--delete", strings.Join(del, ","))
	}
	err := h.c.retry(ctx, true, func() error {
		_, err := h.ssh.run(ctx, node, argv, nil)
		var re *RemoteError
		if errors.As(err, &re) && isLockMessage(re.Output) {
			return &lockedError{err}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s as root on node %s (no API token may set them): %w", strings.Join(sortedKeys(values), ", "), node, err)
	}
	return nil
}

// needRoot explains that no token can set these keys.
func (h *Host) needRoot(values map[string]string, id api.ID) error {
	return fmt.Errorf("%s of container %s: Proxmox lets only root@pam set these (device passthrough, features other than nesting), and an API token never counts as root@pam; "+
		"give phoenix SSH access to the nodes with --pve-ssh-key and --pve-ssh-known-hosts and it sets them with pct set there: %w",
		strings.Join(sortedKeys(values), ", "), id, ErrNeedSSH)
}

// privileged reads whether a container is privileged, from the values
// about to be written or else from its config.
func (h *Host) privileged(ctx context.Context, loc *location, values map[string]string) (bool, error) {
	if v, ok := values["unprivileged"]; ok {
		return v == "0", nil
	}
	var cfg guestConfig
	if err := h.c.get(ctx, loc.base+"/config", &cfg); err != nil {
		return false, err
	}
	return cfg["unprivileged"] != "1", nil
}

// CheckConfig reports, before anything runs, what in cfg no API token
// can do: an ostemplate or template_image given as a file path instead of
// a volume ID, an image to import whose file name Proxmox's import storage
// refuses, and (without SSH) settings only root@pam may make.
func (h *Host) CheckConfig(cfg *api.Config) error {
	var probs []api.Problem
	for _, id := range cfg.IDs {
		g := cfg.Guest(id)
		if g == nil {
			continue
		}
		file, field, src := api.LXCFile, "template", g.Spec.Template
		if g.Kind == api.KindVM {
			file, field, src = api.VMFile, "template_image", g.Spec.TemplateImage
		}
		if g.CloneSource() != 0 {
			src = ""
		}
		if msg := checkSource(g.Kind, src); msg != "" {
			probs = append(probs, api.Problem{File: file, Guest: id.String(), Field: field, Msg: msg})
		}
		if g.Kind == api.KindLXC && h.ssh == nil {
			privileged := g.Spec.Unprivileged != nil && !*g.Spec.Unprivileged
			if len(g.Spec.PctOptions) > 0 && (privileged || !nestingOnly(strings.Join(g.Spec.PctOptions, ","))) {
				probs = append(probs, api.Problem{File: file, Guest: id.String(), Field: "pct_options", Msg: "features other than nesting (or any feature of a privileged container)" + rootOnlyHint})
			}
			if a := strings.TrimSpace(g.Spec.GPUAssignment); a != "" && a != "none" {
				probs = append(probs, api.Problem{File: file, Guest: id.String(), Field: "gpu_assignment", Msg: "device passthrough (dev[n])" + rootOnlyHint})
			}
		}
	}
	if len(probs) > 0 {
		return &api.InvalidError{Problems: probs}
	}
	return nil
}

const rootOnlyHint = " can be set only by root@pam, which no API token is; give phoenix SSH access to the nodes " +
	"(--pve-ssh-key, --pve-ssh-known-hosts) and it sets them with pct set there"

// importExtRE are the files Proxmox's import content type holds
// (pve-storage, PVE 8.3 and later).
var importExtRE = regexp.MustCompile(`\.(qcow2|raw|vmdk|ova|ovf)$`)

// checkSource says what is wrong with an ostemplate or cloud image for an
// API token, or "".
func checkSource(kind api.Kind, src string) string {
	switch {
	case src == "":
		return ""
	case strings.HasPrefix(src, "/") || !strings.Contains(src, ":"):
		if kind == api.KindVM {
			return fmt.Sprintf("%q is a file path, and Proxmox answers an API token \"Only root can pass arbitrary filesystem paths.\"; "+
				"put the image in a storage with content type import and give its volume ID, e.g. local:import/noble-server-cloudimg-amd64.qcow2 "+
				"(the import storage takes .qcow2, .raw, .vmdk, .ova and .ovf files)", src)
		}
		return fmt.Sprintf("%q is a file path, and Proxmox answers an API token \"Only root can pass arbitrary filesystem paths.\"; "+
			"give the template's volume ID instead, e.g. local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst (pveam list local shows them)", src)
	case kind == api.KindVM && strings.Contains(src, ":import/") && !importExtRE.MatchString(src):
		return fmt.Sprintf("%q: Proxmox's import storage takes only .qcow2, .raw, .vmdk, .ova and .ovf files; "+
			"a cloud image shipped as .img is usually qcow2: store it as .qcow2", src)
	}
	return ""
}
