package version

import (
	"runtime/debug"
	"testing"
)

// A binary built without the Makefile's -ldflags still names what it was
// built from, from the stamp Go leaves in it.
func TestFillFromBuildInfo(t *testing.T) {
	vcs := func(rev, time, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: time}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name   string
		linker Info // what -X set
		bi     debug.BuildInfo
		want   Info
	}{
		{name: "go build in a clean checkout",
			bi:   debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-11-30T10:00:00Z", "false")},
			want: Info{Version: "devel-0123456789ab", Commit: rev, Date: "2026-11-30T10:00:00Z", GoVersion: "go1.27.3"}},
		{name: "go build with local changes",
			bi:   debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-11-30T10:00:00Z", "true")},
			want: Info{Version: "devel-0123456789ab-dirty", Commit: rev, Date: "2026-11-30T10:00:00Z", GoVersion: "go1.27.3"}},
		{name: "go install module@version",
			bi:   debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "v1.2.3"}},
			want: Info{Version: "v1.2.3", GoVersion: "go1.27.3"}},
		{name: "the linker's values win",
			linker: Info{Version: "v1.3.0", Commit: "abc", Date: "2026-12-01T00:00:00Z"},
			bi:     debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "2026-11-30T10:00:00Z", "true")},
			want:   Info{Version: "v1.3.0", Commit: "abc", Date: "2026-12-01T00:00:00Z", GoVersion: "go1.27.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.linker
			fillFromBuildInfo(&got, &tc.bi)
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
