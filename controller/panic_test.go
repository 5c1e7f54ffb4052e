package controller_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/controller"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// panicOnce is a host whose first Get of one guest, and first create or
// clone of it, panic.
type panicOnce struct {
	hypervisor.Host
	at api.ID

	mu              sync.Mutex
	getDone, mkDone bool
}

func (p *panicOnce) first(flag *bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := *flag
	*flag = true
	return !was
}

func (p *panicOnce) Get(ctx context.Context, k api.Kind, id api.ID) (*hypervisor.Guest, error) {
	if id == p.at && p.first(&p.getDone) {
		panic("injected in Get")
	}
	return p.Host.Get(ctx, k, id)
}

func (p *panicOnce) Create(ctx context.Context, k api.Kind, id api.ID, s hypervisor.CreateSpec) error {
	if id == p.at && p.first(&p.mkDone) {
		panic("injected in Create")
	}
	return p.Host.Create(ctx, k, id, s)
}

func (p *panicOnce) Clone(ctx context.Context, k api.Kind, src, dst api.ID, s hypervisor.CloneSpec) error {
	if dst == p.at && p.first(&p.mkDone) {
		panic("injected in Clone")
	}
	return p.Host.Clone(ctx, k, src, dst, s)
}

// TestController_panicIsRetriedAndTheProcessStaysUp: a panic while
// reconciling a guest, before its actions and inside one, is logged with
// its stack and retried with backoff; the controller keeps running and
// every guest ends Ready.
func TestController_panicIsRetriedAndTheProcessStaysUp(t *testing.T) {
	l := newLab(t)
	host := &panicOnce{Host: l.host, at: 941}
	r := l.start(func(o *controller.Options) { o.RetryBaseDelay = 10 * time.Millisecond }, host)
	r.waitReady()
	waitFor(t, "every guest Ready despite the panics", func() (bool, string) { return l.allReady(exampleIDs) })
	logs := r.logs.String()
	for _, want := range []string{"internal error: panic: injected in Get", "internal error: panic: injected in C", "panic_test.go"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if got := r.metric("workqueue_retries_total", map[string]string{"name": "guests"}); got == 0 {
		t.Error("the guest was not retried through the queue")
	}
	select {
	case err := <-r.done:
		t.Fatalf("the controller stopped: %v", err)
	default:
	}
}
