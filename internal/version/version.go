package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at build time with -ldflags "-X <this package>.Version=...". Kept as
// plain strings (not constants) because -X can only set string variables.
var (
	// Version is `git describe --tags` of the source, e.g. v0.3.1 or
	// v0.3.1-4-gabc1234-dirty.
	Version = ""
	// Commit is the full commit hash.
	Commit = ""
	// Date is the build date, RFC 3339 in UTC. The Makefile uses the
	// commit's date (or SOURCE_DATE_EPOCH) so that a rebuild of the same
	// commit gives the same bytes.
	Date = ""
)

// Info describes one build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build's Info. Fields the linker did not set come from
// the build info Go embeds (module version, vcs.revision, vcs.time), and
// "unknown" where that has nothing either.
func Get() Info {
	info := Info{
		Version:   Version,
		Commit:    Commit,
		Date:      Date,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		fillFromBuildInfo(&info, bi)
	}
	for _, f := range []*string{&info.Version, &info.Commit, &info.Date} {
		if *f == "" {
			*f = "unknown"
		}
	}
	return info
}

func fillFromBuildInfo(info *Info, bi *debug.BuildInfo) {
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if info.Commit == "" {
		info.Commit = settings["vcs.revision"]
	}
	if info.Date == "" {
		info.Date = settings["vcs.time"]
	}
	if info.Version == "" {
		// "(devel)" is what Go records for a build inside the module's
		// own tree; it says nothing a user could look up.
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		} else if info.Commit != "" {
			info.Version = "devel-" + short(info.Commit)
			if settings["vcs.modified"] == "true" {
				info.Version += "-dirty"
			}
		}
	}
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// String is the one line `phoenix --version` prints.
func (i Info) String() string {
	return fmt.Sprintf("phoenix %s (commit %s, built %s, %s %s)", i.Version, short(i.Commit), i.Date, i.GoVersion, i.Platform)
}

// Text is the multi-line form `phoenix version` prints.
func (i Info) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version:    %s\n", i.Version)
	fmt.Fprintf(&b, "commit:     %s\n", i.Commit)
	fmt.Fprintf(&b, "build date: %s\n", i.Date)
	fmt.Fprintf(&b, "go:         %s\n", i.GoVersion)
	fmt.Fprintf(&b, "platform:   %s\n", i.Platform)
	return b.String()
}
