package cli

import (
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal; tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// palette colours text for a terminal, or leaves it plain. Colour is on
// only when stdout is a terminal, --no-color was not given and NO_COLOR
// is unset or empty (https://no-color.org).
type palette struct{ on bool }

func (a *app) colors() palette {
	return palette{on: !a.opts.NoColor && os.Getenv("NO_COLOR") == "" && isTerminal(a.stdout)}
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

func (p palette) paint(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return code + s + ansiReset
}

func (p palette) bold(s string) string   { return p.paint(ansiBold, s) }
func (p palette) red(s string) string    { return p.paint(ansiRed, s) }
func (p palette) green(s string) string  { return p.paint(ansiGreen, s) }
func (p palette) yellow(s string) string { return p.paint(ansiYellow, s) }
func (p palette) cyan(s string) string   { return p.paint(ansiCyan, s) }

// result colours an action or step result by how it went; r may be
// padded to its column.
func (p palette) result(r string) string {
	switch strings.TrimSpace(r) {
	case "ok":
		return p.green(r)
	case "failed":
		return p.red(r)
	case "cancelled":
		return p.yellow(r)
	}
	return r
}
