package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok.json")
	os.WriteFile(ok, []byte(`{}`), 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, nil, 0o600)
	os.Truncate(big, 2048)
	for _, tt := range []struct {
		path    string
		wantErr bool
	}{
		{ok, false}, {fifo, true}, {"/dev/zero", true}, {dir, true}, {big, true},
	} {
		start := time.Now()
		_, err := ReadRegular(context.Background(), tt.path, 1024)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v, want error %v", tt.path, err, tt.wantErr)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %s", tt.path, d)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadRegular(ctx, ok, 1024); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled read: %v", err)
	}
}

func TestCheckDirAndOpenNoFollow(t *testing.T) {
	base := t.TempDir()
	good := filepath.Join(base, "good")
	if err := MkdirPrivate(good); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o770)
	link := filepath.Join(base, "link")
	os.Symlink(good, link)
	for dir, unsafe := range map[string]bool{good: false, open: true, link: true, filepath.Join(base, "missing"): false} {
		err := CheckDir(dir)
		if errors.Is(err, ErrUnsafe) != unsafe {
			t.Errorf("CheckDir(%s) = %v, want unsafe %v", dir, err, unsafe)
		}
	}
	victim := filepath.Join(base, "victim")
	os.WriteFile(victim, []byte("x"), 0o600)
	planted := filepath.Join(good, "status.json")
	os.Symlink(victim, planted)
	if f, err := OpenNoFollow(planted, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil || !errors.Is(err, ErrUnsafe) {
		if f != nil {
			f.Close()
		}
		t.Errorf("OpenNoFollow followed a symlink: %v", err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "x" {
		t.Errorf("victim truncated: %q", data)
	}
}

// CreateTemp makes a new private file per call, named after the pattern,
// and an error that says which path failed when the folder is missing.
func TestCreateTemp(t *testing.T) {
	dir := t.TempDir()
	names := map[string]bool{}
	for range 20 {
		f, err := CreateTemp(dir, "101.json.*")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("{}"); err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		f.Close()
		if err != nil || st.Mode().Perm() != 0o600 || !st.Mode().IsRegular() {
			t.Errorf("%s: %v, %v; want a regular file, mode 0600", f.Name(), st, err)
		}
		base := filepath.Base(f.Name())
		if filepath.Dir(f.Name()) != dir || !strings.HasPrefix(base, "101.json.") || len(base) == len("101.json.") {
			t.Errorf("temp file %s: want 101.json.<random> in %s", f.Name(), dir)
		}
		names[f.Name()] = true
	}
	if len(names) != 20 {
		t.Errorf("20 calls made %d files", len(names))
	}
	missing := filepath.Join(dir, "missing")
	if _, err := CreateTemp(missing, "x.*"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("CreateTemp in a missing folder: %v", err)
	}
}

// ReadLines hands over complete lines only, each with its offset, from
// the offset it is given, and returns where the next read starts: after
// the last newline.
func TestReadLines(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		off        int64
		lines      []string
		next       int64
	}{
		{name: "complete lines", data: "a\nbb\n", lines: []string{"0:a", "2:bb"}, next: 5},
		{name: "a line still being written", data: "a\nbb", lines: []string{"0:a"}, next: 2},
		{name: "an empty line", data: "a\n\nc\n", lines: []string{"0:a", "2:", "3:c"}, next: 5},
		{name: "from an offset", data: "a\nbb\nccc\n", off: 2, lines: []string{"2:bb", "5:ccc"}, next: 9},
		{name: "nothing new", data: "a\n", off: 2, next: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got []string
			next, err := ReadLines(f, tc.off, int64(len(tc.data)), func(at int64, l []byte) { got = append(got, fmt.Sprintf("%d:%s", at, l)) })
			if err != nil {
				t.Fatal(err)
			}
			if next != tc.next || len(got) != len(tc.lines) {
				t.Fatalf("ReadLines = %q, next %d; want %q, next %d", got, next, tc.lines, tc.next)
			}
			for i := range got {
				if got[i] != tc.lines[i] {
					t.Errorf("line %d = %q, want %q", i, got[i], tc.lines[i])
				}
			}
		})
	}
}
