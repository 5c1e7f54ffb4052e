package guest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

// Checked is a script that passed Check.
type Checked struct {
	// Real is the script's path on this host with every symlink resolved.
	Real string
	// Rel is Real relative to the scripts folder: where the script lives
	// under that folder on any node that keeps the same tree.
	Rel string
	// Interp is the program (and at most one argument) its #! line names;
	// sh without one.
	Interp []string
}

// Check makes sure path is one of ours before it runs as root, on the host
// or in a guest (whoever can change it owns both): inside the scripts
// folder once symlinks are resolved, a regular file, and neither it nor a
// folder between it and the scripts folder writable by group or others.
// Checking the folders too means the file cannot be swapped after the
// check.
func Check(scriptsDir, path string) (*Checked, error) {
	if scriptsDir == "" {
		return nil, fmt.Errorf("script %s: no scripts folder configured (--scripts-dir)", path)
	}
	root, err := realPath(scriptsDir)
	if err != nil {
		return nil, fmt.Errorf("scripts folder: %w", err)
	}
	real, err := realPath(path)
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("script %s resolves to %s, outside the scripts folder %s", path, real, root)
	}
	st, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("script %s is not a regular file", real)
	}
	for p := real; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("script: %w", err)
		}
		if st.Mode().Perm()&0o022 != 0 {
			return nil, fmt.Errorf("script %s: %s is writable by group or others (mode %04o); refusing to run it as root (chmod go-w %s)",
				path, p, st.Mode().Perm(), p)
		}
		if p == root || p == filepath.Dir(p) {
			break
		}
	}
	interp, err := interpreterOf(real)
	if err != nil {
		return nil, err
	}
	return &Checked{Real: real, Rel: rel, Interp: interp}, nil
}

func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}

func interpreterOf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("script: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return []string{"sh"}, nil
	}
	return Interpreter(line), nil
}

// Interpreter reads a script's first line as the kernel reads a #! line:
// the program and at most one argument (the rest of the line). Without
// one, sh. Running the interpreter explicitly means scripts need no exec
// bit, and a bash script still gets bash where sh is dash.
func Interpreter(firstLine string) []string {
	rest, ok := strings.CutPrefix(strings.TrimRight(firstLine, "\r\n"), "#!")
	if !ok {
		return []string{"sh"}
	}
	rest = strings.TrimLeft(rest, " \t")
	prog, arg := rest, ""
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		prog, arg = rest[:i], rest[i+1:]
	}
	if prog == "" {
		return []string{"sh"}
	}
	if arg = strings.TrimSpace(arg); arg != "" {
		return []string{prog, arg}
	}
	return []string{prog}
}

// safeNameRE is what a script name keeps in the guest's file name.
var safeNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Dest is where a script goes in the guest: one fixed file per kind and
// name, so a rerun overwrites rather than piles up. Its spec goes beside
// it, at Dest + SpecSuffix.
func Dest(s hypervisor.Script) string {
	return "/tmp/phoenix-" + string(s.Kind) + "-" + safeNameRE.ReplaceAllString(s.Name, "_")
}

// SpecSuffix follows Dest for the file holding the guest's JSON spec.
const SpecSuffix = ".spec.json"

// dirRE is what a folder for the old tool's way may look like: it is
// removed with rm -rf afterwards, so it must be a plain, deep enough path
// of our own.
var dirRE = regexp.MustCompile(`^/(tmp|var/tmp|run|root)/[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// CheckDir refuses a folder in the guest that is not dirRE's kind.
func CheckDir(dir string) error {
	if !dirRE.MatchString(dir) || strings.Contains(dir, "..") {
		return fmt.Errorf("folder %q in the guest: want /tmp/<name> or similar", dir)
	}
	return nil
}

// What names a script for messages: "features script", "health command".
func What(s hypervisor.Script) string {
	if len(s.Command) > 0 {
		return string(s.Kind) + " command"
	}
	return string(s.Kind) + " script"
}
