package guest

import (
	"errors"
	"path/filepath"
	"regexp"
)

// setupStepRE is a setup step name: a file name in setup/, without .sh.
var setupStepRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// SetupStep checks the script of a host setup step,
// <scriptsDir>/setup/<step>.sh, as Check checks every script. The step
// name comes from the hypervisor config, so it may not be a path.
func SetupStep(scriptsDir, step string) (*Checked, error) {
	if !setupStepRE.MatchString(step) {
		return nil, errors.New("not a step name: want letters, digits, '.', '_' or '-'")
	}
	return Check(scriptsDir, filepath.Join(scriptsDir, "setup", step+".sh"))
}
