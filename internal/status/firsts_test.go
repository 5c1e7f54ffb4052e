package status

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phoenix-hypervisor/phoenix/api"
)

func journalStore(t *testing.T) (*Store, string) {
	t.Helper()
	s, dir := newTestStore(t)
	s.JournalFirsts()
	return s, dir
}

func provisioning(at time.Time) func(*api.Status) {
	return func(st *api.Status) {
		st.Phase = api.PhaseProvisioning
		st.SetReady("False", api.ReasonProgressing, "running the create workflow", at)
	}
}

func mustGet(t *testing.T, s *Store, id api.ID) *api.Status {
	t.Helper()
	st, err := s.Get(id, api.KindLXC)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return st
}

func mustIDs(t *testing.T, s *Store) []api.ID {
	t.Helper()
	ids, err := s.IDs()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// The first mark of a guest without a status file is a line of the
// journal, not a file; this store and any other on the folder read it,
// and list the guest.
func TestFirsts_firstMarkIsALineEveryoneReads(t *testing.T) {
	s, dir := journalStore(t)
	at := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	if _, err := s.UpdateNoSync(941, api.KindLXC, provisioning(at)); err != nil {
		t.Fatal(err)
	}
	if _, ok := onDisk(t, dir, 941); ok {
		t.Error("the first mark made a status file")
	}
	other, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*Store{"the writer": s, "another store": other, "a read-only store": NewReadOnlyStore(dir)} {
		got := mustGet(t, st, 941)
		if got.Phase != api.PhaseProvisioning || got.Kind != api.KindLXC || got.ID != "941" {
			t.Errorf("%s reads %s %s %s, want 941 lxc Provisioning", name, got.ID, got.Kind, got.Phase)
		}
		if c := got.Conditions; len(c) != 1 || !c[0].LastTransitionTime.Equal(at) {
			t.Errorf("%s reads conditions %+v, want Ready since %s", name, c, at)
		}
		if ids := mustIDs(t, st); !slices.Equal(ids, []api.ID{941}) {
			t.Errorf("%s lists %v, want [941]", name, ids)
		}
	}
}

// The outcome is written as the guest's file, starting from the journal's
// status, and the file wins from then on.
func TestFirsts_outcomeFileWins(t *testing.T) {
	s, dir := journalStore(t)
	at := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	if _, err := s.UpdateNoSync(941, api.KindLXC, provisioning(at)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(941, api.KindLXC, func(st *api.Status) { st.Phase = api.PhaseReady }); err != nil {
		t.Fatal(err)
	}
	st, ok := onDisk(t, dir, 941)
	if !ok || st.Phase != api.PhaseReady {
		t.Fatalf("after the outcome the file is %v %s, want Ready", ok, st.Phase)
	}
	if len(st.Conditions) != 1 || !st.Conditions[0].LastTransitionTime.Equal(at) {
		t.Errorf("the outcome did not start from the journal's status: conditions %+v", st.Conditions)
	}
	other, _ := NewStore(dir)
	if got := mustGet(t, other, 941); got.Phase != api.PhaseReady {
		t.Errorf("another store reads %s, want the file's Ready", got.Phase)
	}
	// A later mark of a guest with a file replaces the file, as before.
	if _, err := s.UpdateNoSync(941, api.KindLXC, provisioning(at)); err != nil {
		t.Fatal(err)
	}
	if st, _ := onDisk(t, dir, 941); st.Phase != api.PhaseProvisioning {
		t.Errorf("a mark of a guest with a file left the file %s", st.Phase)
	}
}

// Delete makes the guest unknown, to every store, although its first
// status is still a line of the journal.
func TestFirsts_deleteClearsTheLine(t *testing.T) {
	s, dir := journalStore(t)
	mark(t, s, 941, 942)
	other, _ := NewStore(dir)
	if err := other.Delete(941); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*Store{"the writer": s, "the deleter": other} {
		if got := mustGet(t, st, 941); got.Phase != api.PhasePending {
			t.Errorf("%s reads a deleted guest as %s, want Pending", name, got.Phase)
		}
		if ids := mustIDs(t, st); !slices.Equal(ids, []api.ID{942}) {
			t.Errorf("%s lists %v, want [942]", name, ids)
		}
	}
}

// Close drops the lines of guests that have a file, keeps the others for
// the next process, and removes the journal once no guest needs it.
func TestFirsts_closeCompacts(t *testing.T) {
	s, dir := journalStore(t)
	mark(t, s, 941, 942)
	if _, err := s.Update(941, api.KindLXC, phase(api.PhaseReady)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, firstsName))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(splitLines(data)); n != 1 {
		t.Errorf("the compacted journal has %d lines, want 942's only:\n%s", n, data)
	}
	next := reopen(t, dir)
	if got := mustGet(t, next, 942); got.Phase != api.PhaseProvisioning {
		t.Errorf("the next process reads 942 as %s, want Provisioning", got.Phase)
	}
	if _, err := next.Update(942, api.KindLXC, phase(api.PhaseReady)); err != nil {
		t.Fatal(err)
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, firstsName)); !os.IsNotExist(err) {
		t.Errorf("the journal is still there once every guest has a file: %v", err)
	}
}

func reopen(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.JournalFirsts()
	return s
}

func splitLines(data []byte) []string {
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// A line cut short by a killed writer is skipped, and the next mark
// stands on a line of its own.
func TestFirsts_tornLineSkipped(t *testing.T) {
	s, dir := journalStore(t)
	torn := `{"id":"941","kind":"lxc","phase":"Provis`
	if err := os.WriteFile(filepath.Join(dir, firstsName), []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read is from what the first one kept
		if got := mustGet(t, s, 941); got.Phase != api.PhasePending {
			t.Errorf("a torn line reads as %s, want nothing (Pending)", got.Phase)
		}
	}
	mark(t, s, 942)
	other, _ := NewStore(dir)
	if got := mustGet(t, other, 942); got.Phase != api.PhaseProvisioning {
		t.Errorf("the mark after a torn line reads as %s, want Provisioning", got.Phase)
	}
}

// A store the controller did not open (the CLI) writes a first mark as a
// file, as it always did.
func TestFirsts_onlyTheJournalsWriterUsesIt(t *testing.T) {
	s, dir := newTestStore(t)
	mark(t, s, 941)
	if st, ok := onDisk(t, dir, 941); !ok || st.Phase != api.PhaseProvisioning {
		t.Errorf("the CLI's first mark: file %v %s, want a Provisioning file", ok, st.Phase)
	}
	if _, err := os.Stat(filepath.Join(dir, firstsName)); !os.IsNotExist(err) {
		t.Errorf("the CLI made a journal: %v", err)
	}
}

// A line another process appends between two of the writer's is read by
// the writer too: its own line does not make it skip the other's.
func TestFirsts_writerReadsOthersLinesBetweenItsOwn(t *testing.T) {
	s, dir := journalStore(t)
	mark(t, s, 941)
	// Read twice before the next append: the second read is the writer's
	// own view of the file it appends to.
	mustGet(t, s, 941)
	mustGet(t, s, 941)
	cli, _ := NewStore(dir)
	if err := cli.Delete(941); err != nil {
		t.Fatal(err)
	}
	mark(t, s, 942)
	if got := mustGet(t, s, 941); got.Phase != api.PhasePending {
		t.Errorf("the writer reads 941, deleted by another process, as %s, want Pending", got.Phase)
	}
	if ids := mustIDs(t, s); !slices.Equal(ids, []api.ID{942}) {
		t.Errorf("the writer lists %v, want [942]", ids)
	}
}

// A reader that read the journal before the writer compacted it reads
// the new file from its start, also when the new file is longer than what
// it had read.
func TestFirsts_readerFollowsACompaction(t *testing.T) {
	s, dir := journalStore(t)
	reader := NewReadOnlyStore(dir)
	mark(t, s, 941)
	if ids := mustIDs(t, reader); !slices.Equal(ids, []api.ID{941}) {
		t.Fatalf("the reader lists %v, want [941]", ids)
	}
	mark(t, s, 942, 943, 944)
	if _, err := s.Update(941, api.KindLXC, phase(api.PhaseReady)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if ids := mustIDs(t, reader); !slices.Equal(ids, []api.ID{941, 942, 943, 944}) {
		t.Errorf("after the compaction the reader lists %v, want [941 942 943 944]", ids)
	}
	for _, id := range []api.ID{942, 943, 944} {
		if got := mustGet(t, reader, id); got.Phase != api.PhaseProvisioning {
			t.Errorf("after the compaction the reader reads %s as %s, want Provisioning", id, got.Phase)
		}
	}
}

// A journal that is not a regular file (a FIFO planted in the status
// folder) is neither read nor written: a read of a guest without a file
// reports it by name, and a first mark is written as the guest's file.
func TestFirsts_journalThatIsNotAFile(t *testing.T) {
	s, dir := journalStore(t)
	path := filepath.Join(dir, firstsName)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip("no FIFO here:", err)
	}
	if _, err := s.Get(942, api.KindLXC); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Get with a FIFO as the journal: %v, want an error naming %s", err, path)
	}
	mark(t, s, 941)
	if st, ok := onDisk(t, dir, 941); !ok || st.Phase != api.PhaseProvisioning {
		t.Errorf("the mark: file %v %s, want a Provisioning file", ok, st.Phase)
	}
}

// An empty line (an editor's, or two newlines in a row) is skipped; the
// lines after it are read.
func TestFirsts_emptyLineSkipped(t *testing.T) {
	s, dir := journalStore(t)
	mark(t, s, 941)
	f, err := os.OpenFile(filepath.Join(dir, firstsName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mark(t, s, 942)
	if ids := mustIDs(t, NewReadOnlyStore(dir)); !slices.Equal(ids, []api.ID{941, 942}) {
		t.Errorf("a reader lists %v, want [941 942]", ids)
	}
}

// mark writes the Provisioning mark of each guest through UpdateNoSync,
// as the controller does before a first workflow.
func mark(t *testing.T, s *Store, ids ...api.ID) {
	t.Helper()
	for _, id := range ids {
		if _, err := s.UpdateNoSync(id, api.KindLXC, phase(api.PhaseProvisioning)); err != nil {
			t.Fatal(err)
		}
	}
}
