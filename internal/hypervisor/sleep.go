package hypervisor

import (
	"context"
	"time"

	"github.com/phoenix-hypervisor/phoenix/internal/retry"
)

// Sleep is retry.Sleep: it waits for d or until ctx ends. It stays here
// for the backends' guest-script code, which names it; new code should
// call retry.Sleep.
func Sleep(ctx context.Context, d time.Duration) error { return retry.Sleep(ctx, d) }
