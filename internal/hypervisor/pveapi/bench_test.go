package pveapi

import (
	"fmt"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// BenchmarkHost_resyncPass is a controller resync pass over a cluster of
// n guests of which missing are gone: every guest is probed, as the
// controller does, and each missing one is looked up again before it is
// called missing. It reports the API requests per pass (target: 1 +
// guests needing work) next to the time.
func BenchmarkHost_resyncPass(b *testing.B) {
	for _, n := range []int{100, 1000} {
		for _, missing := range []int{0, 10} {
			b.Run(fmt.Sprintf("guests=%d/missing=%d", n, missing), func(b *testing.B) {
				tc := newTestCluster(b)
				var ids []api.ID
				for i := range n {
					id := api.ID(1000 + i)
					ids = append(ids, id)
					if i >= missing {
						tc.fake.AddGuest(fakepveapi.Guest{VMID: int(id), Type: "lxc", Node: tc.fake.Nodes()[i%3], Running: true})
					}
				}
				before := len(tc.fake.Requests())
				b.ResetTimer()
				for range b.N {
					// A new pass: the list of the last one has expired.
					tc.host.forget()
					for _, id := range ids {
						if _, _, err := hypervisor.Probe(ctx, tc.host, api.KindLXC, id); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(len(tc.fake.Requests())-before)/float64(b.N), "requests/pass")
			})
		}
	}
}
