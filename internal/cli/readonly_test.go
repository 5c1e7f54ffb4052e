package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// cliEnv carries the arguments of TestHelperCLI, separated by the unit separator (0x1f).
const cliEnv = "PHOENIX_TEST_CLI_ARGS"

// TestHelperCLI is phoenix itself when the test binary is started again by
// asUser: it runs the CLI with the arguments in cliEnv and exits with its
// code.
func TestHelperCLI(t *testing.T) {
	args := os.Getenv(cliEnv)
	if args == "" {
		t.Skip("only run by asUser")
	}
	os.Exit(Run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
}

// asUser runs phoenix (the test binary at exe) as uid:gid.
func asUser(t *testing.T, exe string, uid, gid uint32, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestHelperCLI$")
	cmd.Env = append(os.Environ(), cliEnv+"="+strings.Join(args, "\x1f"), "HOME=/nonexistent")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run as %d: %v", uid, err)
	}
	return code, out.String()
}

// contents lists every entry under dir with its mode, mtime and a hash of
// its bytes, to show that nothing was written.
func contents(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s error %v\n", p, err)
			return nil
		}
		fi, _ := d.Info()
		sum := ""
		if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(p)
			sum = fmt.Sprintf("%x", sha256.Sum256(data))
		}
		fmt.Fprintf(&b, "%s %v %s %s\n", p, fi.Mode(), fi.ModTime(), sum)
		return nil
	})
	return b.String()
}

// chmodTree takes write permission away from (or gives it back to) the
// owner of every folder and file under dir.
func chmodTree(t *testing.T, dir string, write bool) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, _ := d.Info()
		m := fi.Mode().Perm() &^ 0o222
		if write {
			m |= 0o200
		}
		os.Chmod(p, m)
		return nil
	})
}

// Read-only verbs work, and write nothing, on a read-only state dir that
// holds a simulated node, run by a user who really cannot write it (root
// ignores permissions, so as root the test runs phoenix as nobody).
func TestReadOnlyVerbs_readOnlyStateDirNotRoot(t *testing.T) {
	base, err := os.MkdirTemp("", "phoenix-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		chmodTree(t, base, true)
		os.RemoveAll(base)
	})
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(base, "etc")
	state := filepath.Join(base, "state")
	h := newHarness(t, smallLab)
	if err := os.CopyFS(cfg, os.DirFS(h.cfgDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config-dir", cfg, "--state-dir", state, "--backend", "sim"}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		return asUser(t, exe, uid, gid, append(common, args...)...)
	}
	if os.Geteuid() == 0 {
		uid, gid = 65534, 65534
		// nobody must reach the binary and the config files.
		bin := filepath.Join(base, "phoenix.test")
		src, err := os.Open(exe)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		dst.Close()
		exe = bin
		filepath.WalkDir(cfg, func(p string, d fs.DirEntry, err error) error {
			if d.IsDir() {
				return os.Chmod(p, 0o755)
			}
			return os.Chmod(p, 0o644)
		})
		if err := os.Chown(state, int(uid), int(gid)); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := run("create", "941"); code != 0 {
		t.Fatalf("create 941 as uid %d: exit %d\n%s", uid, code, out)
	}
	chmodTree(t, state, false)
	before := contents(t, state)
	for _, args := range [][]string{
		{"status"}, {"status", "941"}, {"graph"}, {"validate"},
		{"create", "941", "--dry-run"}, {"converge", "941", "--dry-run"}, {"LetsGo", "--dry-run"}, {"delete", "941", "--dry-run"},
	} {
		code, out := run(args...)
		if code != 0 {
			t.Errorf("%v as uid %d on a read-only state dir: exit %d\n%s", args, uid, code, out)
		}
		if args[0] == "status" && !strings.Contains(out, "941") {
			t.Errorf("%v does not show 941:\n%s", args, out)
		}
	}
	if after := contents(t, state); after != before {
		t.Errorf("a read-only verb changed the state dir:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A verb that changes guests is refused with an error, not a crash.
	if code, out := run("start", "941"); code == 0 {
		t.Errorf("start on a read-only state dir: exit 0\n%s", out)
	}
}
