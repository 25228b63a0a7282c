package testsrv

import (
	"fmt"
	"testing"

	"github.com/etlhub/etlhub/internal/embedded"
)

// Ferret is an embedded FerretDB (MongoDB wire protocol, SQLite backend)
// that a test can stop and start again on the same port with its data.
type Ferret struct {
	*embedded.Ferret
}

// FerretDB starts an embedded FerretDB on a free loopback port and returns
// its MongoDB URI; it stops when the test ends.
func FerretDB(t testing.TB) string { return StartFerretDB(t).URI }

// StartFerretDB starts an embedded FerretDB whose data lives in a temporary
// directory, so Stop and Start keep it.
func StartFerretDB(t testing.TB) *Ferret {
	t.Helper()
	f, err := embedded.NewFerret(fmt.Sprintf("127.0.0.1:%d", FreePort(t)), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fr := &Ferret{Ferret: f}
	fr.Start(t)
	t.Cleanup(f.Stop)
	return fr
}

// Start (re)starts the server on its port.
func (f *Ferret) Start(t testing.TB) {
	t.Helper()
	if err := f.Ferret.Start(); err != nil {
		t.Fatal(err)
	}
}
