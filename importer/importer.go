// Package importer runs the import: for each tenant it watches the SFTP inbox
// until an upload is complete, then, holding the tenant's Redis lock,
// downloads, validates (OneRoster), decides by policy, loads a new MongoDB
// generation and publishes it, uploads the data-quality report to the
// district's reports/ folder and archives the files. Its runs are served in
// the observation schema at GET /api/v1/runs for the hub.
package importer

import (
	"context"
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/logship"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/breaker"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Config is importer.yaml.
type Config struct {
	// Version is the binary's version (not read from the file), shown in
	// etlhub_importer_build_info.
	Version string `yaml:"-"`
	Listen  string `yaml:"listen"`
	WorkDir string `yaml:"work_dir"`
	// StatusToken is the bearer token every endpoint but /healthz requires
	// (runs, reports, breakers, /metrics); at least 16 characters.
	StatusToken config.Secret `yaml:"status_token"`
	// InsecureNoAuth serves the API without a token; it must be said
	// explicitly (a loopback-only test setup), never by leaving the token out.
	InsecureNoAuth bool `yaml:"insecure_no_auth"`
	Redis          struct {
		Addr     string        `yaml:"addr"`
		Password config.Secret `yaml:"password"`
	} `yaml:"redis"`
	Mongo struct {
		URI      config.Secret `yaml:"uri"`
		Database string        `yaml:"database"`
	} `yaml:"mongo"`
	Poll    time.Duration `yaml:"poll"`
	Quiet   time.Duration `yaml:"quiet"`
	Marker  string        `yaml:"marker"`
	LockTTL time.Duration `yaml:"lock_ttl"`
	// Heartbeat is how often a running run renews its lock and saves its
	// progress (default 5s; under half of lock_ttl).
	Heartbeat time.Duration `yaml:"heartbeat"`
	// Workers is how many runs this process works on at once, each for a
	// different tenant (default 2).
	Workers int `yaml:"workers"`
	// MaxAttempts is how many times a run is tried (resumed after a
	// transient failure or a dead worker) before it fails (default 8).
	MaxAttempts int `yaml:"max_attempts"`
	// Breaker opens after Threshold consecutive failures of a dependency and
	// probes again after Cooldown (doubling while it keeps failing).
	Breaker struct {
		Threshold int           `yaml:"threshold"`
		Cooldown  time.Duration `yaml:"cooldown"`
	} `yaml:"breaker"`
	Tenants []TenantConfig `yaml:"tenants"`
	Log     struct {
		Level string `yaml:"level"`
		// Sumo ships the JSON log lines to a Sumo Logic HTTP Source.
		Sumo *logship.Config `yaml:"sumo"`
	} `yaml:"log"`
}

// TenantConfig is one district.
type TenantConfig struct {
	Name string `yaml:"name"`
	Job  string `yaml:"job"`
	// Group is the isolation group whose process serves the tenant
	// (`etlhub importer --group NAME`); empty is the shared group.
	Group string `yaml:"group"`
	// Schedule is when files are expected (5-field cron in Timezone): a run
	// waiting for files opens then, so a missing upload is visible.
	Schedule string           `yaml:"schedule"`
	Timezone string           `yaml:"timezone"`
	SFTP     inbox.Config     `yaml:"sftp"`
	Policy   oneroster.Policy `yaml:"policy"`

	sched cron.Schedule
}

// SharedGroup is the isolation group of tenants without one.
const SharedGroup = "shared"

// InGroup keeps the tenants of one isolation group, so that a large
// district's load and failures run in a process of their own.
func (c *Config) InGroup(group string) []TenantConfig {
	var out []TenantConfig
	for _, t := range c.Tenants {
		g := t.Group
		if g == "" {
			g = SharedGroup
		}
		if g == group {
			out = append(out, t)
		}
	}
	return out
}

// Validate sets defaults and checks the config.
func (c *Config) Validate(p *config.Problems) {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8081"
	}
	if c.WorkDir == "" {
		c.WorkDir = "./data/importer"
	}
	if c.Poll == 0 {
		c.Poll = 30 * time.Second
	}
	if c.Quiet == 0 {
		c.Quiet = 2 * time.Minute
	}
	if c.LockTTL == 0 {
		c.LockTTL = time.Minute
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = min(5*time.Second, c.LockTTL/3)
	}
	if c.Heartbeat <= 0 || 2*c.Heartbeat > c.LockTTL {
		p.Add("heartbeat", "%v must be positive and under half of lock_ttl (%v)", c.Heartbeat, c.LockTTL)
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.Workers < 1 || c.Workers > 256 {
		p.Add("workers", "%d is not between 1 and 256", c.Workers)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 8
	}
	if c.MaxAttempts < 1 {
		p.Add("max_attempts", "%d must be at least 1", c.MaxAttempts)
	}
	if c.Breaker.Threshold == 0 {
		c.Breaker.Threshold = 5
	}
	if c.Breaker.Cooldown == 0 {
		c.Breaker.Cooldown = 30 * time.Second
	}
	if c.Breaker.Threshold < 1 || c.Breaker.Cooldown < 0 {
		p.Add("breaker", "threshold must be at least 1 and cooldown positive")
	}
	switch {
	case c.InsecureNoAuth && c.StatusToken != "":
		p.Add("insecure_no_auth", "is true but status_token is set: choose one")
	case c.InsecureNoAuth:
	case c.StatusToken == "":
		p.Add("status_token", "is required: the API serves runs and reports with roster values (or set insecure_no_auth: true to serve it without a token)")
	case len(c.StatusToken.Value()) < 16:
		p.Add("status_token", "must be at least 16 characters (or set insecure_no_auth: true to serve the API without a token)")
	}
	if c.Redis.Addr == "" {
		p.Add("redis.addr", "is required")
	}
	if c.Mongo.URI == "" {
		p.Add("mongo.uri", "is required")
	}
	if c.Mongo.Database == "" {
		c.Mongo.Database = "etlhub"
	}
	seen := map[string]bool{}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		k := fmt.Sprintf("tenants[%d]", i)
		if t.Name == "" || seen[t.Name] {
			p.Add(k+".name", "is required and unique")
		}
		seen[t.Name] = true
		if t.Job == "" {
			t.Job = "roster-import"
		}
		t.SFTP.Validate(p, k+".sftp")
		if t.Schedule != "" {
			tz := t.Timezone
			if tz == "" {
				tz = "UTC"
			}
			sched, err := model.ParseCron("CRON_TZ=" + tz + " " + t.Schedule)
			if err != nil {
				p.Add(k+".schedule", "%q in %q: %v", t.Schedule, tz, err)
			}
			t.sched = sched
		}
		if t.Policy == (oneroster.Policy{}) {
			t.Policy = oneroster.DefaultPolicy
		}
		if err := t.Policy.Check(); err != nil {
			p.Add(k+".policy", "%v", err)
		}
	}
	if len(c.Tenants) == 0 {
		p.Add("tenants", "at least one tenant is required")
	}
}

// Importer is the running importer, in parts that each do one thing: the
// run store (records, queues, leases and reports in Redis), the guard
// (every call to Redis, MongoDB or a district's SFTP server through its
// breaker, with retries), a detector per tenant of the group (one process
// at a time, by lease) that watches the inbox and queues complete uploads,
// and a pool of workers that take queued runs, one per tenant at a time,
// and carry them through the stages from their checkpoints.
type Importer struct {
	cfg      *Config
	log      *slog.Logger
	rdb      *redis.Client
	mongo    *mongo.Client
	store    *runStore
	guard    *guard
	detector *detector
	workers  *workers
	metrics  *metrics
}

// New connects to Redis and MongoDB.
func New(ctx context.Context, cfg *Config, log *slog.Logger) (*Importer, error) {
	if _, err := privateDir(cfg.WorkDir); err != nil {
		return nil, fmt.Errorf("work_dir: %w", err)
	}
	// The client's own silent retries are off: our policy retries, and
	// counts and logs every failure, so an outage is never invisible.
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Password: cfg.Redis.Password.Value(), MaxRetries: -1,
		DialTimeout: 3 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.Mongo.URI.Value()).SetTimeout(60 * time.Second).
		SetServerSelectionTimeout(5 * time.Second).SetConnectTimeout(5 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("mongo: %v", strings.ReplaceAll(err.Error(), cfg.Mongo.URI.Value(), "<uri>"))
	}
	redis.SetLogger(redisLog{log})
	host, _ := os.Hostname()
	var b [3]byte
	crand.Read(b[:])
	return assemble(cfg, log, rdb, mc, fmt.Sprintf("%s:%d:%x", host, os.Getpid(), b)), nil
}

// assemble makes the importer's parts on its connections; id is this
// process, as a queue consumer, lease holder and run owner. Without
// MongoDB (mc nil) nothing can be loaded.
func assemble(cfg *Config, log *slog.Logger, rdb *redis.Client, mc *mongo.Client, id string) *Importer {
	st := &runStore{rdb: rdb, id: id, tenants: cfg.Tenants, heartbeat: cfg.Heartbeat}
	g := newGuard(cfg, log)
	m := newMetrics(cfg, st, g)
	g.failures = m.failures
	loader := &load.Loader{}
	if mc != nil {
		loader.DB = mc.Database(cfg.Mongo.Database)
	}
	return &Importer{cfg: cfg, log: log, rdb: rdb, mongo: mc, store: st, guard: g, metrics: m,
		detector: newDetector(cfg, log, st, g),
		workers: &workers{store: st, rdb: rdb, guard: g, metrics: m, log: log, id: id, tenants: cfg.Tenants,
			stages:  &stages{store: st, guard: g, loader: loader, workDir: cfg.WorkDir},
			idle:    min(cfg.Poll, time.Second),
			lockTTL: cfg.LockTTL, beat: cfg.Heartbeat, maxAttempts: cfg.MaxAttempts,
			attempts: retry.Policy{Base: 2 * time.Second, Max: 2 * time.Minute, Factor: 2, Jitter: 0.5}},
	}
}

// Run serves the status API, watches every tenant and works the queue until
// ctx ends.
func (im *Importer) Run(ctx context.Context, ready func(addr string)) error {
	defer im.rdb.Close()
	defer im.mongo.Disconnect(context.WithoutCancel(ctx))
	ln, err := net.Listen("tcp", im.cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: im.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	if ready != nil {
		ready(ln.Addr().String())
	}
	im.log.Info("importer running", "worker", im.store.id, "tenants", len(im.cfg.Tenants), "workers", im.cfg.Workers)
	var wg sync.WaitGroup
	for _, t := range im.cfg.Tenants {
		wg.Add(1)
		go func() { defer wg.Done(); im.detector.watch(ctx, t) }()
	}
	for i := 0; i < im.cfg.Workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); im.workers.work(ctx, i) }()
	}
	wg.Wait()
	return nil
}

// Runs are every tenant's runs in this process's group as observations,
// oldest first per tenant. It fails when Redis cannot be read.
func (im *Importer) Runs(ctx context.Context) ([]RunView, error) { return im.store.Runs(ctx) }

// Breakers are the state of every dependency's circuit breaker.
func (im *Importer) Breakers() []breaker.Snapshot { return im.guard.snapshots() }

// authorized checks the bearer token (unless insecure_no_auth): only
// "Authorization: Bearer TOKEN", compared in constant time; anything else is
// 401 with a Bearer challenge.
func (im *Importer) authorized(w http.ResponseWriter, r *http.Request) bool {
	if im.cfg.InsecureNoAuth {
		return true
	}
	tok := im.cfg.StatusToken.Value()
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if tok != "" && ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="etlhub-importer"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(401)
	w.Write([]byte(`{"error":{"code":"unauthorized","message":"Authorization: Bearer TOKEN (the importer's status_token) is required"}}`))
	return false
}

// authed wraps a handler with the token check.
func (im *Importer) authed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if im.authorized(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

func (im *Importer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("GET /api/v1/report", func(w http.ResponseWriter, r *http.Request) {
		if !im.authorized(w, r) {
			return
		}
		id := r.URL.Query().Get("run_id")
		body, err := im.store.report(r.Context(), id)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case errors.Is(err, redis.Nil) || id == "":
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no report for that run_id (yet)"}}`))
		case err != nil:
			unavailable(w, err)
		default:
			w.Write(body)
		}
	})
	mux.Handle("GET /metrics", im.authed(im.metrics.handler()))
	mux.HandleFunc("GET /api/v1/breakers", func(w http.ResponseWriter, r *http.Request) {
		if !im.authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"breakers": im.Breakers()})
	})
	mux.HandleFunc("GET /api/v1/dependencies", im.serveDependencies)
	mux.HandleFunc("GET /api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		if !im.authorized(w, r) {
			return
		}
		runs, err := im.Runs(r.Context())
		if err != nil {
			unavailable(w, err)
			return
		}
		if t := r.URL.Query().Get("tenant"); t != "" {
			kept := runs[:0]
			for _, o := range runs {
				if o.Tenant == t {
					kept = append(kept, o)
				}
			}
			runs = kept
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"runs": runs})
	})
	return mux
}

// unavailable answers 503 when the run store cannot be read: the importer
// cannot vouch for its runs, and says why.
func unavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "redis_unavailable",
		"message": "the run store (Redis) cannot be read: " + err.Error()}})
}

// redisLog puts the Redis client's own messages (reconnects) in the JSON log.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...), "dependency", "redis")
}

// privateDir creates dir (and missing parents) 0700 whatever the umask:
// downloads are student data. A folder that exists is tightened.
func privateDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return dir, err
	}
	return dir, os.Chmod(dir, 0o700)
}
