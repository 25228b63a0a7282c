package testsrv

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Ferret is an embedded FerretDB (MongoDB wire protocol, SQLite backend)
// that a test can stop and start again on the same port with its data.
type Ferret struct {
	URI    string
	addr   string
	dir    string
	cancel context.CancelFunc
	done   chan struct{}
}

// FerretDB starts an embedded FerretDB on a free loopback port and returns
// its MongoDB URI; it stops when the test ends.
func FerretDB(t testing.TB) string { return StartFerretDB(t).URI }

// StartFerretDB starts an embedded FerretDB whose data lives in a temporary
// directory, so Stop and Start keep it.
func StartFerretDB(t testing.TB) *Ferret {
	t.Helper()
	f := &Ferret{addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), dir: t.TempDir()}
	f.Start(t)
	t.Cleanup(f.Stop)
	return f
}

// Start (re)starts the server on its port.
func (f *Ferret) Start(t testing.TB) {
	t.Helper()
	srv, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: f.addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + f.dir + "/",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("ferretdb: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	f.cancel, f.done = cancel, done
	if err := waitTCP(f.addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	f.URI = srv.MongoDBURI()
}

// Stop stops the server, closing its connections; the data stays.
func (f *Ferret) Stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
}
