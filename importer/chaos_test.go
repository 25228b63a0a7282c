package importer

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// workerProcess is an importer process for the chaos test: the test binary
// started again with ETLHUB_TEST_WORKER=importer.yaml, logging JSON to
// stderr, until it is stopped or killed.
func workerProcess(path string) int {
	var cfg Config
	if err := config.Load(path, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	im, err := New(ctx, &cfg, log)
	if err != nil {
		log.Error("importer not started", "error", err)
		return 1
	}
	if err := im.Run(ctx, nil); err != nil {
		return 1
	}
	return 0
}

// chaos is the test's view of the servers and the importer processes.
type chaos struct {
	t       *testing.T
	cfg     string
	dir     string
	rdb     *redis.Client
	mu      sync.Mutex
	workers map[string]*exec.Cmd // name -> process
	n       int
	logs    []string
}

// start launches an importer process with its own work directory (as on
// another machine).
func (c *chaos) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	name := fmt.Sprintf("worker%d", c.n)
	work := filepath.Join(c.dir, name)
	cfg := strings.ReplaceAll(c.cfg, "WORKDIR", work)
	path := filepath.Join(c.dir, name+".yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	logPath := filepath.Join(c.dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ETLHUB_TEST_WORKER="+path)
	cmd.Stderr, cmd.Stdout = lf, lf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	lf.Close()
	c.workers[name] = cmd
	c.logs = append(c.logs, logPath)
}

// killOwner kill -9s the process working on the run and says which it was.
func (c *chaos) killOwner(rec *record) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := strings.Split(rec.Worker, ":")
	pid := 0
	if len(parts) == 3 {
		pid, _ = strconv.Atoi(parts[1])
	}
	for name, cmd := range c.workers {
		if cmd.Process.Pid == pid {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			delete(c.workers, name)
			return name
		}
	}
	c.t.Fatalf("no worker process has pid %d (run owner %q)", pid, rec.Worker)
	return ""
}

func (c *chaos) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range c.workers {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
}

// run reads the tenant's latest run from Redis; nil while there is none or
// Redis is down.
func (c *chaos) run(tenant string) *record {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ids, err := c.rdb.ZRange(ctx, indexKey(tenant), -1, -1).Result()
	if err != nil || len(ids) == 0 {
		return nil
	}
	b, err := c.rdb.Get(ctx, runKey(ids[0])).Bytes()
	if err != nil {
		return nil
	}
	var rec record
	if json.Unmarshal(b, &rec) != nil {
		return nil
	}
	return &rec
}

// waitFor polls the tenant's run until ok says so (another process's
// progress, seen as the hub sees it).
func (c *chaos) waitFor(tenant, what string, d time.Duration, ok func(*record) bool) *record {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var last *record
	for time.Now().Before(deadline) {
		if r := c.run(tenant); r != nil {
			last = r
			if ok(r) {
				return r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last != nil {
		c.t.Fatalf("%s: not within %v; run %s is %s/%s, attempt %d, %d of %d rows, error %q", what, d, last.Obs.RunID,
			last.Obs.State, last.Obs.Stage, last.Obs.Attempt, last.Obs.RowsDone, last.Obs.RowsTotal, last.Obs.Error)
	}
	c.t.Fatalf("%s: not within %v; no run", what, d)
	return nil
}

func copyRoster(t *testing.T, src, dst string) {
	os.MkdirAll(dst, 0o755)
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		if e.Name() == "manifest.csv" {
			continue
		}
		data, _ := os.ReadFile(filepath.Join(src, e.Name()))
		os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644)
	}
	data, err := os.ReadFile(filepath.Join(src, "manifest.csv")) // last: the upload is complete
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dst, "manifest.csv"), data, 0o644)
}

// verifyPublished asserts that the tenant's published roster is the run's
// and equals the source exactly: per file, the count and the digest of its
// documents, and no collection of the tenant left beyond the published.
func verifyPublished(t *testing.T, uri, tenant, src string, counts oneroster.GenCounts, runID string) {
	t.Helper()
	ctx := context.Background()
	mc, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(5 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Disconnect(ctx)
	l := &load.Loader{DB: mc.Database("etlhub")}
	ptr, ok, err := l.Current(ctx, tenant)
	if err != nil || !ok || ptr.RunID != runID {
		t.Fatalf("published %+v (%v), want run %s", ptr, err, runID)
	}
	for e, n := range counts {
		want, err := load.FileDigest(os.DirFS(src), e, tenant)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.CollectionDigest(ctx, ptr.Collections[e])
		if err != nil || got.Count != want.Count || got.Sum != want.Sum || got.Count != n || ptr.Counts[e] != n {
			t.Fatalf("%s: published %+v (%v), pointer says %d, the source has %d %+v", e, got, err, ptr.Counts[e], n, want)
		}
	}
	if names, _ := l.Collections(ctx, tenant); len(names) != len(ptr.Collections) || len(names) != len(counts) {
		t.Fatalf("collections %v, published %v, files %v", names, ptr.Collections, counts)
	}
}

// startChaos starts sshd, a durable redis-server and FerretDB, and two
// importer processes (workers: 1 each, lock_ttl 2s) serving the tenants.
func startChaos(t *testing.T, tenants ...string) (*chaos, *testsrv.SSHD, *testsrv.Redis, *testsrv.Ferret) {
	sshd := testsrv.StartSSHD(t)
	rds := testsrv.StartDurableRedis(t)
	fdb := testsrv.StartFerretDB(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "id")
	os.WriteFile(keyFile, sshd.KeyPEM, 0o600)
	c := &chaos{t: t, dir: dir, workers: map[string]*exec.Cmd{},
		rdb: redis.NewClient(&redis.Options{Addr: rds.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond}),
		cfg: fmt.Sprintf(`listen: 127.0.0.1:0
status_token: chaos-status-token-0123456789
work_dir: WORKDIR
redis: {addr: %s}
mongo: {uri: %q}
poll: 100ms
quiet: 300ms
lock_ttl: 2s
heartbeat: 300ms
workers: 1
max_attempts: 30
breaker: {threshold: 3, cooldown: 500ms}
tenants:
`, rds.Addr, fdb.URI)}
	for _, name := range tenants {
		c.cfg += fmt.Sprintf(`  - name: %s
    sftp: {host: %s, port: %d, user: %s, private_key_file: %s, known_hosts: %s, dir: %s, timeout: 5s}
`, name, sshd.Host, sshd.Port, sshd.User, keyFile, sshd.KnownHosts, filepath.Join(sshd.Root, name))
	}
	t.Cleanup(func() { c.rdb.Close() })
	c.start()
	c.start()
	t.Cleanup(c.stopAll)
	return c, sshd, rds, fdb
}

// TestChaos imports a roster while sshd, redis-server and the MongoDB-wire
// server restart three times each and the worker doing the import is
// killed -9 twice (each time with sshd down, so its successor must wait out
// the outage to fetch the files again). The run completes; the published
// roster is the source exactly; every outage shows in the run and the logs.
// A first import of the same roster, without faults, is the baseline.
//
//	ETLHUB_CHAOS_STUDENTS=350000 go test -run TestChaos -timeout 120m -v ./importer/
//
// ETLHUB_CHAOS_VERSION=1.2 imports a OneRoster 1.2 roster instead of 1.1.
func TestChaos(t *testing.T) {
	students := 30000
	if raceEnabled {
		students = 6000
	}
	if v, err := strconv.Atoi(os.Getenv("ETLHUB_CHAOS_STUDENTS")); err == nil && v > 0 {
		students = v
	}
	c, sshd, rds, fdb := startChaos(t, "baseline", "dade")
	src := filepath.Join(c.dir, "roster")
	counts, err := oneroster.Generate(src, oneroster.GenOptions{Students: students, Seed: 11, Version: os.Getenv("ETLHUB_CHAOS_VERSION")})
	if err != nil {
		t.Fatal(err)
	}
	rows := counts.Total()

	// The baseline: the same roster, no faults.
	copyRoster(t, src, filepath.Join(sshd.Root, "baseline"))
	base := c.waitFor("baseline", "the baseline import", 10*time.Minute, func(r *record) bool { return r.Obs.State.Terminal() })
	if base.Obs.State != model.StateSucceeded {
		t.Fatalf("baseline: %+v", base.Obs)
	}
	baseTook := base.Obs.FinishedAt.Sub(*base.UploadCompletedAt)
	t.Logf("baseline: %d rows in %v", rows, baseTook)

	copyRoster(t, src, filepath.Join(sshd.Root, "dade"))
	started := c.waitFor("dade", "the import to start loading", time.Minute, func(r *record) bool { return r.Obs.RowsDone > 0 })
	total := started.Obs.RowsTotal
	faults := []string{"mongo", "redis", "kill+sftp", "mongo", "redis", "sftp", "kill+sftp", "mongo", "redis", "sftp"}
	var faultLog []string
	for i, f := range faults {
		at := total * int64(i+1) / int64(len(faults)+2)
		r := c.waitFor("dade", fmt.Sprintf("progress to %d rows for fault %d (%s)", at, i+1, f), 5*time.Minute, func(r *record) bool {
			return r.Obs.RowsDone >= at || r.Obs.State.Terminal()
		})
		if r.Obs.State.Terminal() {
			t.Fatalf("the import ended (%s) before fault %d of %d: make the roster larger", r.Obs.State, i+1, len(faults))
		}
		switch f {
		case "mongo":
			fdb.Stop()
			time.Sleep(time.Second)
			fdb.Start(t)
		case "redis":
			rds.Stop()
			time.Sleep(700 * time.Millisecond) // over two heartbeats

			rds.Start(t)
		case "sftp":
			sshd.Stop()
			time.Sleep(700 * time.Millisecond)
			sshd.Start(t)
		case "kill+sftp":
			sshd.Stop()
			killed := c.killOwner(r)
			// Its heartbeats stop: the run shows stale before it is taken over.
			st := &runStore{heartbeat: 300 * time.Millisecond}
			c.waitFor("dade", "the killed worker's run shown stale", 10*time.Second, func(n *record) bool {
				return st.view(n, time.Now().UTC()).Stale
			})
			// The next worker takes the run once the lock expires, and must
			// download the files again: it finds the server down.
			c.waitFor("dade", "the run taken over and the SFTP outage recorded", time.Minute, func(n *record) bool {
				return n.Worker != r.Worker && n.Retries["sftp:dade"] > r.Retries["sftp:dade"]
			})
			sshd.Start(t)
			c.start() // the killed machine comes back
			f += " (" + killed + ")"
		}
		faultLog = append(faultLog, fmt.Sprintf("%s at %d/%d rows", f, r.Obs.RowsDone, total))
	}
	end := c.waitFor("dade", "the import to finish", 10*time.Minute, func(r *record) bool { return r.Obs.State.Terminal() })
	if end.Obs.State != model.StateSucceeded {
		t.Fatalf("the import under faults ended %s: %s", end.Obs.State, end.Obs.Error)
	}
	took := end.Obs.FinishedAt.Sub(*end.UploadCompletedAt)
	t.Logf("%d rows (%d students): %v without faults, %v with %d faults; attempts %d; retries %v",
		rows, students, baseTook.Round(100*time.Millisecond), took.Round(100*time.Millisecond), len(faults), end.Obs.Attempt, end.Retries)
	t.Logf("faults: %s", strings.Join(faultLog, "; "))

	// The published roster is the source exactly, collection by collection.
	verifyPublished(t, fdb.URI, "dade", src, counts, end.Obs.RunID)

	// Every outage is on the run: each dependency failed and recovered.
	for _, dep := range []string{"redis", "mongo", "sftp:dade"} {
		seen := false
		for _, o := range end.Outages {
			if o.Dependency == dep && o.To != nil && o.Failures > 0 {
				seen = true
			}
		}
		if !seen || end.Retries[dep] == 0 {
			t.Errorf("no %s outage on the run: outages %+v, retries %v", dep, end.Outages, end.Retries)
		}
	}
	if end.Obs.Attempt < 3 {
		t.Errorf("attempt %d after two kills", end.Obs.Attempt)
	}
	// ... and in the logs, where every line about the run says which.
	c.stopAll()
	failures := map[string]int{}
	for _, p := range c.logs {
		f, _ := os.Open(p)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Errorf("%s: not a JSON line: %s", p, sc.Text())
				continue
			}
			if line["run_id"] == nil {
				continue
			}
			for _, k := range []string{"tenant", "stage", "attempt"} {
				if _, ok := line[k]; !ok {
					t.Errorf("%s: a line about run %v without %s: %s", p, line["run_id"], k, sc.Text())
				}
			}
			if d, ok := line["dependency"].(string); ok && line["tenant"] == "dade" {
				failures[d]++
			}
		}
		f.Close()
	}
	for _, dep := range []string{"redis", "mongo", "sftp:dade"} {
		if failures[dep] == 0 {
			t.Errorf("no logged %s failure during the run; logged %v", dep, failures)
		}
	}
}
