// Command mutate runs gremlins (mutation testing) on the packages that
// decide what happens to a host, one package at a time, and reports per
// package the mutants the tests killed and those that lived, with each
// survivor either explained as equivalent (hack/mutate/equivalent.txt) or
// flagged. `make mutate` runs it on everything and writes docs/mutation.md;
// CI runs it with -diff on the lines a change touches, within -budget.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// packages are the ones that decide what happens to a host. only, when
// set, limits a package to those files: of the controller, the choice of
// reconciler and what a Result asks of the loop, and the prune policy, not
// its HTTP server or watcher (the per-guest decision is in reconcilers).
//
// gremlins walks into subfolders: internal/desired's run covers its
// generator, internal/desired/gen, judged by gen's tests. fields_gen.go,
// which gen writes, stays in the run but offers no mutant (tables of
// decoder calls, no operator), and a hand edit of it fails
// TestFieldsGen_upToDate whatever it changes, so it is the generator that
// is worth mutating.
var packages = []struct {
	dir  string
	only []string
}{
	{dir: "api", only: []string{"graph.go", "types.go", "status.go"}},
	{dir: "internal/status"},
	{dir: "internal/plan"},
	{dir: "reconcilers"},
	{dir: "internal/desired"},
	{dir: "controller", only: []string{"reconcile.go", "prune.go"}},
}

func main() {
	diff := flag.String("diff", "", "only mutants on lines changed since this git ref (gremlins --diff); packages with no changed Go file are not run")
	budget := flag.Duration("budget", 0, "stop starting packages once this much time has passed (0: no limit); a package cut short is reported NOT RUN")
	out := flag.String("out", "", "write the report as markdown to this file as well (make mutate: docs/mutation.md)")
	only := flag.String("pkgs", "", "comma-separated package folders to run instead of all (e.g. internal/plan,api)")
	threshold := flag.Float64("threshold", 85, "minimum efficacy (%) per package; below it the exit status is 1")
	gremlins := flag.String("gremlins", "gremlins", "the gremlins binary")
	logs := flag.String("logs", "", "read gremlins' output from <dir>/<package with / as _>.log instead of running it (to render the report again: -logs .cache/mutate)")
	src := flag.String("src", ".", "the source tree the mutants' line numbers refer to (with -logs: a checkout of the commit gremlins ran on)")
	equiv := flag.String("equivalent", "hack/mutate/equivalent.txt", "survivors known to be equivalent, with the reason")
	flag.Parse()
	root = *src

	known, err := readEquivalent(*equiv)
	if err != nil {
		fatal(err)
	}
	var changed map[string]bool
	if *diff != "" {
		if changed, err = changedFiles(*diff); err != nil {
			fatal(err)
		}
	}
	want := map[string]bool{}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.Trim(strings.TrimSpace(p), "./"); p != "" {
			want[p] = true
		}
	}
	ctx := context.Background()
	var cancel context.CancelFunc = func() {}
	if *budget > 0 {
		ctx, cancel = context.WithTimeout(ctx, *budget)
	}
	defer cancel()

	var results []result
	for _, p := range packages {
		if len(want) > 0 && !want[p.dir] {
			continue
		}
		r := result{pkg: p.dir}
		switch {
		case changed != nil && !touches(changed, p.dir, p.only):
			r.note = "no change"
		case *logs != "":
			f, err := os.Open(logFile(*logs, p.dir))
			if errors.Is(err, os.ErrNotExist) {
				r.note = "NOT RUN"
				break
			}
			if err != nil {
				fatal(err)
			}
			r = parse(p.dir, f)
			f.Close()
			if !r.complete {
				r.note = "PARTIAL: the run was stopped"
			}
		case ctx.Err() != nil:
			r.note = "NOT RUN: budget spent"
		default:
			fmt.Fprintf(os.Stderr, "mutate: %s ...\n", p.dir)
			r, err = run(ctx, *gremlins, p.dir, p.only, *diff, logFile(".cache/mutate", p.dir))
			if err != nil {
				fatal(err)
			}
		}
		r.explain(known)
		results = append(results, r)
	}
	report := render(results, *diff, *threshold)
	fmt.Print(report)
	if *out != "" {
		made := fmt.Sprintf("Made by `go run ./hack/mutate %s` on %s.\n\n", strings.Join(os.Args[1:], " "), time.Now().UTC().Format("2006-01-02"))
		if err := writeAtomic(*out, []byte(mdHeader+made+report)); err != nil {
			fatal(err)
		}
	}
	if failed(results, *threshold, *diff != "") {
		os.Exit(1)
	}
}

const mdHeader = `# Mutation testing

` + "`make mutate`" + ` runs [gremlins](https://github.com/go-gremlins/gremlins) on the packages
that decide what happens to a host: each mutant is a small deliberate bug (a
negated condition, ` + "`<`" + ` for ` + "`<=`" + `, ` + "`-`" + ` for ` + "`+`" + `) on a line the
tests cover, and the package's tests must fail on it. Efficacy is
killed / (killed + lived); a mutant that made the tests hang past gremlins'
timeout counts as neither and is listed. Each survivor is either killed by a
new test or explained in ` + "`hack/mutate/equivalent.txt`" + ` (a change no user
can notice). This file is generated; rerun ` + "`make mutate`" + ` to refresh it.

`

type mutant struct {
	File, Type, Status string
	Line, Col          int
	Source, Reason     string
}

type result struct {
	pkg                         string
	killed, lived, timedOut, nc int
	survivors, hung             []mutant
	elapsed                     time.Duration
	note                        string
	complete                    bool // gremlins printed its summary
}

func (r result) efficacy() float64 {
	if r.killed+r.lived == 0 {
		return 100
	}
	return 100 * float64(r.killed) / float64(r.killed+r.lived)
}

func (r *result) explain(known []equivalent) {
	for i := range r.survivors {
		s := &r.survivors[i]
		for _, e := range known {
			if e.file == s.File && e.typ == s.Type && strings.Contains(s.Source, e.code) {
				s.Reason = e.reason
				break
			}
		}
	}
}

// run runs gremlins on one package and reads the verdicts it prints, one
// line per mutant, as they come: a run cut short by the budget still
// reports the mutants it finished.
func run(ctx context.Context, bin, dir string, only []string, diff, save string) (result, error) {
	// Workers 1: the machines this runs on are shared. The coefficient:
	// on 2 loaded cores most mutants otherwise merely time out.
	args := []string{"unleash", "--workers", "1", "--timeout-coefficient", "20"}
	if diff != "" {
		args = append(args, "--diff", diff)
	}
	excl, err := excludes(dir, only)
	if err != nil {
		return result{pkg: dir}, err
	}
	args = append(args, excl...)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return result{pkg: dir}, err
	}
	args = append(args, abs)
	cmd := exec.CommandContext(ctx, bin, args...)
	// -short: the tests' slowest cases (a 30 MB file, every field of every
	// lab guest mutated) shrink; every mutant runs the package's tests.
	cmd.Env = append(os.Environ(), "GOFLAGS=-short")
	if diff != "" {
		// gremlins names a mutant's file relative to the package and reads
		// "git diff" whose names are relative to the repository, so with
		// --diff no name ever matched and every mutant was skipped. Run
		// from the package folder with diff.relative, so that git names
		// the files as gremlins does.
		cmd.Dir = abs
		cmd.Env = append(cmd.Env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=diff.relative", "GIT_CONFIG_VALUE_0=true")
	}
	// At the budget, end gremlins and the go test it runs, not gremlins
	// alone: an orphaned test binary would run on past CI's cap.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return result{pkg: dir}, err
	}
	if err := os.MkdirAll(filepath.Dir(save), 0o755); err != nil {
		return result{pkg: dir}, err
	}
	saved, err := os.Create(save)
	if err != nil {
		return result{pkg: dir}, err
	}
	defer saved.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{pkg: dir}, fmt.Errorf("gremlins on %s: %w", dir, err)
	}
	r := parse(dir, io.TeeReader(stdout, io.MultiWriter(os.Stderr, saved)))
	err = cmd.Wait()
	r.elapsed = time.Since(start)
	if ctx.Err() != nil {
		r.note = "PARTIAL: budget spent"
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("gremlins on %s: %w", dir, err)
	}
	return r, nil
}

// excludes is the gremlins arguments that keep a package with only set to
// those files: its other files, and its sub-packages (gremlins walks the
// folder: the controller's metrics/ and statelock/ were mutated too).
func excludes(dir string, only []string) ([]string, error) {
	if len(only) == 0 {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var args []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir():
			args = append(args, "--exclude-files", "(^|/)"+regexpQuote(name)+"/")
		case strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") && !contains(only, name):
			args = append(args, "--exclude-files", "(^|/)"+regexpQuote(name)+"$")
		}
	}
	return args, nil
}

// logFile is where a package's gremlins output is kept, for -logs.
func logFile(dir, pkg string) string {
	return filepath.Join(dir, strings.ReplaceAll(pkg, "/", "_")+".log")
}

// verdict is one line of gremlins' output: "KILLED CONDITIONALS_NEGATION at
// execute.go:51:15" (the file relative to the package).
var verdict = regexp.MustCompile(`^\s*(KILLED|LIVED|TIMED OUT|NOT COVERED|NOT VIABLE|SKIPPED)\s+([A-Z_]+) at (\S+):(\d+):(\d+)`)

func parse(dir string, rd io.Reader) result {
	r := result{pkg: dir}
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Mutation testing completed") {
			r.complete = true
		}
		m := verdict.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name := m[3]
		if !strings.HasPrefix(name, dir+"/") {
			name = filepath.Join(dir, name)
		}
		line, _ := strconv.Atoi(m[4])
		col, _ := strconv.Atoi(m[5])
		mu := mutant{File: name, Type: m[2], Status: m[1], Line: line, Col: col}
		switch m[1] {
		case "KILLED":
			r.killed++
		case "LIVED":
			r.lived++
			mu.Source = sourceLine(name, line)
			r.survivors = append(r.survivors, mu)
		case "TIMED OUT":
			r.timedOut++
			mu.Source = sourceLine(name, line)
			r.hung = append(r.hung, mu)
		case "NOT COVERED":
			r.nc++
		}
	}
	return r
}

func render(results []result, diff string, threshold float64) string {
	var b strings.Builder
	if diff != "" {
		fmt.Fprintf(&b, "Mutants on the lines changed since %s only.\n\n", diff)
	}
	b.WriteString("| package | killed | lived | efficacy |\n|---|---:|---:|---:|\n")
	for _, r := range results {
		if r.note != "" && r.killed+r.lived+r.timedOut == 0 {
			fmt.Fprintf(&b, "| %s | - | - | %s |\n", r.pkg, r.note)
			continue
		}
		mark := ""
		if r.efficacy() < threshold {
			mark = " (below " + fmt.Sprint(threshold) + " %)"
		}
		if r.note != "" {
			mark += " " + r.note
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f %%%s |\n", r.pkg, r.killed, r.lived, r.efficacy(), mark)
	}
	b.WriteString("\nTimed out (the tests hung on the mutant: counted neither way) and not covered (no test runs the line):\n\n")
	for _, r := range results {
		if r.note == "" || r.killed+r.lived+r.timedOut > 0 {
			fmt.Fprintf(&b, "- %s: %d timed out, %d not covered", r.pkg, r.timedOut, r.nc)
			if r.elapsed > 0 {
				fmt.Fprintf(&b, ", %s", r.elapsed.Round(time.Second))
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n## Survivors\n\n")
	n := 0
	for _, r := range results {
		for _, s := range r.survivors {
			n++
			why := "NOT EXPLAINED: kill it with a test or list it in hack/mutate/equivalent.txt"
			if s.Reason != "" {
				why = "equivalent: " + s.Reason
			}
			fmt.Fprintf(&b, "- `%s:%d:%d` %s `%s`: %s\n", s.File, s.Line, s.Col, s.Type, s.Source, why)
		}
	}
	if n == 0 {
		b.WriteString("None.\n")
	}
	var hung []mutant
	for _, r := range results {
		hung = append(hung, r.hung...)
	}
	if len(hung) > 0 {
		b.WriteString("\n## Timed out\n\n")
		for _, s := range hung {
			fmt.Fprintf(&b, "- `%s:%d:%d` %s `%s`\n", s.File, s.Line, s.Col, s.Type, s.Source)
		}
	}
	return b.String()
}

// failed: a package below the threshold (complete full runs only: a diff
// or a cut-short run holds a handful of mutants), or a survivor nobody
// explained.
func failed(results []result, threshold float64, diff bool) bool {
	bad := false
	for _, r := range results {
		if !diff && r.note == "" && r.efficacy() < threshold {
			bad = true
		}
		for _, s := range r.survivors {
			if s.Reason == "" {
				bad = true
			}
		}
	}
	return bad
}

type equivalent struct{ file, typ, code, reason string }

// readEquivalent reads "file | TYPE | code on the line | reason" lines;
// matching on the code rather than the line number survives edits above.
func readEquivalent(path string) ([]equivalent, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []equivalent
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, " | ", 4)
		if len(parts) != 4 {
			return nil, fmt.Errorf("%s:%d: want \"file | TYPE | code | reason\"", path, n)
		}
		out = append(out, equivalent{strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1]), strings.TrimSpace(parts[2]), strings.TrimSpace(parts[3])})
	}
	return out, sc.Err()
}

// changedFiles lists the Go files (tests excluded) that differ from ref,
// committed or not.
func changedFiles(ref string) (map[string]bool, error) {
	if strings.HasPrefix(ref, "-") {
		return nil, fmt.Errorf("-diff %q: not a git ref", ref)
	}
	out, err := exec.Command("git", "diff", "--name-only", ref, "--").Output()
	if err != nil {
		return nil, fmt.Errorf("git diff %s: %w", ref, err)
	}
	m := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, "_test.go") {
			m[f] = true
		}
	}
	return m, nil
}

func touches(changed map[string]bool, dir string, only []string) bool {
	for f := range changed {
		if filepath.Dir(f) == dir && (len(only) == 0 || contains(only, filepath.Base(f))) {
			return true
		}
	}
	return false
}

// root is the repository, which the tool runs in; tests point it up.
var root = "."

func sourceLine(path string, n int) string {
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for i := 1; sc.Scan(); i++ {
		if i == n {
			return strings.TrimSpace(sc.Text())
		}
	}
	return ""
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mutation-*")
	if err != nil {
		return err
	}
	if _, err := io.Copy(tmp, strings.NewReader(string(data))); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func regexpQuote(s string) string {
	return regexp.QuoteMeta(s)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutate:", err)
	os.Exit(2)
}
