package controller_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tidwall/sjson"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

// TestController_editLatency measures, with the default debounce, the time
// from saving a file to the host showing the change, and logs it (go test
// -v -run EditLatency). It asserts nothing about speed. PHOENIX_SCALE=N
// runs it on a generated N-guest lab instead of the example lab, and logs
// the time to the first full sync and the heap too.
func TestController_editLatency(t *testing.T) {
	src, n := exampleLab, 0
	if s := os.Getenv("PHOENIX_SCALE"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("PHOENIX_SCALE=%q: %v", s, err)
		}
		src = testlab.Generate(t, n)
		old := waitLimit
		waitLimit = 30 * time.Minute
		t.Cleanup(func() { waitLimit = old })
	} else if testing.Short() {
		t.Skip("measurement")
	}
	l := newLabFrom(t, src)
	cfg, err := desired.Load(l.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	// The edited guest: the last plain container (not a template).
	var target *api.Guest
	for _, id := range cfg.IDs {
		if g := cfg.Guest(id); g.Kind == api.KindLXC && !g.IsTemplateSource() {
			target = g
		}
	}
	start := time.Now()
	r := l.start(func(o *controllerOptions) {
		o.Debounce = defaultDebounce
		o.Verbosity = 0
	}, nil)
	r.waitReady()
	ready := time.Since(start)
	r.idle()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)

	var lat []time.Duration
	mem := target.Spec.MemoryMB
	for i := range 5 {
		mem += 256
		data, err := sjson.SetBytes(l.read(api.LXCFile), "lxc_configs."+target.ID.String()+".memory_mb", mem)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		l.write(api.LXCFile, data)
		want := strconv.Itoa(mem)
		waitFor(t, fmt.Sprintf("edit %d on the host", i), func() (bool, string) {
			g, _ := l.guest(api.KindLXC, target.ID)
			return g != nil && g.Config["memory"] == want, ""
		})
		lat = append(lat, time.Since(t0))
		r.idle()
	}
	slices.Sort(lat)
	t.Logf("guests %d: first full sync %s, heap in use %.1f MiB (in-process, test binary)", len(cfg.IDs), ready.Round(time.Millisecond), float64(ms.HeapInuse)/(1<<20))
	t.Logf("edit-to-reconcile latency of guest %s, debounce %s, %d edits: min %s, median %s, max %s",
		target.ID, defaultDebounce, len(lat), lat[0].Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}
