package pveapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor/guest"
)

// ErrNeedSSH is returned (wrapped) for work the API cannot do when no SSH
// access to the nodes is configured.
var ErrNeedSSH = errors.New("needs SSH access to the nodes")

// RemoteError is a command run on a node over SSH that failed.
type RemoteError struct {
	Node    string
	Addr    string
	Command string
	// ExitCode is the command's exit status; -1 when the connection
	// dropped before it reported one.
	ExitCode int
	// Output is the tail of its combined output.
	Output string
}

func (e *RemoteError) Error() string {
	msg := fmt.Sprintf("ssh %s (node %s): `%s`: exit %d", e.Addr, e.Node, e.Command, e.ExitCode)
	if e.Output != "" {
		msg += ": " + e.Output
	}
	return msg
}

// sshRunner runs commands on nodes, one cached connection per node. Host
// keys are always checked against the known_hosts file: phoenix runs
// commands as root there, so a node it cannot authenticate is refused.
type sshRunner struct {
	user     string
	addrs    map[string]string
	timeout  time.Duration
	signer   ssh.Signer
	hostKeys ssh.HostKeyCallback
	resolve  func(ctx context.Context, node string) (string, error)

	mu    sync.Mutex
	conns map[string]*ssh.Client
}

func newSSH(o SSHOptions, timeout time.Duration, resolve func(context.Context, string) (string, error)) (*sshRunner, error) {
	st, err := os.Stat(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: mode %04o lets others read it; refusing it (chmod 600 %s)", o.KeyFile, perm, o.KeyFile)
	}
	pem, err := os.ReadFile(o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	var pass *ssh.PassphraseMissingError
	if errors.As(err, &pass) {
		return nil, fmt.Errorf("key file %s is encrypted; phoenix runs unattended and needs an unencrypted key for the nodes", o.KeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", o.KeyFile, err)
	}
	kh := o.KnownHostsFile
	if kh == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		kh = filepath.Join(home, ".ssh", "known_hosts")
	}
	cb, err := knownhosts.New(kh)
	if err != nil {
		return nil, fmt.Errorf("known hosts file %s: %w (add the nodes' host keys, checked against the nodes, e.g. with ssh-keyscan)", kh, err)
	}
	return &sshRunner{user: o.User, addrs: o.Addrs, timeout: timeout, signer: signer, hostKeys: cb, resolve: resolve,
		conns: map[string]*ssh.Client{}}, nil
}

func (s *sshRunner) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, c := range s.conns {
		c.Close()
		delete(s.conns, n)
	}
}

// nodeAddr is where a node's SSH server listens: SSH.Addrs, else port 22
// of the address the cluster reports for the node.
func (h *Host) nodeAddr(ctx context.Context, node string) (string, error) {
	if a := h.opts.SSH.Addrs[node]; a != "" {
		return a, nil
	}
	var st clusterStatus
	if err := h.c.get(ctx, "/cluster/status", &st); err != nil {
		return "", err
	}
	for _, e := range st {
		if e.Type == "node" && e.Name == node && net.ParseIP(e.IP) != nil {
			return net.JoinHostPort(e.IP, "22"), nil
		}
	}
	return "", fmt.Errorf("no address for node %s in /cluster/status; give one with --pve-ssh-addr %s=HOST:PORT", node, node)
}

// clusterStatus is GET /cluster/status; only nodes' names and addresses
// are used, and an address that is not an IP is skipped.
type clusterStatus []struct {
	Type string `json:"type"`
	Name string `json:"name"`
	IP   string `json:"ip"`
}

func (s *sshRunner) client(ctx context.Context, node string) (*ssh.Client, string, error) {
	addr, err := s.resolve(ctx, node)
	if err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	c := s.conns[node]
	s.mu.Unlock()
	if c != nil {
		return c, addr, nil
	}
	d := net.Dialer{Timeout: s.timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, addr, fmt.Errorf("ssh %s (node %s): %w", addr, node, err)
	}
	// The handshake has no timeout of its own.
	conn.SetDeadline(time.Now().Add(s.timeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            s.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.signer)},
		HostKeyCallback: s.hostKeys,
		Timeout:         s.timeout,
	})
	if err != nil {
		conn.Close()
		return nil, addr, fmt.Errorf("ssh %s (node %s): %w", addr, node, err)
	}
	conn.SetDeadline(time.Time{})
	c = ssh.NewClient(cc, chans, reqs)
	s.mu.Lock()
	if old := s.conns[node]; old != nil {
		// Another caller connected meanwhile; keep one.
		s.mu.Unlock()
		c.Close()
		return old, addr, nil
	}
	s.conns[node] = c
	s.mu.Unlock()
	return c, addr, nil
}

func (s *sshRunner) drop(node string, c *ssh.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[node] == c {
		delete(s.conns, node)
	}
	c.Close()
}

// run runs argv on node, with stdin, and returns its output. The remote
// side gets one command line, so every argument is quoted for sh.
func (s *sshRunner) run(ctx context.Context, node string, argv []string, stdin []byte) ([]byte, error) {
	line, err := commandLine(argv)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node, err)
	}
	var sess *ssh.Session
	var c *ssh.Client
	var addr string
	for try := 0; ; try++ {
		c, addr, err = s.client(ctx, node)
		if err != nil {
			return nil, err
		}
		sess, err = c.NewSession()
		if err == nil {
			break
		}
		// A cached connection the node closed: dial again, once.
		s.drop(node, c)
		if try > 0 {
			return nil, fmt.Errorf("ssh %s (node %s): %w", addr, node, err)
		}
	}
	defer sess.Close()
	out := &tailBuffer{max: 64 << 10}
	sess.Stdin = bytes.NewReader(stdin)
	sess.Stdout, sess.Stderr = out, out
	done := make(chan error, 1)
	go func() { done <- sess.Run(line) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGKILL)
		sess.Close()
		return nil, fmt.Errorf("ssh %s (node %s): `%s`: %w", addr, node, displayArgv(argv), ctx.Err())
	}
	if err == nil {
		return out.bytes(), nil
	}
	re := &RemoteError{Node: node, Addr: addr, Command: displayArgv(argv), ExitCode: -1, Output: guest.Tail(out.bytes())}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		re.ExitCode = ee.ExitStatus()
		return nil, re
	}
	s.drop(node, c)
	if re.Output == "" {
		re.Output = err.Error()
	}
	return nil, re
}

// safeWordRE matches arguments every POSIX shell takes as they are, in
// any position: no operator, quote, expansion, glob, comment, tilde,
// brace or "=" (which would make a first word an assignment).
var safeWordRE = regexp.MustCompile(`^[A-Za-z0-9_@%+:,./-]+$`)

// shellReserved are the words a shell reads as syntax in a command's
// first position (POSIX and bash).
var shellReserved = map[string]bool{
	"case": true, "do": true, "done": true, "elif": true, "else": true, "esac": true, "fi": true, "for": true,
	"if": true, "in": true, "then": true, "until": true, "while": true, "function": true, "select": true,
	"time": true, "coproc": true,
}

// shellQuote makes s one word for the node's shell, whatever it holds:
// within single quotes nothing is special but the single quote itself,
// which is closed, escaped and reopened.
func shellQuote(s string) string {
	if safeWordRE.MatchString(s) && !shellReserved[s] {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// commandLine is argv as the one string SSH hands to the node's shell,
// which splits it back into exactly argv: every argument quoted on its
// own, none expanded. A NUL byte cannot travel in a command line (the
// shell would cut the argument there), so it is refused.
func commandLine(argv []string) (string, error) {
	q := make([]string, len(argv))
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return "", fmt.Errorf("argument %d of %s holds a NUL byte, which no command line can carry", i, shellQuote(argv[0]))
		}
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " "), nil
}

// displayArgv is a command line for messages: long or multi-line
// arguments (the raw-key editor's script) are elided.
func displayArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if len(a) > 80 || strings.Contains(a, "\n") {
			a = "<script>"
		}
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// tailBuffer keeps the last max bytes written to it; SSH writes stdout
// and stderr from two goroutines.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}
