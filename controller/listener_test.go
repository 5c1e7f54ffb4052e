package controller_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/controller"
)

// The metrics listener refuses a Host that is not an IP address,
// localhost or a name given with --ui-allowed-host (DNS rebinding), and
// answers GET only.
func TestListener_hostCheckAndMethods(t *testing.T) {
	l := newLab(t)
	r := l.start(func(o *controller.Options) { o.AllowedHosts = []string{"phoenix.example.org"} }, nil)
	r.waitReady()
	for _, tt := range []struct {
		method, host, path string
		want               int
	}{
		{"GET", "", "/metrics", http.StatusOK},
		{"GET", "phoenix.example.org", "/healthz", http.StatusOK},
		{"GET", "attacker.example.com", "/metrics", http.StatusForbidden},
		{"GET", "attacker.example.com", "/readyz", http.StatusForbidden},
		{"POST", "", "/healthz", http.StatusMethodNotAllowed},
		{"DELETE", "", "/metrics", http.StatusMethodNotAllowed},
	} {
		req, err := http.NewRequest(tt.method, "http://"+r.c.Addr()+tt.path, strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s with Host %q: %d, want %d", tt.method, tt.path, tt.host, resp.StatusCode, tt.want)
		}
	}
}
