package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fsutil"
	"github.com/phoenix-hypervisor/phoenix/internal/lock"
)

// RequestConverge asks a running controller for a full-chain converge of
// each guest by setting its converge.phoenix.io/requestedAt annotation to
// token in the file the guest was loaded from. Only that key changes: the
// edit is made on the raw bytes, so the rest of each file keeps its bytes,
// order and formatting, a new key is indented like its neighbours, and each
// file is replaced atomically, once, with its mode kept.
func RequestConverge(guests []*api.Guest, token string) error {
	byFile := map[string][]*api.Guest{}
	var files []string
	for _, g := range guests {
		if _, ok := byFile[g.File]; !ok {
			files = append(files, g.File)
		}
		byFile[g.File] = append(byFile[g.File], g)
	}
	for _, file := range files {
		if err := annotateFile(file, byFile[file], token); err != nil {
			return err
		}
	}
	return nil
}

// annotateFile sets the token on guests of one file. The read-modify-write
// holds a lock beside the file (.<name>.lock), so that two requests at once
// (a CLI converge and one from the status page) never lose each other's
// annotation.
func annotateFile(file string, guests []*api.Guest, token string) error {
	locks, err := lock.NewDir(filepath.Dir(file))
	if err != nil {
		return err
	}
	unlock, err := locks.Lock(context.Background(), "."+filepath.Base(file))
	if err != nil {
		return fmt.Errorf("lock %s: %w", file, err)
	}
	defer unlock()
	// A symlinked config file is written through to its target: renaming
	// the new content over the link would replace the link with a copy.
	target, err := filepath.EvalSymlinks(file)
	if err != nil {
		return err
	}
	fi, err := os.Stat(target)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return err
	}
	for _, g := range guests {
		path, err := annotationPath(data, g.Kind, g.ID)
		if err != nil {
			return fmt.Errorf("%s: guest %s: %w", file, g.ID, err)
		}
		if data, err = setAnnotation(data, path, token); err != nil {
			return fmt.Errorf("%s: guest %s: set %s: %w", file, g.ID, api.ConvergeAnnotation, err)
		}
	}
	if err := fsutil.WriteFile(target, data, fi.Mode().Perm()); err != nil {
		return fmt.Errorf("write %s: %w", target, err)
	}

	return nil
}

// annotationPath is the sjson path of a guest's converge annotation. The
// key's dots (and slash) are escaped, or sjson would read them as nesting.
func annotationPath(data []byte, kind api.Kind, id api.ID) (string, error) {
	key := "annotations." + gjson.Escape(api.ConvergeAnnotation)
	if kind == api.KindLXC {
		if !gjson.GetBytes(data, "lxc_configs."+id.String()).IsObject() {
			return "", fmt.Errorf("no lxc_configs entry %q", id.String())
		}
		return "lxc_configs." + id.String() + "." + key, nil
	}
	index := -1
	gjson.GetBytes(data, "vms").ForEach(func(k, v gjson.Result) bool {
		vmid := v.Get("vmid")
		if strings.TrimSpace(vmid.String()) == id.String() && v.IsObject() {
			index = int(k.Int())
			return false
		}
		return true
	})
	if index < 0 {
		return "", fmt.Errorf("no entry with vmid %s in vms", id)
	}
	return "vms." + strconv.Itoa(index) + "." + key, nil
}
