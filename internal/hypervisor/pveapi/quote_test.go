package pveapi

import (
	"bytes"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// hostileArgs are argument values that would run something else, or
// split, vanish or change, if they reached a shell unquoted.
var hostileArgs = []string{
	"", " ", "a b", "\t", "a\nb", "; rm -rf /tmp/phoenix-quote-test", "$(touch /tmp/phoenix-quote-test)",
	"`id`", "${HOME}", "$HOME", "'", "''", `"`, `\`, `\'`, `it's "quoted"`, "a'b'c", "*", "?", "[a]", "~", "~root",
	"#comment", "a #b", "{a,b}", "!", "!!", "a&&b", "a|b", "a>b", "<b", "(a)", "--", "-n", "-e", "%s", "x=y",
	"if", "then", "done", "é€😀", "\x01\x7f", "\r\n", "trailing\\",
}

// shells are the shells a node may hand a command line to: root's login
// shell on Proxmox is bash, and sh is the POSIX baseline.
func shells(t *testing.T) []string {
	var out []string
	for _, sh := range []string{"sh", "bash", "dash"} {
		if _, err := exec.LookPath(sh); err == nil {
			out = append(out, sh)
		}
	}
	if len(out) == 0 {
		t.Skip("no shell to check against")
	}
	return out
}

// roundTrip runs argv's command line through sh -c with printf printing
// each argument NUL-terminated, and returns the arguments it printed.
func roundTrip(t testing.TB, sh string, args []string) []string {
	line, err := commandLine(append([]string{"printf", `%s\0`}, args...))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "-c", line)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s -c %q: %v: %s", sh, line, err, stderr.String())
	}
	got := strings.Split(string(out), "\x00")
	return got[:len(got)-1]
}

func TestCommandLine_shellGetsExactlyTheArguments(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(sh, func(t *testing.T) {
			if got := roundTrip(t, sh, hostileArgs); !reflect.DeepEqual(got, hostileArgs) {
				t.Errorf("%s saw\n%q\nwant\n%q", sh, got, hostileArgs)
			}
			for _, a := range hostileArgs {
				if got := roundTrip(t, sh, []string{a}); len(got) != 1 || got[0] != a {
					t.Errorf("%q came through as %q", a, got)
				}
			}
		})
	}
}

// TestCommandLine_firstWordIsACommand: a first word that a shell would
// read as an assignment or as syntax is run as a command (not found: 127).
func TestCommandLine_firstWordIsACommand(t *testing.T) {
	for _, sh := range shells(t) {
		for _, first := range []string{"FOO=1", "PATH=/nowhere", "if", "while", "!", "{", "#x", "a;b"} {
			line, err := commandLine([]string{first, "true"})
			if err != nil {
				t.Fatal(err)
			}
			err = exec.Command(sh, "-c", line).Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 127 {
				t.Errorf("%s -c %q: %v; want exit 127 (command not found)", sh, line, err)
			}
		}
	}
}

func TestCommandLine_refusesNUL(t *testing.T) {
	if line, err := commandLine([]string{"echo", "a\x00; reboot"}); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("commandLine with a NUL = %q, %v", line, err)
	}
}

func FuzzCommandLine(f *testing.F) {
	if _, err := exec.LookPath("sh"); err != nil {
		f.Skip("no sh")
	}
	for _, a := range hostileArgs {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, a string) {
		if strings.IndexByte(a, 0) >= 0 {
			if _, err := commandLine([]string{"x", a}); err == nil {
				t.Fatal("NUL accepted")
			}
			return
		}
		if got := roundTrip(t, "sh", []string{a}); len(got) != 1 || got[0] != a {
			t.Fatalf("%q came through as %q", a, got)
		}
	})
}
