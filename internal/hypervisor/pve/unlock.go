package pve

import (
	"fmt"
	"regexp"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// staleLockRE finds a guest lock that an interrupted create or clone
// leaves behind ("CT is locked (create)", "VM is locked (clone)"): Proxmox
// never clears it by itself.
var staleLockRE = regexp.MustCompile(`\b(CT|VM) is locked \((create|clone)\)`)

// unlockHint tells the operator how to clear a create or clone lock that
// may be stale, with the exact command; phoenix does not run it, since a
// pct or qm of another process may still be working on the guest.
func unlockHint(argv []string, output string) string {
	m := staleLockRE.FindStringSubmatch(output)
	if m == nil || len(argv) < 3 {
		return ""
	}
	if _, err := api.ParseID(argv[2]); err != nil {
		return ""
	}
	tool := "pct"
	if m[1] == "VM" {
		tool = "qm"
	}
	return fmt.Sprintf(" (a %s lock stays when the run that took it was interrupted; if no pct, qm or phoenix is working on %s, clear it with `%s unlock %s`)", m[2], argv[2], tool, argv[2])
}
