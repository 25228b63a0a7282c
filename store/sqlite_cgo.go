//go:build cgo

package store

import (
	"fmt"
	"time"
)

// sqliteDriver is mattn/go-sqlite3 (gorm.io/driver/sqlite's own), registered
// as "sqlite3": the fastest where cgo is available.
const sqliteDriver = "sqlite3"

func sqliteDSN(path string, busy time.Duration) string {
	return fmt.Sprintf("file:%s?_journal_mode=WAL&_busy_timeout=%d&_foreign_keys=on&_synchronous=NORMAL&_txlock=immediate",
		path, busy.Milliseconds())
}
