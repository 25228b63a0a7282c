package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/etlhub/etlhub/model"
)

// The SQLite database holds error texts and tenants' run history: it, its WAL
// and its shared-memory file are the hub's alone (0600 in a 0700 folder),
// whatever the umask.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data", "hub")
	path := filepath.Join(dir, "etlhub.db")
	s := mustOpen(t, Config{Driver: "sqlite", Path: path})
	o := obs("2026-09-01T05:00:00Z", "dade", "r1", model.StateRunning, 1, 10)
	if _, err := s.Ingest(context.Background(), []model.Observation{o}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("after a write: %v", err)
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s is %04o, want 0600", filepath.Base(f), m)
		}
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o700 {
			t.Errorf("folder %s is %04o, want 0700", d, m)
		}
	}
}

// A database left world-readable by an older version is tightened on open.
func TestSQLiteExistingFileIsTightened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	mustOpen(t, Config{Driver: "sqlite", Path: path}).Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, Config{Driver: "sqlite", Path: path})
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("reopened database: %v %v, want 0600", st.Mode(), err)
	}
}
