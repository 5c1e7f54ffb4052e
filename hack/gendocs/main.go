// Command gendocs writes phoenix's man pages (one for phoenix and one per
// verb, from the cobra command tree) and its bash, zsh and fish
// completions. make install and make deb run it; the output is not kept in
// the repository because it follows the code.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"

	"github.com/phoenix-hypervisor/phoenix/internal/cli"
)

func main() {
	out := flag.String("out", "", "folder to write man/ and completions/ into")
	version := flag.String("version", "", "version shown in the man pages' footer")
	date := flag.String("date", "", "date shown in the man pages (RFC 3339); default: now, or SOURCE_DATE_EPOCH")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gendocs -out DIR [-version V] [-date RFC3339]")
		os.Exit(2)
	}
	if err := run(*out, *version, *date); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

func run(out, version, date string) error {
	root := cli.Command(io.Discard, io.Discard)
	// cobra adds these two lazily when the command runs; add them now so
	// that they get pages and completions like every other verb.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	// These defaults depend on the machine (a folder that exists, who runs
	// phoenix); the pages describe the rule, not the machine that built them.
	for name, def := range map[string]string{
		"config-dir": "/usr/local/phoenix_hypervisor/etc if it exists, else .",
		"state-dir":  "/var/lib/phoenix for root, else $XDG_STATE_HOME/phoenix",
	} {
		f := root.PersistentFlags().Lookup(name)
		if f == nil {
			return fmt.Errorf("no flag --%s to describe", name)
		}
		f.DefValue = def
	}

	escapeTree(root)

	header := &doc.GenManHeader{Title: "PHOENIX", Section: "1", Source: "phoenix " + version, Manual: "phoenix manual"}
	if date != "" {
		d, err := time.Parse(time.RFC3339, date)
		if err != nil {
			return fmt.Errorf("-date %q: %w", date, err)
		}
		header.Date = &d
	}
	manDir := filepath.Join(out, "man")
	if err := os.MkdirAll(manDir, 0o755); err != nil {
		return err
	}
	if err := doc.GenManTree(root, header, manDir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}

	compDir := filepath.Join(out, "completions")
	if err := os.MkdirAll(compDir, 0o755); err != nil {
		return err
	}
	for name, gen := range map[string]func(*cobra.Command, string) error{
		"phoenix.bash": func(c *cobra.Command, f string) error { return c.GenBashCompletionFileV2(f, true) },
		"_phoenix":     func(c *cobra.Command, f string) error { return c.GenZshCompletionFile(f) },
		"phoenix.fish": func(c *cobra.Command, f string) error { return c.GenFishCompletionFile(f, true) },
	} {
		if err := gen(root, filepath.Join(compDir, name)); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
	}
	return nil
}

// markdown escapes what cobra's man page writer (through go-md2man) would
// read as markdown: phoenix_*.json must not turn into emphasis, nor
// <state-dir> into an HTML tag that vanishes.
var markdown = strings.NewReplacer(`\`, `\\`, "_", `\_`, "*", `\*`, "<", `\<`, ">", `\>`, "[", `\[`, "]", `\]`, "`", "\\`")

// escapeText escapes a help text, except its indented lines, which are
// code blocks and printed as they are.
func escapeText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "    ") {
			lines[i] = markdown.Replace(l)
		}
	}
	return strings.Join(lines, "\n")
}

// escapeTree escapes the help texts of c and every command below it (a
// flag's default is printed as it is). The tree is gendocs' own, so
// changing it affects nothing else.
func escapeTree(c *cobra.Command) {
	c.Short, c.Long = escapeText(c.Short), escapeText(c.Long)
	esc := func(f *pflag.Flag) { f.Usage = escapeText(f.Usage) }
	c.LocalNonPersistentFlags().VisitAll(esc)
	c.PersistentFlags().VisitAll(esc)
	for _, sub := range c.Commands() {
		escapeTree(sub)
	}
}
