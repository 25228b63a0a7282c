package testsrv

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/embedded"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

var (
	pgOnce sync.Once
	pgAddr string
	pgErr  error
	pgSeq  atomic.Int64
)

// Postgres returns the DSN of a new, empty database on a PostgreSQL server
// that this test process started (initdb + pg_ctl on a free loopback port).
// The server is shared by the package's tests and stopped by Main.
func Postgres(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgAddr, pgErr = startPostgres(FreePort(t)) })
	if pgErr != nil {
		Missing(t, "PostgreSQL", pgErr)
	}
	host, port, _ := strings.Cut(pgAddr, ":")
	admin := fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable", host, port)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer db.Close()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), pgSeq.Add(1))
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("postgres: create database: %v", err)
	}
	return fmt.Sprintf("host=%s port=%s user=postgres dbname=%s sslmode=disable", host, port, name)
}

func startPostgres(port int) (string, error) {
	initdb, err := findBinary("initdb", "/usr/lib/postgresql/*/bin")
	if err != nil {
		return "", err
	}
	pgctl, err := findBinary("pg_ctl", "/usr/lib/postgresql/*/bin")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "etlhub-pg-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	cred, err := postgresCredential(dir)
	if err != nil {
		return "", err
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", filepath.Base(name), err, lastLines(string(out), 5))
		}
		return nil
	}
	if err := run(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return "", err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off", port, dir)
	if err := run(pgctl, "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return "", err
	}
	onStop(func() {
		_ = run(pgctl, "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return addr, embedded.WaitTCP(addr, 30*time.Second)
}

// postgresCredential returns the postgres user when running as root (initdb
// refuses root), giving it dir; nil otherwise.
func postgresCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// PostgresServer is a PostgreSQL server of one test's own, which the test
// can stop and start again (a store outage) on the same port and data.
type PostgresServer struct {
	Addr  string
	pgctl string
	data  string
	opts  string
	dir   string
	cred  *syscall.Credential
	seq   int
}

// NewPostgres starts a PostgreSQL server for this test alone; fsync chooses
// durable commits (benchmarks) or fast ones. It is stopped when the test ends.
func NewPostgres(t testing.TB, fsync bool) *PostgresServer {
	t.Helper()
	initdb, err := findBinary("initdb", "/usr/lib/postgresql/*/bin")
	if err != nil {
		Missing(t, "PostgreSQL", err)
	}
	pgctl, err := findBinary("pg_ctl", "/usr/lib/postgresql/*/bin")
	if err != nil {
		Missing(t, "PostgreSQL", err)
	}
	dir, err := os.MkdirTemp("", "etlhub-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cred, err := postgresCredential(dir)
	if err != nil {
		Missing(t, "PostgreSQL", err)
	}
	port := FreePort(t)
	p := &PostgresServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), pgctl: pgctl, data: filepath.Join(dir, "data"), dir: dir, cred: cred}
	p.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", port, dir)
	if !fsync {
		p.opts += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
	}
	if err := p.run(initdb, "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.run(p.pgctl, "-D", p.data, "-m", "immediate", "-w", "stop"); os.RemoveAll(dir) })
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *PostgresServer) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(name), err, lastLines(string(out), 5))
	}
	return nil
}

// Start starts the server (again) and waits until it takes connections.
func (p *PostgresServer) Start() error {
	if err := p.run(p.pgctl, "-D", p.data, "-l", filepath.Join(p.dir, "log"), "-o", p.opts, "-w", "-t", "60", "start"); err != nil {
		return err
	}
	return embedded.WaitTCP(p.Addr, 30*time.Second)
}

// Stop stops the server at once (immediate mode: clients are cut off, as
// when the database's machine fails).
func (p *PostgresServer) Stop() error {
	return p.run(p.pgctl, "-D", p.data, "-m", "immediate", "-w", "stop")
}

// DSN creates a new database and returns its DSN.
func (p *PostgresServer) DSN(t testing.TB) string {
	t.Helper()
	host, port, _ := strings.Cut(p.Addr, ":")
	db, err := sql.Open("pgx", fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=disable", host, port))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p.seq++
	name := fmt.Sprintf("own%d", p.seq)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("postgres: create database: %v", err)
	}
	return fmt.Sprintf("host=%s port=%s user=postgres dbname=%s sslmode=disable", host, port, name)
}
