package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/version"
)

// stamp sets what the Makefile's -ldflags -X would, for one test.
func stamp(t *testing.T, v, commit, date string) {
	t.Helper()
	old := [3]string{version.Version, version.Commit, version.Date}
	version.Version, version.Commit, version.Date = v, commit, date
	t.Cleanup(func() { version.Version, version.Commit, version.Date = old[0], old[1], old[2] })
}

func TestVersion(t *testing.T) {
	stamp(t, "v1.4.0-3-gdeadbee", "deadbeefcafe0123456789abcdef012345678901", "2026-11-30T12:00:00Z")
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		stdout   []string // each must appear
		stderr   string
	}{
		{name: "verb", args: []string{"version"}, stdout: []string{
			"version:    v1.4.0-3-gdeadbee\n", "commit:     deadbeefcafe0123456789abcdef012345678901\n",
			"build date: 2026-11-30T12:00:00Z\n", "go:         " + runtime.Version() + "\n"}},
		{name: "flag, one line", args: []string{"--version"}, stdout: []string{
			"phoenix v1.4.0-3-gdeadbee (commit deadbeefcafe, built 2026-11-30T12:00:00Z, " + runtime.Version()}},
		{name: "verb takes no arguments", args: []string{"version", "101"}, wantCode: ExitUsage, stderr: "unknown command"},
		// -v is the controller's verbosity only: as a version flag it is gone.
		{name: "-v is not version", args: []string{"-v"}, wantCode: ExitUsage, stderr: "unknown shorthand flag: 'v'"},
		{name: "-v is verbosity on controller", args: []string{"controller", "-v", "loud"}, wantCode: ExitUsage, stderr: `invalid argument "loud" for "-v, --v"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(context.Background(), tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errb.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errb.String())
			}
		})
	}
}

func TestVersion_json(t *testing.T) {
	stamp(t, "v2.0.0", "0123456789abcdef0123456789abcdef01234567", "2026-12-01T00:00:00Z")
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"version", "-o", "json"}, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got map[string]string
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out.String())
	}
	want := map[string]string{"version": "v2.0.0", "commit": "0123456789abcdef0123456789abcdef01234567",
		"buildDate": "2026-12-01T00:00:00Z", "goVersion": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
