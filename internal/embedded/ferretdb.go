package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Ferret is FerretDB embedded: a MongoDB wire-protocol server whose data
// lives in SQLite files in a directory, so Stop and Start keep it.
type Ferret struct {
	URI    string
	addr   string
	dir    string
	cancel context.CancelFunc
	done   chan struct{}
}

// NewFerret prepares a server on addr ("127.0.0.1:0" for any free port)
// with its data in dir; Start starts it.
func NewFerret(addr, dir string) (*Ferret, error) {
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		addr = l.Addr().String()
		l.Close()
	}
	return &Ferret{addr: addr, dir: dir}, nil
}

// Start (re)starts the server on its address and waits until it listens.
func (f *Ferret) Start() error {
	srv, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: f.addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + f.dir + "/",
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	f.cancel, f.done = cancel, done
	if err := WaitTCP(f.addr, 10*time.Second); err != nil {
		f.Stop()
		return fmt.Errorf("ferretdb: %w", err)
	}
	f.URI = srv.MongoDBURI()
	return nil
}

// Stop stops the server, closing its connections; the data stays.
func (f *Ferret) Stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
}

// Dir is where the server keeps its data (one SQLite file per database).
func (f *Ferret) Dir() string { return f.dir }
