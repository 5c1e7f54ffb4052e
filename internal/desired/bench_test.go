package desired

import (
	"bytes"
	jsonv2 "encoding/json/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/testlab"
)

func lab10k(b *testing.B) *api.Config {
	b.Helper()
	c, err := Load(testlab.Generate(b, 10000))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkSpecHash hashes every guest of the 10,000-guest lab once per op.
func BenchmarkSpecHash(b *testing.B) {
	c := lab10k(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, id := range c.IDs {
			SpecHash(c.Guests[id].Raw)
		}
	}
}

// BenchmarkValidateGuest checks and decodes every guest of the 10,000-guest
// lab once per op: the fast path, and the schema library plus
// encoding/json that it stands in for.
func BenchmarkValidateGuest(b *testing.B) {
	c := lab10k(b)
	all, err := schemas()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, id := range c.IDs {
				var s api.Spec
				if !fastSpec(c.Guests[id].Raw, &s) {
					b.Fatalf("guest %s took the slow path", id)
				}
			}
		}
	})
	// encoding/json/v2 decodes only: it neither checks the schemas'
	// minimums and patterns nor tells a doubtful guest apart, so this is
	// the floor of what using it instead of fastSpec would cost.
	b.Run("encoding-json-v2-decode-only", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, id := range c.IDs {
				var s api.Spec
				if err := jsonv2.Unmarshal(c.Guests[id].Raw, &s); err != nil {
					b.Fatalf("guest %s: %v", id, err)
				}
			}
		}
	})
	b.Run("schema+encoding-json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, id := range c.IDs {
				g := c.Guests[id]
				p := &pending{name: id.String(), own: g.Raw, g: &api.Guest{ID: id, Kind: g.Kind, Raw: g.Raw}}
				sch := all[guestSchemaLXC]
				if g.Kind == api.KindVM {
					sch = all[guestSchemaVM]
				}
				p.check("f", sch) // p.fast unset: the slow path
				if p.bad {
					b.Fatal(p.ps)
				}
			}
		}
	})
}

// BenchmarkValidateRefs runs the checks across guests (references,
// addresses, script names, cycles) of the 10,000-guest lab.
func BenchmarkValidateRefs(b *testing.B) {
	c := lab10k(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var ps problems
		validateGuests(&ps, &loading{Config: c})
		if len(ps) > 0 {
			b.Fatal(ps)
		}
	}
}

// BenchmarkLoader is the controller's reload after an edit of one guest
// in the 10,000-guest lab: every other guest comes from the cache.
func BenchmarkLoader(b *testing.B) {
	src := testlab.Generate(b, 10000)
	dir := b.TempDir()
	for _, n := range []string{api.HypervisorFile, api.LXCFile, api.VMFile} {
		data, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	lxc := filepath.Join(dir, api.LXCFile)
	orig, _ := os.ReadFile(lxc)
	cache := NewLoader()
	if _, err := cache.Load(dir); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		data := bytes.Replace(orig, []byte(`"memory_mb": `), []byte(`"memory_mb": `+strconv.Itoa(i%9+1)), 1)
		if err := os.WriteFile(lxc, data, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := cache.Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
