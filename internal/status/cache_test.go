package status

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
)

// The store remembers what it read and wrote, but a status file replaced
// by anyone else (another phoenix process, an editor writing in place, a
// removal) is what Get returns next; and changing what Get returned
// changes nothing.
func TestStore_getSeesFilesChangedBehindItsBack(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewStore(dir)
	b, _ := NewStore(dir) // another process on the same state dir
	path := filepath.Join(dir, "941.json")
	get := func(step string) *api.Status {
		t.Helper()
		st, err := a.Get(941, api.KindLXC)
		if err != nil {
			t.Fatalf("%s: Get: %v", step, err)
		}
		return st
	}
	if _, err := a.Update(941, api.KindLXC, func(st *api.Status) { st.Phase, st.LastError = api.PhaseFailed, "first" }); err != nil {
		t.Fatal(err)
	}
	st := get("after its own write")
	if st.LastError != "first" {
		t.Fatalf("after its own write: lastError %q", st.LastError)
	}
	st.LastError = "scribbled"
	st.Conditions = append(st.Conditions, api.Condition{Type: "Scribbled"})
	if st := get("after the caller changed its copy"); st.LastError != "first" || len(st.Conditions) != 0 {
		t.Fatalf("a caller's change reached the store: %+v", st)
	}

	if _, err := b.Update(941, api.KindLXC, func(st *api.Status) { st.LastError = "second" }); err != nil {
		t.Fatal(err)
	}
	if st := get("after another process's write"); st.LastError != "second" {
		t.Fatalf("after another process's write: lastError %q", st.LastError)
	}

	data, _ := os.ReadFile(path)
	edited := strings.Replace(string(data), `"second"`, `"edited in place"`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil { // same inode
		t.Fatal(err)
	}
	if st := get("after an edit in place"); st.LastError != "edited in place" {
		t.Fatalf("after an edit in place: lastError %q", st.LastError)
	}
	if _, err := a.Update(941, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady }); err != nil {
		t.Fatal(err)
	}
	if st := get("after an update on top of the edit"); st.LastError != "edited in place" || st.Phase != api.PhaseReady {
		t.Fatalf("the update lost the edit: %+v", st)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if st := get("after removal"); st.Phase != api.PhasePending || st.LastError != "" {
		t.Fatalf("after removal: %+v, want Pending", st)
	}
}

// A status file turned into a symlink is refused, also when the store had
// read the file before.
func TestStore_getRefusesASymlinkPlantedAfterARead(t *testing.T) {
	dir := t.TempDir()
	s, _ := NewStore(dir)
	if _, err := s.Update(941, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady }); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "941.json")
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	data, _ := os.ReadFile(path)
	os.WriteFile(target, data, 0o600)
	os.Remove(path)
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Get(941, api.KindLXC); err == nil {
		t.Fatalf("Get through a symlink = %+v, want an error", st)
	}
}
