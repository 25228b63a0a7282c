package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is returned by Open when another hub holds the SQLite file.
var ErrLocked = errors.New("store: the SQLite database is in use by another hub")

// fileLock is an exclusive OS lock (flock) on a file beside the SQLite
// database, held for as long as the store is open. It belongs to the open
// file, so the kernel drops it when the process dies, kill -9 included: a
// crashed hub never leaves a stale lock behind.
type fileLock struct{ f *os.File }

// lockSQLite takes PATH.lock or says who holds it. Two hubs on one SQLite
// file would both run the rules and page twice for every alert; replicas
// share a PostgreSQL store instead.
func lockSQLite(path string) (*fileLock, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(name); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (process %d holds %s)", pid, name)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w%s: SQLite means one hub per file; to run several hubs (replicas with a leader), "+
				"give each the same PostgreSQL store (store.driver: postgres, store.dsn)", ErrLocked, holder)
		}
		return nil, fmt.Errorf("store: lock %s: %w", name, err)
	}
	// Who holds it, for the error above (advisory: the lock is the flock).
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

// release drops the lock; twice does nothing.
func (l *fileLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}
