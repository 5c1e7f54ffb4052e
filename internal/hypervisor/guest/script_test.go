package guest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/internal/hypervisor"
)

func TestInterpreter(t *testing.T) {
	for line, want := range map[string][]string{
		"#!/bin/bash\n":         {"/bin/bash"},
		"#!/usr/bin/env bash\n": {"/usr/bin/env", "bash"},
		"#! /bin/sh -eu\n":      {"/bin/sh", "-eu"},
		"echo no shebang\n":     {"sh"},
		"":                      {"sh"},
		"#!\n":                  {"sh"},
		"#!/bin/bash -e -x\r\n": {"/bin/bash", "-e -x"},
		"#!/bin/bash\t-e \n":    {"/bin/bash", "-e"},
	} {
		if got := Interpreter(line); !reflect.DeepEqual(got, want) {
			t.Errorf("Interpreter(%q) = %q; want %q", line, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "evil.sh")
	write(t, outside, "echo evil\n", 0o644)
	cases := []struct {
		name    string
		setup   func(t *testing.T) string // the script path
		want    *Checked
		wantErr string
	}{
		{"script in a subfolder", func(t *testing.T) string {
			return write(t, filepath.Join(root, "features", "a.sh"), "#!/bin/bash -e\n", 0o644)
		}, &Checked{Rel: "features/a.sh", Interp: []string{"/bin/bash", "-e"}}, ""},
		{"group writable", func(t *testing.T) string {
			return write(t, filepath.Join(root, "features", "gw.sh"), "echo\n", 0o664)
		}, nil, "writable by group or others (mode 0664)"},
		{"world writable folder", func(t *testing.T) string {
			p := write(t, filepath.Join(root, "open", "x.sh"), "echo\n", 0o644)
			if err := os.Chmod(filepath.Dir(p), 0o777); err != nil {
				t.Fatal(err)
			}
			return p
		}, nil, "open is writable by group or others"},
		{"dot-dot", func(t *testing.T) string {
			rel, _ := filepath.Rel(root, outside)
			return root + "/" + rel
		}, nil, "outside the scripts folder"},
		{"symlink out", func(t *testing.T) string {
			p := filepath.Join(root, "link.sh")
			if err := os.Symlink(outside, p); err != nil {
				t.Fatal(err)
			}
			return p
		}, nil, "outside the scripts folder"},
		{"a folder", func(t *testing.T) string {
			return filepath.Join(root, "features")
		}, nil, "not a regular file"},
		{"missing", func(t *testing.T) string { return filepath.Join(root, "nope.sh") }, nil, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Check(root, tc.setup(t))
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v; want %q", err, tc.wantErr)
			case tc.wantErr != "":
			case err != nil:
				t.Fatal(err)
			case c.Rel != tc.want.Rel || !reflect.DeepEqual(c.Interp, tc.want.Interp) || !filepath.IsAbs(c.Real):
				t.Errorf("got %+v, want %+v", c, tc.want)
			}
		})
	}
	if _, err := Check("", outside); err == nil || !strings.Contains(err.Error(), "no scripts folder configured") {
		t.Errorf("no scripts folder: %v", err)
	}
}

func TestDestAndCheckDir(t *testing.T) {
	s := hypervisor.Script{Kind: hypervisor.AppScript, Name: "../setup app;rm.sh"}
	if got := Dest(s); got != "/tmp/phoenix-apps-.._setup_app_rm.sh" {
		t.Errorf("Dest = %q", got)
	}
	for dir, ok := range map[string]bool{
		"/tmp/phoenix_run": true, "/root/x": true, "/var/tmp/a.b": true,
		"/": false, "/tmp": false, "/tmp/": false, "/etc/x": false, "/tmp/a/b": false, "/tmp/..": false,
		"/tmp/.x": false, "/tmp/a..b": false, "tmp/x": false, "/tmp/x y": false,
	} {
		if err := CheckDir(dir); (err == nil) != ok {
			t.Errorf("CheckDir(%q) = %v; want ok %v", dir, err, ok)
		}
	}
}

// write writes a file with exactly mode, whatever the umask.
func write(t *testing.T, p, body string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}
