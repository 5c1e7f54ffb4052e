package controller

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// TestPollFiles: an edit that inotify never reports (made on another
// cluster node, under pmxcfs' FUSE mount) still leads to a reload. The
// watcher here has no inotify at all; only the poll can ask.
func TestPollFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, api.LXCFile)
	if err := os.WriteFile(file, []byte(`{"lxc_configs":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Controller{configDir: dir}
	w := &watcher{reload: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	poll := c.pollFiles(w, 10*time.Millisecond)
	go func() {
		defer close(done)
		poll(ctx)
	}()
	for _, tc := range []struct{ name, content string }{
		{"an edit", `{"lxc_configs":{"941":{}}}`},
		{"a second edit", `{"lxc_configs":{"941":{},"950":{}}}`},
		{"the hypervisor file appears", ""},
	} {
		target := file
		if tc.content == "" {
			target, tc.content = filepath.Join(dir, api.HypervisorFile), `{}`
		}
		if err := os.WriteFile(target, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		select {
		case <-w.reload:
		case <-time.After(30 * time.Second): // only stops a hung test
			t.Fatalf("%s: no reload requested", tc.name)
		}
	}
	cancel()
	<-done
}
