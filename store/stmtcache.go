package store

import (
	"container/list"
	"context"
	"database/sql"
	"sync"

	"gorm.io/gorm"
)

// stmtPool is SQLite's connection pool for gorm with its statements
// prepared once and kept: on SQLite a statement's preparation costs about as
// much as running it, and the alert loop runs the same few dozen statements
// every tick.
//
// gorm's own PrepareStmt does not do this inside transactions: a statement
// first met in a transaction is prepared on that *sql.Tx, and database/sql
// then prepares it again in every later transaction (Tx.StmtContext cannot
// reuse a statement that belongs to another transaction). Here every
// statement is prepared on the *sql.DB, and a transaction takes it with
// Tx.StmtContext, which reuses the connection's prepared copy.
//
// At most max statements are kept, the least recently used closed past it
// (queries with IN lists of many lengths would otherwise grow it without
// bound). A statement is closed only when no call is using it.
type stmtPool struct {
	db  *sql.DB
	max int

	mu    sync.Mutex
	byKey map[string]*list.Element // of *pooledStmt
	lru   list.List                // front: most recently used
}

type pooledStmt struct {
	query   string
	stmt    *sql.Stmt
	users   int
	evicted bool
}

func newStmtPool(db *sql.DB, max int) *stmtPool {
	return &stmtPool{db: db, max: max, byKey: map[string]*list.Element{}}
}

var (
	_ gorm.ConnPool         = (*stmtPool)(nil)
	_ gorm.ConnPoolBeginner = (*stmtPool)(nil)
	_ gorm.GetDBConnector   = (*stmtPool)(nil)
	_ gorm.Tx               = (*stmtTx)(nil)
)

// acquire returns query's statement, preparing it on first use; release
// must follow.
func (p *stmtPool) acquire(ctx context.Context, query string) (*pooledStmt, error) {
	p.mu.Lock()
	if e, ok := p.byKey[query]; ok {
		ps := e.Value.(*pooledStmt)
		ps.users++
		p.lru.MoveToFront(e)
		p.mu.Unlock()
		return ps, nil
	}
	p.mu.Unlock()
	// Prepared outside the lock: two callers may prepare the same query at
	// once; the second keeps the first's and closes its own.
	stmt, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.byKey[query]; ok {
		stmt.Close()
		ps := e.Value.(*pooledStmt)
		ps.users++
		p.lru.MoveToFront(e)
		return ps, nil
	}
	ps := &pooledStmt{query: query, stmt: stmt, users: 1}
	p.byKey[query] = p.lru.PushFront(ps)
	for p.lru.Len() > p.max {
		old := p.lru.Back()
		p.lru.Remove(old)
		o := old.Value.(*pooledStmt)
		delete(p.byKey, o.query)
		o.evicted = true
		if o.users == 0 {
			o.stmt.Close()
		}
	}
	return ps, nil
}

func (p *stmtPool) release(ps *pooledStmt) {
	p.mu.Lock()
	ps.users--
	closeIt := ps.evicted && ps.users == 0
	p.mu.Unlock()
	if closeIt {
		// Rows still open on it keep the statement alive until they close
		// (database/sql counts them).
		ps.stmt.Close()
	}
}

// close closes every kept statement and the database.
func (p *stmtPool) close() error {
	p.mu.Lock()
	for e := p.lru.Front(); e != nil; e = e.Next() {
		ps := e.Value.(*pooledStmt)
		ps.evicted = true
		if ps.users == 0 {
			ps.stmt.Close()
		}
	}
	p.lru.Init()
	clear(p.byKey)
	p.mu.Unlock()
	return p.db.Close()
}

func (p *stmtPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.db.PrepareContext(ctx, query)
}

func (p *stmtPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ps, err := p.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	defer p.release(ps)
	return ps.stmt.ExecContext(ctx, args...)
}

func (p *stmtPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ps, err := p.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	defer p.release(ps)
	return ps.stmt.QueryContext(ctx, args...)
}

func (p *stmtPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ps, err := p.acquire(ctx, query)
	if err != nil {
		// A *sql.Row cannot be made to carry an error: the query runs
		// unprepared and reports its own.
		return p.db.QueryRowContext(ctx, query, args...)
	}
	defer p.release(ps)
	return ps.stmt.QueryRowContext(ctx, args...)
}

func (p *stmtPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

func (p *stmtPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &stmtTx{Tx: tx, pool: p}, nil
}

// stmtTx is a transaction running the pool's statements on its connection.
type stmtTx struct {
	*sql.Tx
	pool  *stmtPool
	stmts map[string]*sql.Stmt // this transaction's copies, closed with it
}

// stmt returns query's statement bound to the transaction, or nil when the
// pool cannot prepare it: a statement on a table created by this
// transaction (a migration) does not prepare outside it, and runs
// unprepared here.
func (t *stmtTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if s, ok := t.stmts[query]; ok {
		return s
	}
	ps, err := t.pool.acquire(ctx, query)
	if err != nil {
		return nil
	}
	defer t.pool.release(ps)
	s := t.Tx.StmtContext(ctx, ps.stmt)
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[query] = s
	return s
}

func (t *stmtTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *stmtTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *stmtTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
