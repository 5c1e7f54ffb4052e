package httpguard

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// AllowedHost reports whether a request's Host names this listener the way
// a local user would: an IP address, localhost, or one of extra (names a
// reverse proxy sends, given with --ui-allowed-host). A browser visiting an
// attacker's site whose name was re-pointed at 127.0.0.1 (DNS rebinding)
// sends that name, which is refused.
func AllowedHost(hostport string, extra []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil {
		return true
	}
	for _, e := range extra {
		if strings.EqualFold(host, e) {
			return true
		}
	}
	return false
}

// Guard refuses (403) a request whose Host is not allowed, then serves it
// with next.
func Guard(next http.Handler, extra []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !AllowedHost(r.Host, extra) {
			http.Error(w, fmt.Sprintf("host %q refused: open this by IP address or as localhost, or allow the name with --ui-allowed-host", r.Host), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Server timeouts: a client gets this long to send its headers, and an idle
// keep-alive connection is closed after IdleTimeout, so that slow or idle
// clients cannot hold connections open forever. There is no write timeout:
// the status page streams events for as long as it is open.
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// NewServer is an http.Server for h with the timeouts above.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout}
}

// Loopback reports whether a listen address only takes local connections.
// An empty host (":9464") listens on every address, so it is not.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
