package pve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// maxAgentInput is what qm guest exec --pass-stdin accepts.
const maxAgentInput = 1 << 20

// Run runs a script, or a health check's command, inside a running guest.
// A container gets the script and the spec with pct push and runs it with
// pct exec; a VM gets them through its guest agent and runs it with qm
// guest exec. A non-zero exit is an error carrying the output's tail.
func (h *Host) Run(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	var err error
	if kind == api.KindVM {
		err = h.waitAgent(ctx, id)
	}
	switch {
	case err != nil:
	case len(s.Command) > 0:
		err = h.runInGuest(ctx, kind, id, nil, s.Command)
	case s.Path != "" && s.OnHost:
		err = h.runOnHost(ctx, s)
	case s.Path != "" && s.Dir != "":
		err = h.runInDir(ctx, kind, id, s)
	case s.Path != "":
		err = h.runScript(ctx, kind, id, s)
	default:
		err = errors.New("neither a script path nor a command (is a scripts folder configured?)")
	}
	if err != nil {
		return fmt.Errorf("%s %s: %s %q: %w", kind, id, scriptWhat(s), s.Name, err)
	}
	return nil
}

func scriptWhat(s hypervisor.Script) string {
	if len(s.Command) > 0 {
		return string(s.Kind) + " command"
	}
	return string(s.Kind) + " script"
}

// safeNameRE is what a script name keeps in the guest's file name.
var safeNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (h *Host) runScript(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	path, interp, err := h.checkScript(s.Path)
	if err != nil {
		return err
	}
	spec := []byte(s.Spec)
	if len(spec) == 0 {
		spec = []byte("{}")
	}
	dest := "/tmp/phoenix-" + string(s.Kind) + "-" + safeNameRE.ReplaceAllString(s.Name, "_")
	specDest := dest + ".spec.json"
	run := append(append(interp, dest), specDest)

	if kind == api.KindVM {
		// No qm push: the files go through the guest agent, as the stdin of
		// install(1), which creates them private to root.
		script, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range []struct {
			data []byte
			dest string
		}{{script, dest}, {spec, specDest}} {
			if len(f.data) > maxAgentInput {
				return fmt.Errorf("%s is %d bytes; the guest agent takes at most %d", f.dest, len(f.data), maxAgentInput)
			}
			if err := h.runInGuest(ctx, kind, id, f.data, []string{"install", "-m", "0600", "/dev/stdin", f.dest}); err != nil {
				return fmt.Errorf("copy %s into the guest: %w", f.dest, err)
			}
		}
		return h.runInGuest(ctx, kind, id, nil, run)
	}

	specFile, err := writeTemp("phoenix-spec-*.json", spec)
	if err != nil {
		return err
	}
	defer os.Remove(specFile)
	for _, f := range [][2]string{{path, dest}, {specFile, specDest}} {
		// --perms 0600: the spec may hold secrets (user_config).
		argv := []string{h.opts.Pct, "push", id.String(), f[0], f[1], "--perms", "0600"}
		res, err := h.run(ctx, argv, runOpts{})
		if err != nil {
			return fmt.Errorf("pct push %s: %w", id, err)
		}
		// pct push exits 0 when its write into the container fails; it
		// prints nothing when it works.
		if out := tail(res.output); out != "" {
			return fmt.Errorf("pct push %s: `%s` exited 0 but reported an error: %s", id, formatArgv(argv), out)
		}
	}
	return h.runInGuest(ctx, kind, id, nil, run)
}

// runOnHost runs one of the old tree's host-side scripts with its
// arguments (the guest's ID, ...), as the old managers did.
func (h *Host) runOnHost(ctx context.Context, s hypervisor.Script) error {
	path, interp, err := h.checkScript(s.Path)
	if err != nil {
		return err
	}
	_, err = h.run(ctx, append(append(interp, path), s.Args...), runOpts{inGuest: true})
	return err
}

// guestDirRE is what a folder inside the guest may look like: the script
// folder is removed with rm -rf afterwards, so it must be a plain, deep
// enough path of our own.
var guestDirRE = regexp.MustCompile(`^/(tmp|var/tmp|run|root)/[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// runInDir is the old tool's way of running an application script: the
// script and the files it sources (the common utilities, the LXC config)
// are copied into one folder in the guest, the script runs from there
// with its arguments, and the folder is removed.
func (h *Host) runInDir(ctx context.Context, kind api.Kind, id api.ID, s hypervisor.Script) error {
	if !guestDirRE.MatchString(s.Dir) || strings.Contains(s.Dir, "..") {
		return fmt.Errorf("folder %q in the guest: want /tmp/<name> or similar", s.Dir)
	}
	path, _, err := h.checkScript(s.Path)
	if err != nil {
		return err
	}
	type file struct{ src, dest, perms string }
	files := []file{{path, s.Dir + "/" + filepath.Base(s.Path), "0755"}}
	for _, b := range s.Beside {
		src, _, err := h.checkScript(b)
		if err != nil {
			return err
		}
		files = append(files, file{src, s.Dir + "/" + filepath.Base(b), "0644"})
	}
	for _, d := range s.Data {
		files = append(files, file{d, s.Dir + "/" + filepath.Base(d), "0600"})
	}
	if err := h.runInGuest(ctx, kind, id, nil, []string{"mkdir", "-p", "-m", "0700", s.Dir}); err != nil {
		return fmt.Errorf("make %s in the guest: %w", s.Dir, err)
	}
	defer func() {
		// Best effort, as the old tool: a leftover folder in /tmp is not
		// worth failing a run that worked.
		_ = h.runInGuest(context.WithoutCancel(ctx), kind, id, nil, []string{"rm", "-rf", "--", s.Dir})
	}()
	for _, f := range files {
		if kind == api.KindVM {
			data, err := os.ReadFile(f.src)
			if err != nil {
				return err
			}
			if len(data) > maxAgentInput {
				return fmt.Errorf("%s is %d bytes; the guest agent takes at most %d", f.src, len(data), maxAgentInput)
			}
			if err := h.runInGuest(ctx, kind, id, data, []string{"install", "-m", f.perms, "/dev/stdin", f.dest}); err != nil {
				return fmt.Errorf("copy %s into the guest: %w", f.dest, err)
			}
			continue
		}
		argv := []string{h.opts.Pct, "push", id.String(), f.src, f.dest, "--perms", f.perms}
		if _, err := h.run(ctx, argv, runOpts{}); err != nil {
			return fmt.Errorf("pct push %s: %w", id, err)
		}
	}
	return h.runInGuest(ctx, kind, id, nil, append([]string{files[0].dest}, s.Args...))
}

// runInGuest runs command inside the guest: pct exec, whose exit code is
// the command's, or qm guest exec, which reports it in JSON.
func (h *Host) runInGuest(ctx context.Context, kind api.Kind, id api.ID, stdin []byte, command []string) error {
	if kind == api.KindLXC {
		// --keep-env 0: phoenix's own environment (credentials, proxies)
		// stays out of the container.
		argv := append([]string{h.opts.Pct, "exec", id.String(), "--keep-env", "0", "--"}, command...)
		_, err := h.run(ctx, argv, runOpts{inGuest: true})
		return err
	}
	if kind != api.KindVM {
		return fmt.Errorf("unknown guest kind %q", kind)
	}
	// qm's own wait for the command defaults to 30s; give it the whole
	// command timeout instead.
	secs := max(int(h.opts.Timeout.Seconds()), 1)
	argv := []string{h.opts.Qm, "guest", "exec", id.String()}
	if stdin != nil {
		argv = append(argv, "--pass-stdin", "1")
	}
	argv = append(append(argv, "--timeout", strconv.Itoa(secs), "--"), command...)
	res, err := h.run(ctx, argv, runOpts{stdin: stdin})
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && strings.Contains(strings.ToLower(ce.Output), "guest agent") {
			return fmt.Errorf("%w (qm guest exec needs `agent: 1` in the VM's config and qemu-guest-agent running in it)", err)
		}
		return err
	}
	reply, err := parseGuestExec(res.stdout)
	if err != nil {
		return fmt.Errorf("`%s`: cannot read its reply: %w: %s", formatArgv(argv), err, tail(res.stdout))
	}
	output := tail([]byte(reply.OutData + reply.ErrData))
	switch {
	case reply.Exited == 0:
		return fmt.Errorf("`%s`: the command was still running after %ds", formatArgv(argv), secs)
	case reply.ExitCode != nil && *reply.ExitCode != 0:
		return &CommandError{Argv: argv, ExitCode: *reply.ExitCode, Output: output, Tries: 1}
	case reply.ExitCode == nil:
		sig := -1
		if reply.Signal != nil {
			sig = *reply.Signal
		}
		return fmt.Errorf("`%s`: the command was killed by signal %d: %s", formatArgv(argv), sig, output)
	}
	return nil
}

// agentPoll is the pause between guest agent pings.
var agentPoll = 2 * time.Second

// waitAgent pings the VM's guest agent (`qm guest cmd <id> ping`) until it
// answers or AgentWait runs out: a VM that was just started takes a while
// to boot its agent, and qm guest exec fails until then.
func (h *Host) waitAgent(ctx context.Context, id api.ID) error {
	deadline := time.Now().Add(h.opts.AgentWait)
	for {
		_, err := h.run(ctx, []string{h.opts.Qm, "guest", "cmd", id.String(), "ping"}, runOpts{})
		if err == nil {
			return nil
		}
		// Only an agent that does not answer yet is waited for; no agent
		// configured, or a stopped VM, fails at once.
		var ce *CommandError
		if !errors.As(err, &ce) || !strings.Contains(ce.Output, "guest agent is not running") || time.Now().After(deadline) {
			return fmt.Errorf("the QEMU guest agent of VM %s did not answer within %s (install qemu-guest-agent through cloud-init and set agent: 1): %w",
				id, h.opts.AgentWait, err)
		}
		if werr := hypervisor.Sleep(ctx, min(agentPoll, time.Until(deadline)+time.Millisecond)); werr != nil {
			return fmt.Errorf("waiting for the QEMU guest agent of VM %s: %w", id, werr)
		}
	}
}

// guestExecReply is qm guest exec's JSON answer.
type guestExecReply struct {
	Exited   int    `json:"exited"`
	ExitCode *int   `json:"exitcode"`
	Signal   *int   `json:"signal"`
	OutData  string `json:"out-data"`
	ErrData  string `json:"err-data"`
}

func parseGuestExec(out []byte) (*guestExecReply, error) {
	var reply guestExecReply
	if err := json.Unmarshal(out, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}

// setupStepRE is a setup step name: a file name in setup/, without .sh.
var setupStepRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// RunSetupStep runs <ScriptsDir>/setup/<step>.sh on the host, with the
// step's settings as JSON in a temp file given as its first argument.
func (h *Host) RunSetupStep(ctx context.Context, step string, settings json.RawMessage) error {
	if err := h.runSetupStep(ctx, step, settings); err != nil {
		return fmt.Errorf("setup step %q: %w", step, err)
	}
	return nil
}

func (h *Host) runSetupStep(ctx context.Context, step string, settings json.RawMessage) error {
	if !setupStepRE.MatchString(step) {
		return errors.New("not a step name: want letters, digits, '.', '_' or '-'")
	}
	path, interp, err := h.checkScript(filepath.Join(h.opts.ScriptsDir, "setup", step+".sh"))
	if err != nil {
		return err
	}
	if len(settings) == 0 {
		settings = json.RawMessage("{}")
	}
	file, err := writeTemp("phoenix-setup-*.json", settings)
	if err != nil {
		return err
	}
	defer os.Remove(file)
	_, err = h.run(ctx, append(append(interp, path), file), runOpts{inGuest: true})
	return err
}

// checkScript returns the real path of a script and the interpreter to run
// it with, after making sure it is one of ours: inside the scripts folder
// once symlinks are resolved, a regular file, and neither it nor a folder
// between it and the scripts folder writable by group or others. Scripts
// run as root on the host or in a guest; whoever can change one owns both.
// Checking the folders too means the file cannot be swapped after the check.
func (h *Host) checkScript(path string) (string, []string, error) {
	if h.opts.ScriptsDir == "" {
		return "", nil, fmt.Errorf("script %s: no scripts folder configured", path)
	}
	root, err := realPath(h.opts.ScriptsDir)
	if err != nil {
		return "", nil, fmt.Errorf("scripts folder: %w", err)
	}
	real, err := realPath(path)
	if err != nil {
		return "", nil, fmt.Errorf("script: %w", err)
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || !filepath.IsLocal(rel) {
		return "", nil, fmt.Errorf("script %s resolves to %s, outside the scripts folder %s", path, real, root)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", nil, fmt.Errorf("script: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", nil, fmt.Errorf("script %s is not a regular file", real)
	}
	for p := real; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return "", nil, fmt.Errorf("script: %w", err)
		}
		if st.Mode().Perm()&0o022 != 0 {
			return "", nil, fmt.Errorf("script %s: %s is writable by group or others (mode %04o); refusing to run it as root (chmod go-w %s)",
				path, p, st.Mode().Perm(), p)
		}
		if p == root || p == filepath.Dir(p) {
			break
		}
	}
	interp, err := interpreter(real)
	if err != nil {
		return "", nil, err
	}
	return real, interp, nil
}

func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

// interpreter reads a script's #! line, as the kernel would: the program
// and at most one argument (the rest of the line). Without one, sh.
// Running the interpreter explicitly means scripts need no exec bit, and a
// bash script still gets bash where sh is dash.
func interpreter(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return []string{"sh"}, nil
	}
	rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "#!")
	if !ok {
		return []string{"sh"}, nil
	}
	rest = strings.TrimLeft(rest, " \t")
	prog, arg := rest, ""
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		prog, arg = rest[:i], rest[i+1:]
	}
	if prog == "" {
		return []string{"sh"}, nil
	}
	if arg = strings.TrimSpace(arg); arg != "" {
		return []string{prog, arg}, nil
	}
	return []string{prog}, nil
}

// writeTemp writes data to a new file readable only by us.
func writeTemp(pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// RunOnHost runs a script of the scripts folder on the host with args (the
// old tool's host setup scripts), under the same checks as every script.
func (h *Host) RunOnHost(ctx context.Context, path string, args []string) error {
	if err := h.runOnHost(ctx, hypervisor.Script{Path: path, Args: args}); err != nil {
		return fmt.Errorf("host script %s: %w", filepath.Base(path), err)
	}
	return nil
}
