package pveapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
)

const (
	testTokenID = "root@pam!phoenix"
	// testSecret is what no output may ever contain.
	testSecret = "5ec2e7aa-70ce-4d1e-b6a3-0c1d2e3f4a5b"
)

// testCluster is a fake cluster on loopback and a Host driving it.
type testCluster struct {
	fake *fakepveapi.Cluster
	srv  *httptest.Server
	host *Host
	opts Options
}

type clusterOpt func(*fakepveapi.Options, *Options)

// newTestCluster starts a fake three-node cluster and a Host with short
// timeouts and no waiting between retries worth the name.
func newTestCluster(tb testing.TB, mods ...clusterOpt) *testCluster {
	tb.Helper()
	fo := fakepveapi.Options{TokenID: testTokenID, Secret: testSecret, TaskDuration: 2 * time.Millisecond}
	ho := Options{
		Token:       Token{ID: testTokenID, secret: testSecret},
		Timeout:     2 * time.Second,
		TaskPoll:    2 * time.Millisecond,
		TaskTimeout: 10 * time.Second,
		Backoff:     time.Millisecond,
		DefaultNode: "pve1",
	}
	for _, m := range mods {
		m(&fo, &ho)
	}
	fake := fakepveapi.New(fo)
	srv := httptest.NewServer(fake)
	tb.Cleanup(func() { fake.Close(); srv.Close() })
	ho.URL = srv.URL
	h, err := New(ho)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return &testCluster{fake: fake, srv: srv, host: h, opts: ho}
}

// withSSH starts the fake nodes' SSH servers and configures the Host for
// them, with a fresh client key and a known_hosts file.
func withSSH(tb testing.TB, tc *testCluster) {
	tb.Helper()
	dir := tb.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		tb.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	spub, _ := ssh.NewPublicKey(pub)
	eps, err := tc.fake.StartSSH(spub)
	if err != nil {
		tb.Fatal(err)
	}
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(fakepveapi.KnownHosts(eps)), 0o600); err != nil {
		tb.Fatal(err)
	}
	addrs := map[string]string{}
	for _, ep := range eps {
		addrs[ep.Node] = ep.Addr
	}
	opts := tc.opts
	opts.SSH = SSHOptions{KeyFile: keyFile, KnownHostsFile: kh, Addrs: addrs}
	h, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	tc.host, tc.opts = h, opts
}

// placement builds a config whose guests have the given node fields.
func placement(nodes map[api.ID]string) *api.Config {
	cfg := &api.Config{Guests: map[api.ID]*api.Guest{}}
	for id, n := range nodes {
		cfg.Guests[id] = &api.Guest{ID: id, Kind: api.KindLXC, Spec: api.Spec{Node: n}}
	}
	return cfg
}

// requestsTo counts the requests the fake served whose path starts with prefix.
func requestsTo(f *fakepveapi.Cluster, prefix string) int {
	n := 0
	for _, r := range f.Requests() {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}
