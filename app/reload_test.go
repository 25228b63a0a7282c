package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
)

// lockedBuffer is a log the test reads while the hub writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// adminCall sends a request with the test config's admin token and
// returns the answer's status and body.
func adminCall(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReload: POST /api/v1/reload and SIGHUP read the config again; a good
// one runs (a new job shows), one with problems is refused with its lines and
// keys, logged, and the running config stays.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etlhub.yaml")
	doc := strings.Replace(base, "listen: 127.0.0.1:8080", "listen: 127.0.0.1:0", 1) +
		"store: {driver: sqlite, path: " + filepath.Join(dir, "hub.db") + "}\nrules: {tick: 1s}\n"
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(doc)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan struct{})
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ServeWith(ctx, cfg, log, ServeOptions{Ready: func(a string) { addr <- a }, Load: func() (*Config, error) { return Load(path) }, Reload: hup})
	}()
	defer func() { cancel(); <-done }()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-done:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("the hub did not start")
	}
	call := func(method, p string) (int, string) { return adminCall(t, method, url+p) }
	jobs := func() int {
		_, body := call("GET", "/api/v1/status")
		var st struct{ Jobs []any }
		json.Unmarshal([]byte(body), &st)
		return len(st.Jobs)
	}
	if n := jobs(); n != 1 {
		t.Fatalf("%d jobs at start", n)
	}
	second := "  - {tenant: dade, job: sis-export, timezone: UTC, schedule: \"0 3 * * *\", deadline: \"06:00\", stale_after: 20m}\n"
	write(strings.Replace(doc, "store:", "rules_typo: 1\nstore:", 1))
	code, body := call("POST", "/api/v1/reload")
	if code != 422 || !strings.Contains(body, `"key":"rules_typo"`) || !strings.Contains(body, `"line":12`) {
		t.Fatalf("a config with a problem: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "config reload refused") || !strings.Contains(logs.String(), `"key":"rules_typo"`) {
		t.Fatalf("the refusal is not logged with its key:\n%s", logs.String())
	}
	if n := jobs(); n != 1 {
		t.Fatalf("after a refused reload: %d jobs", n)
	}
	write(strings.Replace(doc, "store:", second+"store:", 1))
	code, body = call("POST", "/api/v1/reload")
	if code != 200 || !strings.Contains(body, `"status":"reloaded"`) {
		t.Fatalf("reload: %d %s", code, body)
	}
	if n := jobs(); n != 2 {
		t.Fatalf("after the reload: %d jobs, want 2", n)
	}
	// SIGHUP (serve's channel): back to one job.
	write(doc)
	hup <- struct{}{}
	waitFor(t, "SIGHUP reloads", 30*time.Second, func() bool { return jobs() == 1 })
	// The store stays: a changed path is refused.
	write(strings.Replace(doc, "hub.db", "other.db", 1))
	if code, body := call("POST", "/api/v1/reload"); code != 422 || !strings.Contains(body, `"key":"store"`) {
		t.Fatalf("a new store: %d %s", code, body)
	}
}

// TestReloadReachesEveryReplica (PostgreSQL): a reload on one replica is
// announced through the store, and the other replica reads its own config
// file again: a job added to both files shows on both; a file with a
// problem on the other replica is refused there (logged), its config stays.
func TestReloadReachesEveryReplica(t *testing.T) {
	dsn := testsrv.Postgres(t)
	dir := t.TempDir()
	doc := strings.Replace(base, "listen: 127.0.0.1:8080", "listen: 127.0.0.1:0", 1) +
		"store: {driver: postgres, dsn: \"" + dsn + "\"}\nrules: {tick: 1s}\ncluster: {lease_ttl: 3s, lease_renew: 1s, replica_id: ID}\n"
	second := "  - {tenant: dade, job: sis-export, timezone: UTC, schedule: \"0 3 * * *\", deadline: \"06:00\", stale_after: 20m}\n"
	type replica struct {
		path string
		url  string
		logs *lockedBuffer
	}
	ctx, cancel := context.WithCancel(context.Background())
	var dones []chan error
	defer func() {
		cancel()
		for _, d := range dones {
			<-d
		}
	}()
	start := func(id string) *replica {
		r := &replica{path: filepath.Join(dir, id+".yaml"), logs: &lockedBuffer{}}
		if err := os.WriteFile(r.path, []byte(strings.Replace(doc, "replica_id: ID", "replica_id: "+id, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(r.path)
		if err != nil {
			t.Fatal(err)
		}
		addr, done := make(chan string, 1), make(chan error, 1)
		dones = append(dones, done)
		go func() {
			done <- ServeWith(ctx, cfg, slog.New(slog.NewJSONHandler(r.logs, nil)),
				ServeOptions{Ready: func(a string) { addr <- a }, Load: func() (*Config, error) { return Load(r.path) }})
		}()
		select {
		case a := <-addr:
			r.url = "http://" + a
		case err := <-done:
			t.Fatal(err)
		case <-time.After(60 * time.Second):
			t.Fatal("the hub did not start")
		}
		return r
	}
	edit := func(r *replica, from, to string) {
		b, err := os.ReadFile(r.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r.path, []byte(strings.Replace(string(b), from, to, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	call := func(r *replica, method, p string) (int, string) { return adminCall(t, method, r.url+p) }
	jobs := func(r *replica) int {
		_, body := call(r, "GET", "/api/v1/status")
		var st struct{ Jobs []any }
		json.Unmarshal([]byte(body), &st)
		return len(st.Jobs)
	}
	a, b := start("hub-a"), start("hub-b")
	if jobs(a) != 1 || jobs(b) != 1 {
		t.Fatalf("jobs at start: %d, %d", jobs(a), jobs(b))
	}
	edit(a, "store:", second+"store:")
	edit(b, "store:", second+"store:")
	code, body := call(a, "POST", "/api/v1/reload")
	if code != 200 || !strings.Contains(body, `"status":"reloaded"`) || !strings.Contains(body, `"replicas":"told`) {
		t.Fatalf("reload on hub-a: %d %s", code, body)
	}
	waitFor(t, "hub-b reloads after hub-a", 20*time.Second, func() bool { return jobs(b) == 2 })
	if !strings.Contains(b.logs.String(), "replica hub-a reloaded") {
		t.Errorf("hub-b's log does not say why it reloaded:\n%s", b.logs.String())
	}
	// hub-b's file now has a problem: hub-a's next reload runs, hub-b
	// refuses its own and keeps two jobs.
	edit(a, second, "")
	edit(b, "store:", "rules_typo: 1\nstore:")
	if code, body := call(a, "POST", "/api/v1/reload"); code != 200 {
		t.Fatalf("second reload on hub-a: %d %s", code, body)
	}
	waitFor(t, "hub-b refuses its config with a problem", 20*time.Second, func() bool {
		return strings.Contains(b.logs.String(), "config reload refused") && strings.Contains(b.logs.String(), `"key":"rules_typo"`)
	})
	if jobs(a) != 1 || jobs(b) != 2 {
		t.Errorf("after hub-b's refusal: hub-a %d jobs (want 1), hub-b %d (want 2, its running config)", jobs(a), jobs(b))
	}
	// hub-a is not reloaded by its own announcement again and again.
	if n := strings.Count(a.logs.String(), `"msg":"config reloaded"`); n != 2 {
		t.Errorf("hub-a reloaded %d times, want 2", n)
	}
}
