package cli

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// backendOf names the backend a flag only matters for, from the "pve:",
// "pve-api:" or "sim:" its help starts with; "" for a general flag.
func backendOf(f *pflag.Flag) string {
	for _, b := range []string{"pve-api", "pve", "sim"} {
		if strings.HasPrefix(f.Usage, b+": ") {
			return b
		}
	}
	return ""
}

// flagsWhere returns the help lines of the visible flags of fs for which
// keep is true.
func flagsWhere(fs *pflag.FlagSet, keep func(*pflag.Flag) bool) string {
	sub := pflag.NewFlagSet("", pflag.ContinueOnError)
	fs.VisitAll(func(f *pflag.Flag) {
		if keep(f) {
			sub.AddFlag(f)
		}
	})
	return sub.FlagUsages()
}

type flagSection struct{ Title, Usages string }

// backendSections groups the backend-only flags of fs by backend.
func backendSections(fs *pflag.FlagSet) []flagSection {
	var out []flagSection
	for _, b := range []string{"pve", "pve-api", "sim"} {
		u := flagsWhere(fs, func(f *pflag.Flag) bool { return backendOf(f) == b })
		if u != "" {
			out = append(out, flagSection{Title: "Backend flags (--backend " + b + ")", Usages: u})
		}
	}
	return out
}

func init() {
	cobra.AddTemplateFuncs(map[string]any{
		"generalFlags": func(fs *pflag.FlagSet) string {
			return flagsWhere(fs, func(f *pflag.Flag) bool { return backendOf(f) == "" })
		},
		"backendSections": backendSections,
	})
}

// usageTemplate is cobra's, with the flags that only matter for one backend
// under a heading of their own on phoenix --help instead of on every verb.
const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}{{with generalFlags .LocalFlags}}

Flags:
{{. | trimTrailingWhitespaces}}{{end}}{{end}}{{if .HasAvailableInheritedFlags}}{{with generalFlags .InheritedFlags}}

Global Flags:
{{. | trimTrailingWhitespaces}}{{end}}{{end}}{{if not .HasParent}}{{range backendSections .LocalFlags}}

{{.Title}}:
{{.Usages | trimTrailingWhitespaces}}{{end}}{{else}}

Backend flags (--pve-*, --sim-*): see "phoenix --help".{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`
