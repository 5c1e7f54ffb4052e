package packaging

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/cli"
)

// needTool returns the path of a tool the test runs: skipped with a
// message when it is missing, failed under CI=true (.ci/run installs it).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found; .ci/run must install it", name)
	}
	t.Skipf("SKIP: %s not found, so this check did not run (Debian: apt-get install %s)", name, map[string]string{"systemd-analyze": "systemd", "make": "make"}[name])
	return ""
}

// makeInstall runs make install from the repository root into root with
// the given PREFIX, with the build outputs in a temporary folder too, and
// returns its output.
func makeInstall(t *testing.T, root, prefix string) string {
	t.Helper()
	mk := needTool(t, "make")
	build := t.TempDir()
	cmd := exec.Command(mk, "-C", "..", "install", "DESTDIR="+root, "PREFIX="+prefix,
		"BIN="+filepath.Join(build, "phoenix"), "GENDIR="+filepath.Join(build, "gen"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	return string(out)
}

// TestMakeInstall installs into a temporary root with PREFIX=/usr, as
// make deb does, and with the default /usr/local, checks every file a user
// or the package needs, then installs again over an edited env file.
func TestMakeInstall(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		zsh    string // zsh's completion folder under the prefix
	}{
		{prefix: "/usr", zsh: "share/zsh/vendor-completions"},
		{prefix: "/usr/local", zsh: "share/zsh/site-functions"},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			root := t.TempDir()
			makeInstall(t, root, tc.prefix)
			p := strings.TrimPrefix(tc.prefix, "/") + "/"

			want := []string{
				"etc/default/phoenix", // not under the prefix: the unit reads it there
				p + "bin/phoenix",
				p + "lib/systemd/system/phoenix-controller.service",
				p + "share/bash-completion/completions/phoenix",
				p + tc.zsh + "/_phoenix",
				p + "share/fish/vendor_completions.d/phoenix.fish",
				p + "share/doc/phoenix/README.md",
				p + "share/doc/phoenix/examples/lab/phoenix_lxc_configs.json",
				p + "share/doc/phoenix/examples/scripts/features",
				p + "share/doc/phoenix/examples/pve-api-hardening.conf",
				p + "share/doc/phoenix/monitoring/phoenix-rules.yml",
				p + "share/doc/phoenix/monitoring/phoenix-dashboard.json",
				p + "share/doc/phoenix/monitoring/provisioning/datasources/phoenix.yml",
				p + "share/man/man1/phoenix.1.gz",
			}
			// One man page per verb of the command tree, so a new verb is
			// checked without editing this list.
			for _, c := range cli.Command(io.Discard, io.Discard).Commands() {
				if c.IsAvailableCommand() {
					want = append(want, p+"share/man/man1/phoenix-"+c.Name()+".1.gz")
				}
			}
			for _, f := range want {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Errorf("not installed: /%s", f)
				}
			}

			bin := filepath.Join(tc.prefix, "bin", "phoenix")
			out, err := exec.Command(filepath.Join(root, bin), "version").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "version:") || strings.Contains(string(out), "unknown") {
				t.Errorf("installed phoenix version: %v\n%s", err, out)
			}

			unit := readFile(t, filepath.Join(root, p+"lib/systemd/system/phoenix-controller.service"))
			envFile := filepath.Join(root, "etc/default/phoenix")
			env := readFile(t, envFile)
			for _, problem := range unitProblems(unit, env, bin) {
				t.Error(problem)
			}

			// An admin's edits of /etc/default/phoenix survive the next install.
			edited := append(env, "PHOENIX_CONTROLLER_FLAGS=--workers 2\n"...)
			if err := os.WriteFile(envFile, edited, 0o644); err != nil {
				t.Fatal(err)
			}
			out2 := makeInstall(t, root, tc.prefix)
			if got := readFile(t, envFile); !bytes.Equal(got, edited) {
				t.Errorf("a second make install replaced the edited %s:\n%s", envFile, got)
			}
			if !strings.Contains(out2, "keeping") {
				t.Errorf("a second make install did not say it kept the env file:\n%s", out2)
			}
		})
	}
}

var (
	directive = regexp.MustCompile(`(?m)^([A-Za-z]+)=(.*)$`)
	envRef    = regexp.MustCompile(`\$\{?([A-Z_][A-Z0-9_]*)\}?`)
	envDef    = regexp.MustCompile(`(?m)^([A-Z_][A-Z0-9_]*)=`)
)

// unitProblems checks what the unit promises: the installed binary runs
// the controller, the env file is optional and defines every variable
// ExecStart uses, the state dir is systemd's, failures restart.
func unitProblems(unit, env []byte, bin string) []string {
	var problems []string
	d := map[string][]string{}
	for _, m := range directive.FindAllStringSubmatch(string(unit), -1) {
		d[m[1]] = append(d[m[1]], m[2])
	}
	for key, want := range map[string]string{
		"Type": "simple", "Restart": "on-failure", "StateDirectory": "phoenix",
		"EnvironmentFile": "-/etc/default/phoenix", "WantedBy": "multi-user.target",
	} {
		if got := d[key]; len(got) != 1 || got[0] != want {
			problems = append(problems, key+"="+strings.Join(got, ",")+", want "+want)
		}
	}
	execStart := strings.Join(d["ExecStart"], " ")
	if fields := strings.Fields(execStart); len(fields) < 2 || fields[0] != bin || fields[1] != "controller" {
		problems = append(problems, "ExecStart="+execStart+", want "+bin+" controller ...")
	}
	defined := map[string]bool{}
	for _, m := range envDef.FindAllStringSubmatch(string(env), -1) {
		defined[m[1]] = true
	}
	for _, e := range d["Environment"] {
		for _, kv := range strings.Fields(e) {
			defined[strings.SplitN(kv, "=", 2)[0]] = true
		}
	}
	for _, m := range envRef.FindAllStringSubmatch(execStart, -1) {
		if !defined[m[1]] {
			problems = append(problems, "ExecStart uses $"+m[1]+", which neither Environment= nor /etc/default/phoenix sets")
		}
	}
	return problems
}

// TestUnitVerifies runs systemd-analyze verify on the unit as make install
// writes it, alone and with the pve-api hardening drop-in, and on broken
// copies to show the check would catch them.
func TestUnitVerifies(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	tmpl := readFile(t, "phoenix-controller.service.in")
	dropIn := readFile(t, "pve-api-hardening.conf")
	// verify checks that ExecStart's binary exists; point it at a stand-in
	// (the path make install writes is checked by TestMakeInstall).
	bin := filepath.Join(t.TempDir(), "phoenix")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new string
		dropIn         bool   // with pve-api-hardening.conf, old -> new applied to it
		want           string // in the output; "": clean
	}{
		{name: "as shipped"},
		{name: "with the pve-api drop-in", dropIn: true},
		{name: "a misspelt directive in the drop-in", dropIn: true, old: "ProtectKernelLogs=yes", new: "ProtectKernelLog=yes", want: "Unknown key 'ProtectKernelLog'"},
		{name: "a misspelt directive", old: "LockPersonality=yes", new: "LockPersonalty=yes", want: "Unknown key 'LockPersonalty'"},
		{name: "a bad value", old: "KillMode=mixed", new: "KillMode=gentle", want: "kill mode"},
		{name: "a missing binary", old: "@BINDIR@/phoenix", new: "/nonexistent/phoenix", want: "/nonexistent/phoenix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unit, conf := string(tmpl), string(dropIn)
			edited := &unit
			if tc.dropIn {
				edited = &conf
			}
			if tc.old != "" {
				if !strings.Contains(*edited, tc.old) {
					t.Fatalf("%q is not in the file any more; update the test case", tc.old)
				}
				*edited = strings.ReplaceAll(*edited, tc.old, tc.new)
			}
			unit = strings.ReplaceAll(unit, "@BINDIR@/phoenix", bin)
			dir := t.TempDir()
			file := filepath.Join(dir, "phoenix-controller.service")
			if err := os.WriteFile(file, []byte(unit), 0o644); err != nil {
				t.Fatal(err)
			}
			// verify reads drop-ins from beside the unit file.
			if tc.dropIn {
				d := file + ".d"
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, "pve-api-hardening.conf"), []byte(conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// --man=no: the man page is checked by TestMakeInstall; verify
			// would look for it on this machine.
			out, err := exec.Command(analyze, "verify", "--man=no", file).CombinedOutput()
			got := strings.TrimSpace(string(out))
			if tc.want == "" {
				// verify exits 0 even for warnings, so any output is a
				// failure.
				if err != nil || got != "" {
					t.Errorf("systemd-analyze verify: %v\n%s", err, got)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("systemd-analyze verify said %q, want it to name %q", got, tc.want)
			}
		})
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
