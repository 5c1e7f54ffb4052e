package pve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Main runs one invocation of the fake: argv[0]'s base name (or argv[1])
// picks pct or qm. It returns the exit code.
func Main(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(argv, stdin, stdout, stderr)
}

// exitError ends the program with code, printing msg (when set) on stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// fail is a failed task: exit 255 with the message on stderr, as pct and qm.
func fail(format string, args ...any) error {
	return &exitError{code: 255, msg: fmt.Sprintf(format, args...)}
}

// config is read from the environment.
type config struct {
	state, log, node string
	pveEtc           string
	confDir, qemuDir string
	lockDir          string
	version          pveVersion
	delay            time.Duration
	agentDelay       time.Duration
	exit0Fail        string
	storages         map[string]string // storage ID to type
	cloneHold        time.Duration
	fail, failMsg    string
	failExec         string
	failExecCode     int
	hang             string
	imageSize        string
	stdin            io.Reader
	stdout, stderr   io.Writer
	tool             string // pct or qm
}

func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	tool := filepath.Base(argv[0])
	args := argv[1:]
	if tool != "pct" && tool != "qm" {
		if len(args) == 0 || (args[0] != "pct" && args[0] != "qm") {
			fmt.Fprintln(stderr, "usage: fakepve pct|qm ARGS... (or install it as pct and qm)")
			return 2
		}
		tool, args = args[0], args[1:]
	}
	c, err := loadConfig(tool)
	if err != nil {
		fmt.Fprintln(stderr, "fakepve:", err)
		return 2
	}
	c.stdin, c.stdout, c.stderr = stdin, stdout, stderr
	if err := c.logArgv(args); err != nil {
		fmt.Fprintln(stderr, "fakepve: log:", err)
		return 2
	}
	f := &fake{config: c}
	err = f.main(args)
	f.releaseAll()
	if err == nil {
		return 0
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(stderr, ex.msg)
		}
		return ex.code
	}
	fmt.Fprintln(stderr, err)
	return 255
}

func loadConfig(tool string) (*config, error) {
	c := &config{
		tool:         tool,
		state:        os.Getenv("FAKEPVE_STATE"),
		log:          os.Getenv("FAKEPVE_LOG"),
		node:         envOr("FAKEPVE_NODE", "pve"),
		fail:         os.Getenv("FAKEPVE_FAIL"),
		failMsg:      os.Getenv("FAKEPVE_FAIL_MSG"),
		failExec:     os.Getenv("FAKEPVE_FAIL_EXEC"),
		failExecCode: 1,
		hang:         os.Getenv("FAKEPVE_HANG"),
		imageSize:    envOr("FAKEPVE_IMAGE_SIZE", "3584M"),
	}
	if c.state == "" {
		return nil, errors.New("FAKEPVE_STATE is not set")
	}
	c.pveEtc = envOr("FAKEPVE_PVE_ETC", filepath.Join(c.state, "etc", "pve"))
	c.confDir = filepath.Join(c.pveEtc, "lxc")
	c.qemuDir = filepath.Join(c.pveEtc, "qemu-server")
	c.exit0Fail = os.Getenv("FAKEPVE_EXIT0_FAIL")
	var err error
	if c.version, err = parseVersion(envOr("FAKEPVE_VERSION", "9.0")); err != nil {
		return nil, fmt.Errorf("FAKEPVE_VERSION: %w", err)
	}
	for _, d := range []struct {
		env string
		to  *time.Duration
	}{{"FAKEPVE_DELAY", &c.delay}, {"FAKEPVE_AGENT_DELAY", &c.agentDelay}} {
		if v := os.Getenv(d.env); v != "" {
			if *d.to, err = time.ParseDuration(v); err != nil {
				return nil, fmt.Errorf("%s: %w", d.env, err)
			}
		}
	}
	if c.storages, err = parseStorages(os.Getenv("FAKEPVE_STORAGE")); err != nil {
		return nil, fmt.Errorf("FAKEPVE_STORAGE: %w", err)
	}
	c.lockDir = envOr("FAKEPVE_LXC_LOCK_DIR", filepath.Join(c.state, "run", "lock", "lxc"))
	if v := os.Getenv("FAKEPVE_CLONE_HOLD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("FAKEPVE_CLONE_HOLD: %w", err)
		}
		c.cloneHold = d
	}
	if v := os.Getenv("FAKEPVE_FAIL_EXEC_CODE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("FAKEPVE_FAIL_EXEC_CODE: %w", err)
		}
		c.failExecCode = n
	}
	if _, err := parseSize(c.imageSize); err != nil {
		return nil, fmt.Errorf("FAKEPVE_IMAGE_SIZE: %w", err)
	}
	for _, d := range []string{filepath.Join(c.state, "guests"), c.confDir, c.qemuDir, c.lockDir, filepath.Join(c.pveEtc, "firewall")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := c.writeStorageCfg(); err != nil {
		return nil, err
	}
	return c, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// logArgv appends {"tool":..,"argv":[..]} to FAKEPVE_LOG in one write, so
// lines of concurrent invocations do not mix.
func (c *config) logArgv(args []string) error {
	if c.log == "" {
		return nil
	}
	line, err := json.Marshal(struct {
		Tool string   `json:"tool"`
		Argv []string `json:"argv"`
	}{c.tool, args})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(c.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// matches reports whether a FAKEPVE_FAIL/FAKEPVE_HANG list names the
// subcommand, and the count given with it (0: always).
func matches(list, tool, sub string) (entry string, count int, ok bool) {
	for e := range strings.SplitSeq(list, ",") {
		e = strings.TrimSpace(e)
		name, n, _ := strings.Cut(e, ":")
		if name == sub || name == tool+" "+sub {
			count, _ = strconv.Atoi(n)
			return e, count, true
		}
	}
	return "", 0, false
}

// main runs one invocation: hang or fail when told to, then the subcommand.
func (f *fake) main(args []string) error {
	if len(args) == 0 {
		return fail("ERROR: no command specified\nUSAGE: %s <COMMAND> [ARGS] [OPTIONS]", f.tool)
	}
	sub, rest := args[0], args[1:]
	if f.tool == "qm" && (sub == "guest" || sub == "disk") && len(rest) > 0 {
		sub, rest = sub+" "+rest[0], rest[1:]
	}
	if sub == "importdisk" {
		sub = "disk import"
	}
	// What a call of the real Perl tools costs, at least.
	time.Sleep(f.delay)
	if _, _, ok := matches(f.hang, f.tool, sub); ok && sub != "create" && sub != "clone" {
		// Until killed, like a task stuck on storage. create and clone
		// hang later, once they locked the new guest (hangLocked).
		time.Sleep(1 << 62)
	}
	if err := f.lockState(); err != nil {
		return err
	}
	if err := f.injectedFailure(sub, rest); err != nil {
		return err
	}
	cmd, ok := commands[sub]
	if !ok {
		return fail("ERROR: unknown command '%s %s'\nUSAGE: %s <COMMAND> [ARGS] [OPTIONS]", f.tool, strings.Join(args, " "), f.tool)
	}
	if cmd.only != "" && cmd.only != f.tool {
		return fail("ERROR: unknown command '%s %s'", f.tool, sub)
	}
	var known func(string) bool
	if ep := cmd.endpoint[f.tool]; ep != "" {
		known = f.endpointOpts(ep, cmd.cliOnly)
	} else {
		known = cmd.opts(f.tool)
	}
	cl, err := parseArgs(rest, known)
	if err != nil {
		return err
	}
	if len(cl.pos) < cmd.npos {
		return fail("400 not enough arguments\n%s %s %s", f.tool, sub, cmd.usage)
	}
	if ep := cmd.endpoint[f.tool]; ep != "" {
		if err := f.checkSchema(ep, cl, cmd.posNames, cmd.cliOnly); err != nil {
			return fail("%s\n%s %s %s", err, f.tool, sub, cmd.usage)
		}
	}
	if msg, ok := f.exit0Failure(sub, rest); ok {
		// The task failed, but the tool still exits 0: only stderr says so.
		fmt.Fprintln(f.stderr, msg)
		return nil
	}
	return cmd.run(f, cl)
}

// hangLocked hangs create and clone when FAKEPVE_HANG names them, after
// they wrote the new guest's config holding only its lock, as Proxmox
// does first (create_and_lock_config): a task killed there leaves that
// config, locked, and every later command refuses the guest.
func (f *fake) hangLocked(sub string) {
	if _, _, ok := matches(f.hang, f.tool, sub); ok {
		f.releaseAll()
		time.Sleep(1 << 62)
	}
}

// injectedFailure fails the subcommand when FAKEPVE_FAIL names it, at most
// the given number of times over all invocations.
func (f *fake) injectedFailure(sub string, args []string) error {
	entry, count, ok := matches(f.fail, f.tool, sub)
	if !ok {
		return nil
	}
	path := filepath.Join(f.state, "faults.json")
	fired := map[string]int{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, &fired); err != nil {
			return fmt.Errorf("fakepve: %s: %w", path, err)
		}
	}
	if count > 0 && fired[entry] >= count {
		return nil
	}
	fired[entry]++
	data, _ := json.Marshal(fired)
	if err := writeFile(path, data); err != nil {
		return err
	}
	msg := f.failMsg
	if msg == "" {
		msg = fmt.Sprintf("fakepve: injected failure of '%s %s' (FAKEPVE_FAIL)", f.tool, sub)
	}
	id := ""
	if len(args) > 0 {
		id = args[0]
	}
	return fail("%s", strings.ReplaceAll(msg, "{id}", id))
}
