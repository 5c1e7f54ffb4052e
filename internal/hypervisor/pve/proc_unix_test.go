//go:build linux

package pve

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A timed-out command's whole process group dies, including a grandchild
// that ignores SIGTERM (a pct worker holding a guest's lock).
func TestKillProcessGroup_grandchildIgnoringTERM(t *testing.T) {
	old := killGrace
	killGrace = 300 * time.Millisecond
	t.Cleanup(func() { killGrace = old })
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `trap "" TERM; sleep 60 & echo $! > "$1"; wait; wait`, "sh", pidFile)
	reap := killProcessGroup(cmd)
	cmd.WaitDelay = killGrace
	start := time.Now()
	_ = cmd.Run()
	reap()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the command took %s to end after its timeout", d)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the grandchild never started: %v", err)
	}
	pid := strings.TrimSpace(string(data))
	deadline := time.Now().Add(2 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		// Gone, or a zombie nobody reaped yet: either way not running.
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %s still running after the group was killed: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
