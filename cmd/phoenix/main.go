// Command phoenix provisions Proxmox VE guests from JSON desired state.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/phoenix-hypervisor/phoenix/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal asks for a clean stop; a second one kills at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
