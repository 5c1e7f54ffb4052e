// Command fakepve runs the fake pct and qm of internal/fake/pve by hand:
// install it as pct and qm (symlinks), or run `fakepve pct ARGS...`. Its
// settings are the FAKEPVE_* variables documented in that package.
package main

import (
	"os"

	fakepve "github.com/phoenix-hypervisor/phoenix/internal/fake/pve"
)

func main() {
	os.Exit(fakepve.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
