package fakepveapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHEndpoint is the fake SSH server of one node.
type SSHEndpoint struct {
	Node string
	// Addr is host:port on 127.0.0.1.
	Addr    string
	HostKey ssh.PublicKey
}

// KnownHosts renders endpoints as known_hosts lines.
func KnownHosts(eps []SSHEndpoint) string {
	var b strings.Builder
	for _, ep := range eps {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(ep.Addr)}, ep.HostKey))
		b.WriteByte('\n')
	}
	return b.String()
}

type sshServer struct {
	c    *Cluster
	node string
	ln   net.Listener
	cfg  *ssh.ServerConfig
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// StartSSH starts an SSH server for every node, on 127.0.0.1, that accepts
// the client key authorized (any user name). Close stops them.
//
// A node's server understands what phoenix runs there: "pct exec ID --
// argv..." (the guest must be a container on that node and running),
// "cat -- /etc/pve/lxc/ID.conf", the config writer ("sh -c SCRIPT
// phoenix-lxc-write ID CONFDIR LOCKDIR SHA256" with the new file on
// stdin), "stat -L -c '%a %F' -- PATH" of files put on the node, and
// anything else as a command on the node itself (see ExecFunc). A command
// line a real shell would not split into the same words is refused. A
// node set down refuses connections.
func (c *Cluster) StartSSH(authorized ssh.PublicKey) ([]SSHEndpoint, error) {
	var eps []SSHEndpoint
	for _, node := range c.nodes {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			return nil, err
		}
		cfg := &ssh.ServerConfig{
			PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
				if authorized != nil && string(key.Marshal()) == string(authorized.Marshal()) {
					return nil, nil
				}
				return nil, errors.New("unknown public key")
			},
		}
		cfg.AddHostKey(signer)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s := &sshServer{c: c, node: node, ln: ln, cfg: cfg, conns: map[net.Conn]bool{}}
		c.mu.Lock()
		c.ssh = append(c.ssh, s)
		c.mu.Unlock()
		s.wg.Add(1)
		go s.serve()
		eps = append(eps, SSHEndpoint{Node: node, Addr: ln.Addr().String(), HostKey: signer.PublicKey()})
	}
	return eps, nil
}

// close stops the server and drops its connections: clients (phoenix
// caches one per node) need not close theirs first.
func (s *sshServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *sshServer) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		if s.c.isDown(s.node) {
			conn.Close()
			continue
		}
		s.mu.Lock()
		s.conns[conn] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}()
	}
}

func (s *sshServer) handle(conn net.Conn) {
	defer conn.Close()
	sc, chans, reqs, err := ssh.NewServerConn(conn, s.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(ch, creqs)
		}()
	}
	wg.Wait()
}

func (s *sshServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		stdin, _ := io.ReadAll(ch)
		out, code := s.c.sshCommand(s.node, payload.Command, stdin)
		if code == 0 {
			io.WriteString(ch, out)
		} else {
			io.WriteString(ch.Stderr(), out)
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
		return
	}
}

// assignmentRE is what precedes "=" in a variable assignment.
var assignmentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// sshCommand runs a command line received over SSH on node.
func (c *Cluster) sshCommand(node, line string, stdin []byte) (string, int) {
	argv, err := splitShell(line)
	if err != nil {
		return "sh: " + err.Error() + "\n", 2
	}
	switch {
	case len(argv) >= 5 && argv[0] == "pct" && argv[1] == "exec" && argv[3] == "--":
		vmid, err := strconv.Atoi(argv[2])
		if err != nil {
			return fmt.Sprintf("400 Parameter verification failed.\nvmid: type check ('integer') failed - got '%s'\n", argv[2]), 255
		}
		c.mu.Lock()
		g := c.guests[vmid]
		var msg string
		switch {
		case g == nil || g.Node != node || g.Type != "lxc":
			msg = fmt.Sprintf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist\n", node, vmid)
		case !g.Running:
			msg = fmt.Sprintf("CT %d not running\n", vmid)
		}
		c.mu.Unlock()
		if msg != "" {
			return msg, 255
		}
		return c.runExec(node, vmid, argv[4:], stdin)
	case len(argv) >= 3 && argv[0] == "pct" && argv[1] == "set":
		return c.pctSet(node, argv[2], argv[3:])
	case len(argv) == 3 && argv[0] == "cat" && argv[1] == "--":
		return c.catConf(node, argv[2])
	case len(argv) == 8 && argv[0] == "sh" && argv[1] == "-c" && argv[3] == "phoenix-lxc-write":
		vmid, err := strconv.Atoi(argv[4])
		if err != nil {
			return "bad CTID\n", 2
		}
		return c.writeConf(node, vmid, argv[7], stdin)
	case len(argv) == 6 && argv[0] == "stat" && argv[1] == "-L" && argv[2] == "-c" && argv[3] == "%a %F" && argv[4] == "--":
		return c.statNodeFile(node, argv[5])
	case len(argv) == 0:
		return "", 0
	}
	return c.runExec(node, 0, argv, stdin)
}

// statNodeFile is GNU stat -L -c '%a %F' of a file on the node.
func (c *Cluster) statNodeFile(node, path string) (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.nodeFiles[node][path]; !ok {
		return fmt.Sprintf("stat: cannot statx '%s': No such file or directory\n", path), 1
	}
	return fmt.Sprintf("%o regular file\n", c.nodeModes[node][path].Perm()), 0
}

// pctSet is pct set run as root on node: "--key value" pairs and
// "--delete k1,k2". As root it may set what no token may (dev[n], every
// feature).
func (c *Cluster) pctSet(node, id string, args []string) (string, int) {
	vmid, err := strconv.Atoi(id)
	if err != nil {
		return fmt.Sprintf("400 Parameter verification failed.\nvmid: type check ('integer') failed - got '%s'\n", id), 255
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.guests[vmid]
	if g == nil || g.Node != node || g.Type != "lxc" {
		return fmt.Sprintf("Configuration file 'nodes/%s/lxc/%d.conf' does not exist\n", node, vmid), 255
	}
	if len(args)%2 != 0 {
		return "400 not enough arguments\n", 255
	}
	set := map[string]string{}
	var del []string
	for i := 0; i < len(args); i += 2 {
		k, ok := strings.CutPrefix(args[i], "--")
		if !ok || k == "" {
			return fmt.Sprintf("400 unable to parse option %q\n", args[i]), 255
		}
		if k == "delete" {
			del = append(del, strings.Split(args[i+1], ",")...)
			continue
		}
		set[k] = args[i+1]
	}
	if g.Lock != "" {
		return fmt.Sprintf("CT is locked (%s)\n", g.Lock), 255
	}
	for _, k := range del {
		delete(g.Config, k)
	}
	for k, v := range set {
		g.Config[k] = v
	}
	return "", 0
}

// confRE is a container config file on a node.
var confRE = regexp.MustCompile(`^/etc/pve/lxc/(\d+)\.conf$`)

// catConf is cat of /etc/pve/lxc/<vmid>.conf on node.
func (c *Cluster) catConf(node, path string) (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.confGuest(node, path); g != nil {
		return g.confFile(), 0
	}
	return fmt.Sprintf("cat: %s: No such file or directory\n", path), 1
}

func (c *Cluster) confGuest(node, path string) *Guest {
	m := confRE.FindStringSubmatch(path)
	if m == nil {
		return nil
	}
	vmid, _ := strconv.Atoi(m[1])
	if g := c.guests[vmid]; g != nil && g.Node == node && g.Type == "lxc" {
		return g
	}
	return nil
}

// writeConf does what phoenix's config writer does on a node: replace
// /etc/pve/lxc/<vmid>.conf with stdin if the file's SHA-256 is still sum.
// The fake keeps a config as keys, not text, so it takes only a new file
// that differs from the old one in the lxc.* lines of the current config,
// and refuses any other change as a bug in phoenix's editor.
func (c *Cluster) writeConf(node string, vmid int, sum string, stdin []byte) (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.guests[vmid]
	if g == nil || g.Node != node || g.Type != "lxc" {
		return fmt.Sprintf("Configuration file '/etc/pve/lxc/%d.conf' does not exist\n", vmid), 2
	}
	old := g.confFile()
	if got := sha256.Sum256([]byte(old)); hex.EncodeToString(got[:]) != sum {
		return fmt.Sprintf("/etc/pve/lxc/%d.conf changed while phoenix edited it\n", vmid), 75
	}
	oldRest, _ := splitRaw(old)
	rest, raw := splitRaw(string(stdin))
	if rest != oldRest {
		return fmt.Sprintf("fake: the new config changes more than lxc.* lines:\n%s\nwas\n%s", rest, oldRest), 1
	}
	g.Raw = raw
	return "", 0
}

// splitRaw takes the lxc.* lines out of a config's current section.
func splitRaw(conf string) (rest string, raw [][2]string) {
	var b strings.Builder
	section := false
	for line := range strings.Lines(conf) {
		section = section || strings.HasPrefix(line, "[")
		if k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ": "); ok && !section && strings.HasPrefix(k, "lxc.") {
			raw = append(raw, [2]string{k, v})
			continue
		}
		b.WriteString(line)
	}
	return b.String(), raw
}

// shellSpecial are the characters a POSIX shell acts on outside quotes
// (operators, expansions, globs, comments, brace expansion in bash). The
// fake refuses them rather than take them literally as it would have to:
// a real node's shell would run something else, so a command line that
// holds one unquoted is a quoting bug in phoenix.
const shellSpecial = "|&;<>()$`*?[]#~{}!\n"

// splitShell splits a command line into words the way sh does for the
// quoting phoenix uses: single quotes, double quotes with backslash
// escapes, and backslashes outside quotes. It expands nothing, so it
// refuses what sh would expand or treat as an operator, and a first word
// that sh would take as a variable assignment.
func splitShell(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case strings.IndexByte(shellSpecial, ch) >= 0:
			return nil, fmt.Errorf("unquoted %q at offset %d: the shell would not take it literally", ch, i)
		case ch == '=' && len(words) == 0 && !quoted && assignmentRE.MatchString(cur.String()):
			return nil, fmt.Errorf("first word %q would be a variable assignment", cur.String()+line[i:])
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord, quoted = false, false
			}
		case ch == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord, quoted = true, true
		case ch == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				} else if line[i] == '$' || line[i] == '`' {
					return nil, fmt.Errorf("%q in double quotes at offset %d: the shell would expand it", line[i], i)
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New("unterminated quoted string")
			}
			inWord, quoted = true, true
		case ch == '\\' && i+1 < len(line):
			i++
			if line[i] != '\n' { // backslash-newline is a line continuation
				cur.WriteByte(line[i])
				inWord, quoted = true, true
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
