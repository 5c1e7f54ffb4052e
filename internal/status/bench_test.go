package status

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// BenchmarkUpdate writes status files the way a controller's workers do:
// several at once, each for its own guest. Every Update is durable when it
// returns; concurrent ones share their fsyncs.
func BenchmarkUpdate(b *testing.B) {
	for _, workers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s, err := NewStore(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			cpu0 := cpuTime()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < b.N; i += workers {
						id := api.ID(1000 + i%5000)
						if _, err := s.Update(id, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady }); err != nil {
							b.Error(err)
						}
					}
				}(w)
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU so far: what a status
// write costs the machine beyond the wait for the disk.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkGet reads a recorded status, as every reconcile does.
func BenchmarkGet(b *testing.B) {
	s, err := NewStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Update(941, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady; st.ObservedSpecHash = "0123456789abcdef" }); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(941, api.KindLXC); err != nil {
			b.Fatal(err)
		}
	}
}
