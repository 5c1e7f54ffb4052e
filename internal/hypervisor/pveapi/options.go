package pveapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Token is a Proxmox VE API token. The secret is unexported and String
// hides it, so that a Token that ends up in a message or a log by mistake
// shows nothing that grants access.
type Token struct {
	// ID is USER@REALM!TOKENID.
	ID     string
	secret string
}

// String returns the token ID with the secret redacted.
func (t Token) String() string { return t.ID + "=<redacted>" }

// GoString redacts the secret from %#v too.
func (t Token) GoString() string {
	return "pveapi.Token{ID: " + fmt.Sprintf("%q", t.ID) + ", secret: <redacted>}"
}

// IsZero reports whether the token is unset.
func (t Token) IsZero() bool { return t.ID == "" && t.secret == "" }

// ParseToken parses USER@REALM!TOKENID=SECRET, with or without the
// "PVEAPIToken=" prefix of the Authorization header. Its errors never
// quote the input.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "PVEAPIToken="))
	id, secret, ok := strings.Cut(s, "=")
	user, name, hasName := strings.Cut(id, "!")
	if !ok || secret == "" || !hasName || name == "" || !strings.Contains(user, "@") ||
		strings.ContainsAny(s, " \t\r\n") {
		return Token{}, errors.New("want one line USER@REALM!TOKENID=SECRET")
	}
	return Token{ID: id, secret: secret}, nil
}

// LoadToken reads a token file. The file must be readable by its owner
// only (0600 or 0400): whoever reads it controls the cluster, so a file
// others can read is refused rather than used, as ssh does with keys.
func LoadToken(path string) (Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return Token{}, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Token{}, fmt.Errorf("token file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Token{}, fmt.Errorf("token file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return Token{}, fmt.Errorf("token file %s: mode %04o lets others read the token; refusing it (chmod 600 %s)", path, perm, path)
	}
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if err != nil {
		return Token{}, fmt.Errorf("token file %s: %w", path, err)
	}
	tok, err := ParseToken(string(buf[:n]))
	if err != nil {
		return Token{}, fmt.Errorf("token file %s: %w", path, err)
	}
	return tok, nil
}

// Options configure a Host.
type Options struct {
	// URL is the API address, https://HOST:8006 (an /api2/json suffix is
	// added when missing). http:// is accepted for test clusters; callers
	// should warn about it (PlainHTTP).
	URL   string
	Token Token
	// CAFile is a PEM bundle of CAs to trust instead of the system's (a
	// cluster's own pve-root-ca.pem).
	CAFile string
	// Insecure skips TLS certificate verification. Only when asked for.
	Insecure bool
	// DefaultNode is where a guest with no node field and no clone source
	// is created. Empty: the only node of a one-node cluster, else an error.
	DefaultNode string
	// Timeout bounds each API request; default 30s.
	Timeout time.Duration
	// TaskTimeout bounds the wait for one task; default 15m.
	TaskTimeout time.Duration
	// TaskPoll is how often a running task (and a guest agent that does
	// not answer yet) is polled; default 500ms.
	TaskPoll time.Duration
	// AgentTimeout bounds the wait for a VM's guest agent to answer before
	// a script runs in it; default 5m.
	AgentTimeout time.Duration
	// Retries is how often a failed request is retried when retrying can
	// help (5xx from the proxy, lock contention, a dropped connection);
	// default 4. Negative means none.
	Retries int
	// Backoff is the first wait before a retry; it doubles per retry, with
	// jitter, up to 30s. Default 500ms.
	Backoff time.Duration
	// NodeConcurrency bounds the writes (and their tasks) in flight per
	// node; default 4.
	NodeConcurrency int
	// NodeDownFor is how long a node that let a request time out is
	// failed fast instead of asked again; default twice Timeout.
	NodeDownFor time.Duration
	// IndexTTL is how long the list of the cluster's guests is reused;
	// default 2s. Negative: never.
	IndexTTL time.Duration
	// SSH reaches the nodes for what the API cannot do (container exec,
	// raw lxc.* keys, host setup). Without SSH.KeyFile those fail with a
	// message saying so.
	SSH SSHOptions
	// ScriptsDir holds setup/<step>.sh for RunSetupStep.
	ScriptsDir string
}

// SSHOptions say how to reach the nodes over SSH.
type SSHOptions struct {
	// User to log in as; default root (pct needs it).
	User string
	// KeyFile is the private key (unencrypted; owner-only permissions).
	KeyFile string
	// KnownHostsFile holds the nodes' host keys; default ~/.ssh/known_hosts.
	// Host keys are always checked.
	KnownHostsFile string
	// Addrs maps a node name to host:port; a node not listed is reached on
	// port 22 of the address the cluster reports for it (/cluster/status).
	Addrs map[string]string
}

// Defaults of Options, which the CLI also shows as its flags' defaults.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultTaskTimeout     = 15 * time.Minute
	DefaultAgentTimeout    = 5 * time.Minute
	DefaultTaskPoll        = 500 * time.Millisecond
	DefaultRetries         = 4
	DefaultBackoff         = 500 * time.Millisecond
	DefaultNodeConcurrency = 4
	DefaultSSHUser         = "root"
)

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.TaskTimeout <= 0 {
		o.TaskTimeout = DefaultTaskTimeout
	}
	if o.AgentTimeout <= 0 {
		o.AgentTimeout = DefaultAgentTimeout
	}
	if o.TaskPoll <= 0 {
		o.TaskPoll = DefaultTaskPoll
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.NodeConcurrency <= 0 {
		o.NodeConcurrency = DefaultNodeConcurrency
	}
	if o.NodeDownFor <= 0 {
		o.NodeDownFor = 2 * o.Timeout
	}
	if o.IndexTTL == 0 {
		o.IndexTTL = 2 * time.Second
	}
	if o.SSH.User == "" {
		o.SSH.User = DefaultSSHUser
	}
}

// apiURL checks the URL and returns the API base (…/api2/json).
func apiURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("no API URL (https://HOST:8006)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("API URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("API URL %q: want https://HOST:8006", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("API URL %q: no host", raw)
	}
	if u.User != nil {
		return "", errors.New("API URL: credentials in the URL are not accepted; use the token file")
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/api2/json") {
		u.Path += "/api2/json"
	}
	return u.String(), nil
}

// PlainHTTP reports whether the URL is http://: the token then crosses the
// network in clear text, which is only acceptable on loopback test setups.
func (o *Options) PlainHTTP() bool {
	u, err := url.Parse(o.URL)
	return err == nil && u.Scheme == "http"
}

func (o *Options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.Insecure {
		// Only on explicit request (--pve-insecure): Proxmox ships a
		// self-signed certificate, and CAFile is the better answer.
		cfg.InsecureSkipVerify = true
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
