package httpguard

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h := Guard(ok, []string{"phoenix.example.org"})
	for _, tt := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:9464", http.StatusNoContent},
		{"[::1]:9464", http.StatusNoContent},
		{"localhost:9464", http.StatusNoContent},
		{"LOCALHOST", http.StatusNoContent},
		{"phoenix.example.org", http.StatusNoContent},
		{"phoenix.example.org:443", http.StatusNoContent},
		{"attacker.example.com:9464", http.StatusForbidden},
		{"phoenix.example.org.attacker.com", http.StatusForbidden},
		{"localhost.attacker.com", http.StatusForbidden},
		{"", http.StatusForbidden},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("Host %q: %d, want %d", tt.host, w.Code, tt.want)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9464": true, "[::1]:9464": true, "localhost:9464": true,
		":9464": false, "0.0.0.0:9464": false, "10.0.0.5:9464": false, "[::]:80": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
