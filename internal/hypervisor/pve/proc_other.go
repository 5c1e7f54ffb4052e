//go:build !unix

package pve

import (
	"context"
	"errors"
	"os/exec"
	"time"
)

// killProcessGroup leaves exec's default (kill the child) where there are
// no process groups; Proxmox hosts are Linux, this only keeps the package
// building elsewhere.
func killProcessGroup(cmd *exec.Cmd) (reap func()) { return func() {} }

func flockTimeout(ctx context.Context, path string, wait time.Duration) (func(), error) {
	return nil, errors.New("editing LXC config files needs a unix host")
}
