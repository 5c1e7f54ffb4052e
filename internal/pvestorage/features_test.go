package pvestorage

import (
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func TestSupports(t *testing.T) {
	tests := []struct {
		typ  string
		kind api.Kind
		feat Feature
		want bool
	}{
		{"zfspool", api.KindLXC, Snapshot, true},
		{"lvmthin", api.KindVM, LinkedClone, true},
		{"dir", api.KindLXC, Snapshot, false},
		{"nfs", api.KindLXC, LinkedClone, false},
		{"dir", api.KindVM, Snapshot, true},
		{"nfs", api.KindVM, LinkedClone, true},
		{"lvm", api.KindVM, Snapshot, false},
		{"zfspool", api.KindVM, CopySnapshot, false},
		{"zfspool", api.KindLXC, CopySnapshot, true},
		{"lvmthin", api.KindVM, CopySnapshot, true},
		{"", api.KindVM, Snapshot, true},
	}
	for _, tt := range tests {
		if got := Supports(tt.typ, tt.kind, tt.feat); got != tt.want {
			t.Errorf("Supports(%q, %s, %s) = %v, want %v", tt.typ, tt.kind, tt.feat, got, tt.want)
		}
	}
}
