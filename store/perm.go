package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// prepareSQLiteFile makes the database the hub's alone, whatever the umask:
// folders it creates are 0700, the file is created (or tightened) 0600.
// SQLite gives its -wal and -shm files the database file's mode.
func prepareSQLiteFile(path string) error {
	if err := mkdirPrivate(filepath.Dir(path)); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("make %s private: %w", path, err)
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Chmod(path+side, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", path+side, err)
		}
	}
	return nil
}

// mkdirPrivate creates dir and any missing parents 0700; folders that exist
// are left as they are.
func mkdirPrivate(dir string) error {
	if dir == "" || dir == "." {
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := mkdirPrivate(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(dir, 0o700)
}
