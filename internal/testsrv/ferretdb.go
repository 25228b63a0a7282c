package testsrv

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// FerretDB starts an embedded FerretDB (MongoDB wire protocol, SQLite
// backend in a temporary directory) on a free loopback port and returns its
// MongoDB URI; it stops when the test ends.
func FerretDB(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + t.TempDir() + "/",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("ferretdb: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := waitTCP(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return f.MongoDBURI()
}
