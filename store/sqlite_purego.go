//go:build !cgo

package store

import (
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers "sqlite" (FerretDB links the same)
)

// sqliteDriver is the pure-Go modernc.org/sqlite: with CGO_ENABLED=0 (the
// release binaries and the container image) the binary is static. Times are
// written in SQLite's own format, as the cgo driver writes them, so one
// database file works with either build.
const sqliteDriver = "sqlite"

func init() { maxBatch = 50 }

func sqliteDSN(path string, busy time.Duration) string {
	return fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite",
		path, busy.Milliseconds())
}
