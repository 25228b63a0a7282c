package app

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/collectors"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// depRig is the hub's dependency path on a simulated clock: the probes (the
// one collectors runner), the sink, the store and the alert loop. Each round
// is 30 simulated seconds: every source probes its real server once, then
// the rules tick.
type depRig struct {
	t     *testing.T
	now   time.Time
	cfg   *Config
	st    *store.Store
	loop  *alerting.Loop
	run   *collectors.Runner
	trans []model.Transition
}

// Short for-durations and keep-firing-fors and a baseline of eight probes,
// so a test is a few dozen rounds; fast backoff, so a failing probe is
// tried every round.
const depRules = `rules:
  tick: 5s
  timings:
    dependency-degraded: {for: 1m, keep_firing_for: 1m}
    dependency-down: {for: 1m, keep_firing_for: 1m}
  dependencies: {min_baseline: 8}
`

func newDepRig(t *testing.T, sources string) *depRig {
	t.Helper()
	cfg, probs := parse(t, base+"store: {driver: sqlite, path: "+filepath.Join(t.TempDir(), "hub.db")+"}\n"+depRules+"sources:\n"+sources)
	if len(probs) != 0 {
		t.Fatalf("config: %+v", probs)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, cfg.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &depRig{t: t, now: time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC), cfg: cfg, st: st}
	clock := func() time.Time { return r.now }
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	ing := NewIngestor(st, reg)
	ing.now = clock
	r.loop = alerting.New(cfg.alerting(clock), st, log, reg)
	ing.measured = r.loop.Measure
	r.run, err = collectors.NewRunner(collectors.RunnerConfig{Sources: cfg.Sources}, collectorSink{ing}, log, collectors.NewMetrics(reg), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.run.Stop(); st.Close() })
	return r
}

// round probes every source once and ticks the rules; it returns the
// round's transitions.
func (r *depRig) round() []model.Transition {
	r.t.Helper()
	r.now = r.now.Add(30 * time.Second)
	ctx := context.Background()
	for _, s := range r.cfg.Sources {
		r.run.RunOnce(ctx, s.Name)
	}
	trans, err := r.loop.StepTransitions(ctx, r.now)
	if err != nil {
		r.t.Fatal(err)
	}
	r.trans = append(r.trans, trans...)
	return trans
}

// until runs rounds (at most n) until a transition of rule with status
// comes; it fails the test if none does.
func (r *depRig) until(rule string, status model.TransitionKind, n int) model.Transition {
	r.t.Helper()
	for i := 0; i < n; i++ {
		for _, tr := range r.round() {
			if tr.Alert.Rule == rule && tr.Status == status {
				return tr
			}
		}
	}
	deps, _ := r.st.Dependencies(context.Background())
	r.t.Fatalf("no %s %s in %d rounds; transitions %+v; latest measurements %+v", rule, status, n, r.trans, deps)
	return model.Transition{}
}

// quiet runs n rounds and fails on any firing transition.
func (r *depRig) quiet(n int) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		for _, tr := range r.round() {
			if tr.Status == model.TransitionFiring {
				deps, _ := r.st.Dependencies(context.Background())
				r.t.Fatalf("round %d of the baseline: %s fired: %s (measurements %+v)", i, tr.Alert.Rule, tr.Alert.Summary, deps)
			}
		}
	}
}

func (r *depRig) latest(subject string) model.Measurement {
	r.t.Helper()
	deps, err := r.st.Dependencies(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	for _, d := range deps {
		if d.Subject == subject {
			return d
		}
	}
	r.t.Fatalf("no measurement of %s in %+v", subject, deps)
	return model.Measurement{}
}

// Redis filled towards maxmemory and hammered with clients past
// maxclients: dependency-degraded names the memory, the connections and the
// refusals; emptied and let go, it resolves.
func TestRedisFilledAndHammeredIsDegradedThenResolves(t *testing.T) {
	srv := testsrv.StartRedisWith(t, "--maxmemory", "4mb", "--maxmemory-policy", "noeviction", "--maxclients", "24")
	r := newDepRig(t, fmt.Sprintf(`  - {name: redis-main, kind: redis, schedule: "@every 30s", timeout: 3s, backoff: {base: 1s, max: 10s},
     redis: {addr: "%s"}, probe: {subject: "redis:main"}}
`, srv.Addr))
	r.quiet(10)
	m := r.latest("redis:main")
	if !m.Up || m.Values[model.ValueMemoryUsedRatio] <= 0 || m.Values[model.ValueMemoryUsedRatio] > 0.5 || m.Values[model.ValueLatencyMs] <= 0 {
		t.Fatalf("baseline measurement %+v", m)
	}
	ctx := context.Background()
	load := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 1, MaxRetries: -1})
	defer load.Close()
	val := strings.Repeat("x", 32<<10)
	for i := 0; ; i++ {
		if err := load.Set(ctx, fmt.Sprintf("fill:%d", i), val, 0).Err(); err != nil {
			if !strings.Contains(err.Error(), "OOM") {
				t.Fatalf("filling: %v", err)
			}
			break // full: noeviction refuses writes
		}
		if i > 1000 {
			t.Fatal("never filled")
		}
	}
	// Hammered: more clients than maxclients; those past it are refused.
	var hammer []net.Conn
	for i := 0; i < 30; i++ {
		c, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "PING\r\n")
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		bufio.NewReader(c).ReadString('\n')
		hammer = append(hammer, c)
	}
	tr := r.until(rules.RuleDependencyDegraded, model.TransitionFiring, 8)
	a := tr.Alert
	t.Logf("%s fired: %s", a.Rule, a.Summary)
	if a.Scope != model.ScopeShared || a.Severity != model.SeverityWarning || a.Fingerprint != "dependency-degraded|redis:main" ||
		!strings.HasPrefix(a.Summary, "Redis redis:main memory at ") || !strings.Contains(a.Summary, "maxmemory") ||
		!strings.Contains(a.Summary, "connections at") || !strings.Contains(a.Summary, "refused") {
		t.Fatalf("degraded alert %+v", a)
	}
	m = r.latest("redis:main")
	if m.Values[model.ValueMemoryUsedRatio] < 0.9 || m.Values[model.ValueConnectionsUsedRatio] < 0.9 {
		t.Fatalf("measurement while degraded %+v", m)
	}
	// Recovery: emptied, the clients gone.
	for _, c := range hammer {
		c.Close()
	}
	if err := load.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r.until(rules.RuleDependencyDegraded, model.TransitionResolved, 10)
	if m := r.latest("redis:main"); m.Values[model.ValueMemoryUsedRatio] > 0.5 {
		t.Fatalf("after recovery %+v", m)
	}
}

// FerretDB (a real MongoDB wire server) made slow by a blocking load beside
// it (a writer holding its database's lock, as a bulk load does): the
// probe's write waits, dependency-degraded names its latency against its
// own baseline; the load ends, it resolves. FerretDB's serverStatus has no
// "connections" or "opcounters": those values stay absent.
func TestFerretDBSlowedIsDegradedThenResolves(t *testing.T) {
	fr := testsrv.StartFerretDB(t)
	r := newDepRig(t, fmt.Sprintf(`  - {name: roster-db, kind: mongodb, schedule: "@every 30s", timeout: 10s, backoff: {base: 1s, max: 10s},
     mongodb: {uri: "%s", database: roster, write_check: true}, probe: {subject: "mongodb:roster"}}
`, fr.URI))
	r.quiet(12)
	m := r.latest("mongodb:roster")
	if !m.Up || m.Values["write_ms"] <= 0 {
		t.Fatalf("baseline %+v", m)
	}
	for _, absent := range []string{model.ValueConnections, model.ValueConnectionsUsedRatio, model.ValueOpsPerS} {
		if _, ok := m.Values[absent]; ok {
			t.Fatalf("FerretDB reported %s (%v): update the README's list of what it lacks", absent, m.Values)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(fr.Dir(), "roster.sqlite")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a writer that holds the database most of the time
		defer wg.Done()
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				return
			}
			if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err == nil {
				time.Sleep(300 * time.Millisecond)
				conn.ExecContext(ctx, "COMMIT")
			}
			conn.Close()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	tr := r.until(rules.RuleDependencyDegraded, model.TransitionFiring, 8)
	close(stop)
	wg.Wait()
	a := tr.Alert
	t.Logf("%s fired: %s", a.Rule, a.Summary)
	if a.Scope != model.ScopeShared || !strings.HasPrefix(a.Summary, "MongoDB mongodb:roster latency ") ||
		!strings.Contains(a.Summary, "× its usual") || !strings.Contains(a.Summary, "currentOp") {
		t.Fatalf("degraded alert %+v", a)
	}
	r.until(rules.RuleDependencyDegraded, model.TransitionResolved, 12)
}

// sshd with MaxStartups 1: while one connection waits before login, every
// other is refused; the probe counts its refused attempts, the endpoint is
// down (all three refused) and pages; the waiting connection goes, the probe
// logs in again and the alert resolves. The host key is checked against
// known_hosts.
func TestSSHDMaxStartupsRefusalsAreDownThenResolve(t *testing.T) {
	sshd := testsrv.StartSSHDWith(t, "MaxStartups 1:100:1\nLoginGraceTime 60")
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, sshd.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	r := newDepRig(t, fmt.Sprintf(`  - {name: dade-sftp, kind: sftp, schedule: "@every 30s", timeout: 5s, backoff: {base: 1s, max: 10s},
     sftp: {host: %s, port: %d, user: %s, private_key_file: %s, known_hosts: %s, dir: %s},
     probe: {tenant: dade}}
`, sshd.Host, sshd.Port, sshd.User, key, sshd.KnownHosts, sshd.Root))
	subject := fmt.Sprintf("sftp:%s:%d", sshd.Host, sshd.Port)
	r.quiet(4)
	m := r.latest(subject)
	if !m.Up || m.Tenant != "dade" || m.Values[model.ValueLoginMs] <= 0 || m.Values[model.ValueRejectedConnections] != 0 {
		t.Fatalf("baseline %+v", m)
	}
	// One connection that never logs in holds sshd's only pre-auth slot.
	hold, err := net.DialTimeout("tcp", sshd.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hold.SetReadDeadline(time.Now().Add(5 * time.Second))
	if banner, err := bufio.NewReader(hold).ReadString('\n'); err != nil || !strings.HasPrefix(banner, "SSH-2.0") {
		t.Fatalf("banner %q, %v", banner, err)
	}
	tr := r.until(rules.RuleDependencyDown, model.TransitionFiring, 6)
	a := tr.Alert
	t.Logf("%s fired: %s", a.Rule, a.Summary)
	if a.Tenant != "dade" || a.Scope != "" || !strings.Contains(a.Summary, "SFTP "+subject+" is down since") ||
		!strings.Contains(a.Summary, "MaxStartups") {
		t.Fatalf("down alert %+v", a)
	}
	if m := r.latest(subject); m.Up || m.Values[model.ValueRejectedConnections] != 3 {
		t.Fatalf("measurement while refused %+v; want down with 3 refused attempts", m)
	}
	for _, x := range r.trans {
		if x.Alert.Rule == rules.RuleSourceDown {
			t.Fatalf("source-down paged beside dependency-down: %+v", x.Alert)
		}
	}
	hold.Close()
	r.until(rules.RuleDependencyDown, model.TransitionResolved, 10)
	if m := r.latest(subject); !m.Up {
		t.Fatalf("after recovery %+v", m)
	}
}
