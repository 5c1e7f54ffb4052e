package fakepvetest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	fakepve "github.com/phoenix-hypervisor/phoenix/internal/fake/pve"
)

// selfExec is set by Main: the test binary then is the fake, run under the
// names pct and qm.
var selfExec bool

// Main is a TestMain for packages whose tests run the fake: when the test
// binary was started as pct or qm (through the links Install makes), it is
// the fake for that one invocation; otherwise it runs the tests.
//
//	func TestMain(m *testing.M) { fakepvetest.Main(m) }
func Main(m *testing.M) {
	if tool := filepath.Base(os.Args[0]); tool == "pct" || tool == "qm" {
		os.Exit(fakepve.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	selfExec = true
	os.Exit(m.Run())
}

// envVars are the fake's settings; Install clears the ones it does not
// set, so a developer's environment cannot change a test.
var envVars = []string{
	"FAKEPVE_NODE", "FAKEPVE_LXC_LOCK_DIR", "FAKEPVE_CLONE_HOLD",
	"FAKEPVE_FAIL", "FAKEPVE_FAIL_MSG", "FAKEPVE_FAIL_EXEC", "FAKEPVE_FAIL_EXEC_CODE",
	"FAKEPVE_HANG", "FAKEPVE_IMAGE_SIZE", "FAKEPVE_PVE_ETC", "FAKEPVE_VERSION", "FAKEPVE_DELAY",
	"FAKEPVE_AGENT_DELAY", "FAKEPVE_EXIT0_FAIL", "FAKEPVE_STORAGE",
}

// Install puts the fake in a new folder as pct and qm (symlinks to one
// binary: it picks its role from argv[0]) and points it, through the
// environment of the test process (tb.Setenv, so not for parallel tests),
// at a fresh state folder and argv log. Commands the test runs inherit
// that environment; set more FAKEPVE_* variables with tb.Setenv.
//
// The container configs the fake writes are in LXCConfDir(stateDir), its
// config locks in LXCLockDir(stateDir).
func Install(tb testing.TB) (binDir, stateDir, logPath string) {
	tb.Helper()
	binDir = tb.TempDir()
	stateDir = tb.TempDir()
	logPath = filepath.Join(tb.TempDir(), "argv.log")
	if !selfExec {
		tb.Fatal("fakepvetest.Install: the package's TestMain must call fakepvetest.Main(m), so that the test binary itself plays pct and qm")
	}
	target, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range []string{"pct", "qm"} {
		if err := os.Symlink(target, filepath.Join(binDir, name)); err != nil {
			tb.Fatal(err)
		}
	}
	for _, k := range envVars {
		tb.Setenv(k, "")
	}
	tb.Setenv("FAKEPVE_STATE", stateDir)
	tb.Setenv("FAKEPVE_LOG", logPath)
	return binDir, stateDir, logPath
}

// PVEEtc is the fake's Proxmox cluster file system folder (a real host's
// /etc/pve): it writes every guest's config under lxc/ and qemu-server/.
func PVEEtc(stateDir string) string { return filepath.Join(stateDir, "etc", "pve") }

// LXCConfDir is where the fake keeps container configs (<id>.conf), the
// folder to give internal/hypervisor/pve as Options.LXCConfDir.
func LXCConfDir(stateDir string) string { return filepath.Join(stateDir, "etc", "pve", "lxc") }

// LXCLockDir is where the fake takes container config locks, the folder
// to give internal/hypervisor/pve as Options.LXCLockDir.
func LXCLockDir(stateDir string) string { return filepath.Join(stateDir, "run", "lock", "lxc") }

// Call is one invocation of the fake.
type Call struct {
	// Tool is "pct" or "qm".
	Tool string `json:"tool"`
	// Argv is the arguments after the tool name.
	Argv []string `json:"argv"`
}

// ReadLog returns the calls logged so far, oldest first; none when the
// log does not exist yet.
func ReadLog(tb testing.TB, logPath string) []Call {
	tb.Helper()
	data, err := os.ReadFile(logPath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	var calls []Call
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var c Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			tb.Fatalf("%s: %v", logPath, err)
		}
		calls = append(calls, c)
	}
	return calls
}
