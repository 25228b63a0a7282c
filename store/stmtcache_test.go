package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// countingDriver is SQLite's driver counting the statements SQLite compiles:
// every prepare, and every statement run without one (the driver prepares
// those internally).
type countingDriver struct {
	driver.Driver
	compiles atomic.Int64
}

type countingConn struct {
	driver.Conn
	d *countingDriver
}

func (d *countingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, d: d}, nil
}

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.d.compiles.Add(1)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.d.compiles.Add(1)
	return e.ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.d.compiles.Add(1)
	return q.QueryContext(ctx, query, args)
}

func (c *countingConn) CheckNamedValue(v *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(v)
	}
	return driver.ErrSkip
}

var (
	counting     *countingDriver
	countingOnce sync.Once
)

func openCounting(t *testing.T) (*Store, *countingDriver) {
	t.Helper()
	countingOnce.Do(func() {
		db, err := sql.Open(sqliteDriver, ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		counting = &countingDriver{Driver: db.Driver()}
		db.Close()
		sql.Register("sqlite-counting", counting)
	})
	s, err := open(context.Background(), Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hub.db")}, nil, "sqlite-counting")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, counting
}

func loopAlert(fp string, state model.AlertState, at time.Time) model.Alert {
	return model.Alert{
		ID: "id-" + fp, Fingerprint: fp, Rule: "stalled", Severity: model.SeverityCritical,
		Tenant: "polk", Job: "roster-import", Summary: "stalled", State: state,
		PendingSince: at.Add(-10 * time.Minute), LastSeen: at,
	}
}

// The alert loop's statements, in and out of transactions, are compiled by
// SQLite once: a steady night of ticks (save the alerts, ingest heartbeats,
// read the alerts back) compiles none after the first ticks.
func TestSQLiteWritesPrepareEachStatementOnce(t *testing.T) {
	s, d := openCounting(t)
	ctx := context.Background()
	start := ts("2026-09-01T04:00:00Z")
	tick := func(i int) {
		t.Helper()
		at := start.Add(time.Duration(i) * time.Minute)
		alerts := []model.Alert{loopAlert("a", model.AlertFiring, at), loopAlert("b", model.AlertPending, at)}
		if err := s.SaveAlerts(ctx, alerts, nil, nil); err != nil {
			t.Fatalf("tick %d: save: %v", i, err)
		}
		o := obs(at.Format(time.RFC3339), "polk", "run-1", model.StateRunning, int64(i), 1000)
		if _, err := s.Ingest(ctx, []model.Observation{o}); err != nil {
			t.Fatalf("tick %d: ingest: %v", i, err)
		}
		if _, err := s.ListAlerts(ctx, AlertFilter{States: []model.AlertState{model.AlertFiring, model.AlertPending}}); err != nil {
			t.Fatalf("tick %d: list: %v", i, err)
		}
	}
	for i := range 3 {
		tick(i)
	}
	before := d.compiles.Load()
	for i := 3; i < 53; i++ {
		tick(i)
	}
	if n := d.compiles.Load() - before; n != 0 {
		t.Errorf("50 steady ticks compiled %d statements, want 0 (each is prepared once and kept)", n)
	}

	// And what they wrote is there.
	got, err := s.ListAlerts(ctx, AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	last := start.Add(52 * time.Minute)
	if len(got) != 2 {
		t.Fatalf("alerts = %d, want 2", len(got))
	}
	for _, a := range got {
		if !a.LastSeen.Equal(last) {
			t.Errorf("alert %s last seen %v, want %v", a.Fingerprint, a.LastSeen, last)
		}
	}
	run := mustLatest(t, s)[model.JobKey{Tenant: "polk", Job: "roster-import"}]
	if run.RowsDone != 52 {
		t.Errorf("run rows done = %d, want 52 (the last heartbeat)", run.RowsDone)
	}
}

// A statement evicted from the pool while rows are open on it, or while a
// transaction holds it, keeps working; the pool stays at its bound.
func TestStatementPoolEvictsSafely(t *testing.T) {
	s, _ := openCounting(t)
	s.stmts.max = 2
	ctx := context.Background()
	at := ts("2026-09-01T04:00:00Z")
	// Batches of 1..6 alerts are six different INSERT statements.
	for n := 1; n <= 6; n++ {
		var alerts []model.Alert
		for i := range n {
			alerts = append(alerts, loopAlert(fmt.Sprintf("fp-%d", i), model.AlertFiring, at.Add(time.Duration(n)*time.Minute)))
		}
		if err := s.SaveAlerts(ctx, alerts, nil, nil); err != nil {
			t.Fatalf("batch of %d: %v", n, err)
		}
	}
	// Rows open on one statement while others push it out.
	rows, err := s.stmts.QueryContext(ctx, "SELECT fingerprint FROM alerts ORDER BY fingerprint")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		var n int
		if err := s.stmts.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) + %d FROM alerts", i)).Scan(&n); err != nil {
			t.Fatalf("query %d beside open rows: %v", i, err)
		}
		if n != 6+i {
			t.Errorf("count + %d = %d, want %d", i, n, 6+i)
		}
	}
	var fps []string
	for rows.Next() {
		var fp string
		if err := rows.Scan(&fp); err != nil {
			t.Fatal(err)
		}
		fps = append(fps, fp)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows of an evicted statement: %v", err)
	}
	rows.Close()
	if len(fps) != 6 {
		t.Errorf("rows read after eviction = %v, want 6 fingerprints", fps)
	}
	s.stmts.mu.Lock()
	kept := s.stmts.lru.Len()
	s.stmts.mu.Unlock()
	if kept > 2 {
		t.Errorf("pool keeps %d statements, bound 2", kept)
	}
	got, err := s.ListAlerts(ctx, AlertFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range got {
		if want := at.Add(6 * time.Minute); !a.LastSeen.Equal(want) {
			t.Errorf("alert %s last seen %v, want %v (the last batch)", a.Fingerprint, a.LastSeen, want)
		}
	}
}
