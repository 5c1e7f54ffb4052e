package reconcilers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// Scripts finds feature, application and health scripts in a scripts folder
// laid out as features/<feature>.sh, apps/<script>, health/<script>.
type Scripts struct {
	// Dir is the scripts folder; empty means none is configured, and scripts
	// are passed by name only (the sim backend records them).
	Dir string
}

// Resolve returns the host path of a script, refusing names that would
// leave its folder (also through a symlink) and scripts that do not exist.
func (s Scripts) Resolve(kind hypervisor.ScriptKind, name string) (string, error) {
	if s.Dir == "" {
		return "", nil
	}
	file := name
	if kind == hypervisor.FeatureScript {
		file = name + ".sh"
	}
	if !filepath.IsLocal(file) {
		return "", fmt.Errorf("%s script %q leaves the %s folder", kind, name, kind)
	}
	folder := filepath.Join(s.Dir, string(kind))
	path := filepath.Join(folder, file)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if os.IsNotExist(err) {
			return "", fmt.Errorf("%s script %q: no file %s", kind, name, path)
		}
		return "", fmt.Errorf("%s script %q: %w", kind, name, err)
	}
	realFolder, err := filepath.EvalSymlinks(folder)
	if err != nil {
		return "", fmt.Errorf("%s script %q: %w", kind, name, err)
	}
	rel, err := filepath.Rel(realFolder, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s script %q resolves to %s, outside %s", kind, name, real, realFolder)
	}
	return real, nil
}
