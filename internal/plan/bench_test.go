package plan

import (
	"context"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/desired"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

func labs(b *testing.B) map[string]string {
	return map[string]string{"reference": referenceLab, "example": exampleLab, "10k": testlab.Generate(b, 10000)}
}

// BenchmarkLoadValidatePlan is what every verb pays before acting: load and
// validate the files, then plan (LetsGo: every guest).
func BenchmarkLoadValidatePlan(b *testing.B) {
	for name, dir := range labs(b) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cfg, err := desired.Load(dir)
				if err != nil {
					b.Fatal(err)
				}
				LetsGo(cfg)
			}
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	for name, dir := range labs(b) {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := desired.Load(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPlanCreate plans create of the deepest-numbered guest, with
// every other guest already on the host: the no-op create case.
func BenchmarkPlanCreate(b *testing.B) {
	for name, dir := range labs(b) {
		cfg, err := desired.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		target := cfg.IDs[len(cfg.IDs)-1]
		look := func(context.Context, api.Kind, api.ID) (State, error) { return State{Exists: true, Running: true}, nil }
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Create(context.Background(), cfg, []api.ID{target}, look); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkClosure(b *testing.B) {
	cfg, err := desired.Load(testlab.Generate(b, 10000))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("all-10k", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cfg.Order()
		}
	})
	b.Run("one-10k", func(b *testing.B) {
		t := []api.ID{cfg.IDs[len(cfg.IDs)-1]}
		for i := 0; i < b.N; i++ {
			cfg.Closure(t, nil)
		}
	})
}

// BenchmarkPlanLetsGo plans LetsGo (every guest, then the boot starts) on a
// loaded config: planning alone, without the load.
func BenchmarkPlanLetsGo(b *testing.B) {
	for name, dir := range labs(b) {
		cfg, err := desired.Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				LetsGo(cfg)
			}
		})
	}
}
