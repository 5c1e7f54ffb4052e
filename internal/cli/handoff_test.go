package cli

import "testing"

func TestHandled(t *testing.T) {
	const ours = "2026-11-25T20:00:00.5Z"
	tests := []struct {
		name, recorded, before string
		want                   bool
	}{
		{"ours", ours, "", true},
		{"not yet", "", "", false},
		{"an older one", "2026-11-25T19:00:00Z", "", false},
		{"a newer request handled after ours", "2026-11-25T20:00:01Z", "", true},
		{"a future token recorded before we asked", "2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z", false},
		{"an opaque token", "redo-please", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := handled(tt.recorded, tt.before, ours); got != tt.want {
				t.Errorf("handled(%q, %q) = %v, want %v", tt.recorded, tt.before, got, tt.want)
			}
		})
	}
}
