// Package importer runs the import: for each tenant it watches the SFTP inbox
// until an upload is complete, then, holding the tenant's Redis lock,
// downloads, validates (OneRoster), decides by policy, loads a new MongoDB
// generation and publishes it, uploads the data-quality report to the
// district's reports/ folder and archives the files. Its runs are served in
// the observation schema at GET /api/v1/runs for the hub.
package importer

import (
	"archive/zip"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/importer/coord"
	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/logship"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/importer/upload"
	"github.com/etlhub/etlhub/internal/breaker"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/internal/status"
	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Config is importer.yaml.
type Config struct {
	Listen  string `yaml:"listen"`
	WorkDir string `yaml:"work_dir"`
	// StatusToken, when set, is the bearer token GET /api/v1/runs requires.
	StatusToken config.Secret `yaml:"status_token"`
	Redis       struct {
		Addr     string        `yaml:"addr"`
		Password config.Secret `yaml:"password"`
	} `yaml:"redis"`
	Mongo struct {
		URI      config.Secret `yaml:"uri"`
		Database string        `yaml:"database"`
	} `yaml:"mongo"`
	Poll    time.Duration  `yaml:"poll"`
	Quiet   time.Duration  `yaml:"quiet"`
	Marker  string         `yaml:"marker"`
	LockTTL time.Duration  `yaml:"lock_ttl"`
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
			sched, err := cronParser.Parse("CRON_TZ=" + tz + " " + t.Schedule)
			if err != nil {
				p.Add(k+".schedule", "%q in %q: %v", t.Schedule, tz, err)
			}
			t.sched = sched
		}
		if t.Policy == (oneroster.Policy{}) {
			t.Policy = oneroster.DefaultPolicy
		}
	}
	if len(c.Tenants) == 0 {
		p.Add("tenants", "at least one tenant is required")
	}
}

// Importer is the running importer.
type Importer struct {
	cfg    *Config
	log    *slog.Logger
	rdb    *redis.Client
	mongo  *mongo.Client
	loader *load.Loader
	mu     sync.Mutex
	runs   map[string][]*run // tenant -> runs, oldest first
	// breakers fail fast on a dependency that keeps failing: "redis",
	// "mongo", and "sftp:<tenant>" for each tenant's endpoint.
	breakers map[string]*breaker.Breaker
	policy   retry.Policy
	// zips remembers bundles that already opened, by tenant, name, size and
	// mtime, so a waiting bundle is not re-read on every poll.
	zips map[upload.Entry]bool
}

type run struct {
	status.Observation
	watch     upload.Watch
	files     []string
	completed *time.Time        // when the upload was complete
	report    *oneroster.Report // the data-quality report, once validated
	decision  *oneroster.Decision
}

// RunView is one run in GET /api/v1/runs: the observation schema plus when
// the upload completed.
type RunView struct {
	status.Observation
	UploadCompletedAt *time.Time `json:"upload_completed_at,omitempty"`
}

// New connects to Redis and MongoDB.
func New(ctx context.Context, cfg *Config, log *slog.Logger) (*Importer, error) {
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("work_dir: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Password: cfg.Redis.Password.Value(),
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	mc, err := mongo.Connect(options.Client().ApplyURI(cfg.Mongo.URI.Value()).SetTimeout(60 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("mongo: %v", strings.ReplaceAll(err.Error(), cfg.Mongo.URI.Value(), "<uri>"))
	}
	im := &Importer{cfg: cfg, log: log, rdb: rdb, mongo: mc, runs: map[string][]*run{},
		loader:   &load.Loader{DB: mc.Database(cfg.Mongo.Database)},
		breakers: map[string]*breaker.Breaker{}, zips: map[upload.Entry]bool{},
		policy: retry.Policy{Base: 500 * time.Millisecond, Max: 10 * time.Second, Factor: 2, Jitter: 0.5}}
	for _, name := range []string{"redis", "mongo"} {
		im.breakers[name] = breaker.New(name, 5, 30*time.Second, 5*time.Minute)
	}
	for _, t := range cfg.Tenants {
		im.breakers["sftp:"+t.Name] = breaker.New("sftp:"+t.Name, 3, 30*time.Second, 10*time.Minute)
	}
	return im, nil
}

// Run serves the status API and watches every tenant until ctx ends.
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
	var wg sync.WaitGroup
	for _, t := range im.cfg.Tenants {
		wg.Add(1)
		go func() { defer wg.Done(); im.watch(ctx, t) }()
	}
	wg.Wait()
	return nil
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (im *Importer) watch(ctx context.Context, t TenantConfig) {
	tick := time.NewTicker(im.cfg.Poll)
	defer tick.Stop()
	var next time.Time
	if t.sched != nil {
		next = t.sched.Next(time.Now())
	}
	for {
		next = im.open(t, next, time.Now().UTC())
		if err := im.poll(ctx, t); err != nil && ctx.Err() == nil {
			im.log.Warn("poll failed", "tenant", t.Name, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// open starts a run waiting for files when the tenant's schedule comes due
// and none is open, and returns the next due time.
func (im *Importer) open(t TenantConfig, next, now time.Time) time.Time {
	if t.sched == nil || next.IsZero() || now.Before(next) {
		return next
	}
	if im.current(t.Name) == nil {
		im.newRun(t, next.UTC())
	}
	return t.sched.Next(now)
}

// current is the tenant's open run (waiting for files), or nil.
func (im *Importer) current(tenant string) *run {
	im.mu.Lock()
	defer im.mu.Unlock()
	rs := im.runs[tenant]
	if len(rs) > 0 && !rs[len(rs)-1].State.Terminal() {
		return rs[len(rs)-1]
	}
	return nil
}

func (im *Importer) update(r *run, f func(o *status.Observation)) {
	im.mu.Lock()
	f(&r.Observation)
	now := time.Now().UTC()
	r.UpdatedAt = &now
	o := r.Observation
	im.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := coord.Beat(ctx, im.rdb, coord.Progress{Tenant: o.Tenant, RunID: o.RunID, Stage: o.Stage,
		RowsDone: o.RowsDone, RowsTotal: o.RowsTotal, UpdatedAt: now}, 10*time.Minute); err != nil {
		im.log.Warn("heartbeat failed", "tenant", o.Tenant, "run_id", o.RunID, "error", err)
	}
}

// guarded calls fn through a dependency's breaker, retrying with backoff and
// jitter while the breaker lets it.
func (im *Importer) guarded(ctx context.Context, dep string, fn func() error) error {
	b := im.breakers[dep]
	return retry.Do(ctx, im.policy, 3, rand.Float64, func(err error) bool {
		return !errors.Is(err, breaker.ErrOpen) && !errors.Is(err, coord.ErrHeld) && ctx.Err() == nil
	}, func() error {
		if err := b.Allow(time.Now()); err != nil {
			return err
		}
		err := fn()
		if errors.Is(err, coord.ErrHeld) {
			b.Record(time.Now(), nil) // the dependency answered
		} else {
			b.Record(time.Now(), err)
		}
		return err
	})
}

func (im *Importer) poll(ctx context.Context, t TenantConfig) error {
	var c *inbox.Client
	var listing []upload.Entry
	err := im.guarded(ctx, "sftp:"+t.Name, func() error {
		var err error
		if c, err = inbox.Dial(ctx, t.SFTP); err != nil {
			return err
		}
		if listing, err = c.List(); err != nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	now := time.Now().UTC() // the listing's time: nothing in it is later

	r := im.current(t.Name)
	if r == nil {
		if len(listing) == 0 {
			return nil
		}
		r = im.newRun(t, now)
	}
	in := upload.Inputs{ZipOK: map[string]bool{}}
	for _, e := range listing {
		if strings.HasSuffix(strings.ToLower(e.Name), ".zip") && !upload.Temporary(e.Name) {
			// A bundle is complete when its central directory reads. The
			// download resumes, so each poll fetches only what is new.
			key := upload.Entry{Name: t.Name + "/" + e.Name, Size: e.Size, ModTime: e.ModTime}
			im.mu.Lock()
			seen := im.zips[key]
			im.mu.Unlock()
			if seen {
				in.ZipOK[e.Name] = true
				continue
			}
			local := filepath.Join(im.cfg.WorkDir, t.Name+"-"+e.Name)
			if _, err := c.Download(e.Name, local); err == nil {
				if zr, err := zip.OpenReader(local); err == nil {
					zr.Close()
					in.ZipOK[e.Name] = true
					im.mu.Lock()
					im.zips[key] = true
					im.mu.Unlock()
				}
			}
		}
		if e.Name == "manifest.csv" {
			local := filepath.Join(im.cfg.WorkDir, "manifest-"+t.Name+".csv")
			os.Remove(local)
			if _, err := c.Download("manifest.csv", local); err == nil {
				if f, err := os.Open(local); err == nil {
					in.Listed, _ = oneroster.ListedFiles(f)
					f.Close()
				}
			}
		}
	}
	d := upload.Step(&r.watch, listing, in, now, upload.Options{Quiet: im.cfg.Quiet, Marker: im.cfg.Marker})
	if !d.Complete {
		im.update(r, func(o *status.Observation) { o.Stage = "awaiting_files" })
		return nil
	}
	var lock *coord.Lock
	if err := im.guarded(ctx, "redis", func() error {
		var err error
		lock, err = coord.Acquire(ctx, im.rdb, t.Name, im.cfg.LockTTL)
		return err
	}); err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	arrived, completed := d.FirstFileAt, d.CompletedAt
	r.completed = &completed
	im.update(r, func(o *status.Observation) {
		o.State, o.Stage, o.FilesArrivedAt, o.Attempt = status.StateRunning, "downloading", &arrived, 1
	})
	r.files = d.Files
	return im.process(ctx, t, c, r, lock)
}

func (im *Importer) newRun(t TenantConfig, now time.Time) *run {
	im.mu.Lock()
	defer im.mu.Unlock()
	n := 1
	day := now.Format("2006-01-02")
	for _, x := range im.runs[t.Name] {
		if strings.Contains(x.RunID, "/"+day+"#") {
			n++
		}
	}
	started := now
	r := &run{Observation: status.Observation{Source: "importer", Tenant: t.Name, Job: t.Job,
		RunID: fmt.Sprintf("%s/%s/%s#%d", t.Name, t.Job, day, n), State: status.StateWaiting, Stage: "awaiting_files",
		StartedAt: &started, UpdatedAt: &started}}
	im.runs[t.Name] = append(im.runs[t.Name], r)
	if len(im.runs[t.Name]) > 50 {
		im.runs[t.Name] = im.runs[t.Name][1:]
	}
	return r
}

// process downloads, validates, decides, loads and publishes one upload,
// beating its heartbeat (and renewing the tenant lock) at least every 5 s.
func (im *Importer) process(ctx context.Context, t TenantConfig, c *inbox.Client, r *run, lock *coord.Lock) error {
	log := im.log.With("tenant", t.Name, "run_id", r.RunID)
	beatCtx, stopBeat := context.WithCancel(ctx)
	defer stopBeat()
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-beatCtx.Done():
				return
			case <-tick.C:
				im.update(r, func(*status.Observation) {})
				if err := lock.Renew(beatCtx); err != nil && beatCtx.Err() == nil {
					log.Warn("renewing the tenant lock failed", "error", err)
				}
			}
		}
	}()
	fail := func(stage string, err error) error {
		now := time.Now().UTC()
		im.update(r, func(o *status.Observation) {
			o.State, o.Stage, o.Error, o.FinishedAt = status.StateFailed, stage, status.Clip(err.Error(), status.MaxErrorLen), &now
		})
		log.Error("run failed", "stage", stage, "error", err)
		return err
	}
	dir := filepath.Join(im.cfg.WorkDir, strings.NewReplacer("/", "_", "#", "_").Replace(r.RunID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail("downloading", err)
	}
	for _, f := range r.files {
		if _, err := c.Download(f, filepath.Join(dir, f)); err != nil {
			return fail("downloading", err)
		}
		if err := lock.Renew(ctx); err != nil {
			return fail("downloading", fmt.Errorf("tenant lock: %w", err))
		}
	}
	im.update(r, func(o *status.Observation) { o.Stage = "validating" })
	files, err := uploadFS(dir, r.files)
	if err != nil {
		return fail("validating", err)
	}
	if cl, ok := files.(io.Closer); ok {
		defer cl.Close()
	}
	rep := oneroster.NewReport(5)
	res, err := oneroster.Validate(files, rep.Add)
	if err != nil {
		return fail("validating", err)
	}
	rep.Finish(res)
	im.mu.Lock()
	r.report = rep
	im.mu.Unlock()
	total := int64(0)
	for _, st := range rep.Files {
		total += int64(st.Rows)
	}
	im.update(r, func(o *status.Observation) {
		o.Quality = &status.Quality{Errors: int64(rep.Errors), Warnings: int64(rep.Warnings)}
		o.RowsTotal = total
	})
	var csvBuf strings.Builder
	rep.WriteCSV(&csvBuf)
	reportName := "reports/" + strings.NewReplacer("/", "_", "#", "_").Replace(r.RunID)
	if err := c.Put(reportName+".csv", strings.NewReader(csvBuf.String())); err != nil {
		log.Warn("report upload failed", "error", err)
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	c.Put(reportName+".json", strings.NewReader(string(js)))
	var current map[string]int
	if err := im.guarded(ctx, "mongo", func() error {
		var err error
		current, err = im.loader.Counts(ctx, t.Name)
		return err
	}); err != nil {
		return fail("validating", err)
	}
	dec := t.Policy.Decide(rep, current)
	im.mu.Lock()
	r.decision = &dec
	im.mu.Unlock()
	batch := strings.NewReplacer("/", "_", "#", "_").Replace(r.RunID)
	if !dec.Load {
		c.Archive(batch, r.files)
		return fail("validating", fmt.Errorf("rejected by policy: %s", strings.Join(dec.Reasons, "; ")))
	}
	im.update(r, func(o *status.Observation) { o.Stage = "loading" })
	ld := *im.loader // a copy per run: tenants load concurrently
	ld.Progress = func(done int64) {
		im.update(r, func(o *status.Observation) { o.RowsDone = done })
	}
	modes := map[string]load.Mode{}
	for e, st := range rep.Files {
		modes[e] = load.Mode(st.Mode)
	}
	// A load is idempotent for its run, so retrying it whole is safe.
	if err := im.guarded(ctx, "mongo", func() error {
		_, err := ld.Load(ctx, t.Name, r.RunID, files, modes)
		return err
	}); err != nil {
		return fail("loading", err)
	}
	im.update(r, func(o *status.Observation) { o.Stage = "publishing" })
	if err := c.Archive(batch, r.files); err != nil {
		log.Warn("archiving failed", "error", err)
	}
	now := time.Now().UTC()
	im.update(r, func(o *status.Observation) {
		o.State, o.Stage, o.FinishedAt, o.RowsDone = status.StateSucceeded, "", &now, total
	})
	os.RemoveAll(dir)
	log.Info("run succeeded", "rows", total, "errors", rep.Errors, "warnings", rep.Warnings)
	return nil
}

// uploadFS is the upload as files: the zip bundle when there is one, the
// downloaded directory otherwise.
func uploadFS(dir string, names []string) (fs.FS, error) {
	for _, n := range names {
		if strings.HasSuffix(strings.ToLower(n), ".zip") {
			zr, err := zip.OpenReader(filepath.Join(dir, n))
			if err != nil {
				return nil, fmt.Errorf("%s: not a complete zip: %w", n, err)
			}
			return zr, nil
		}
	}
	return os.DirFS(dir), nil
}

// Runs are every tenant's runs as observations, newest last.
func (im *Importer) Runs() []RunView {
	im.mu.Lock()
	defer im.mu.Unlock()
	now := time.Now().UTC()
	var out []RunView
	names := make([]string, 0, len(im.runs))
	for n := range im.runs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, r := range im.runs[n] {
			o := r.Observation
			o.At = now
			out = append(out, RunView{Observation: o, UploadCompletedAt: r.completed})
		}
	}
	return out
}

// Breakers are the state of every dependency's circuit breaker.
func (im *Importer) Breakers() []breaker.Snapshot {
	names := make([]string, 0, len(im.breakers))
	for n := range im.breakers {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]breaker.Snapshot, 0, len(names))
	for _, n := range names {
		out = append(out, im.breakers[n].Snapshot())
	}
	return out
}

// authorized checks the status token, when one is configured.
func (im *Importer) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok := im.cfg.StatusToken.Value()
	if tok == "" {
		return true
	}
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(401)
	w.Write([]byte(`{"error":{"code":"unauthorized","message":"a bearer token is required"}}`))
	return false
}

func (im *Importer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("GET /api/v1/report", func(w http.ResponseWriter, r *http.Request) {
		if !im.authorized(w, r) {
			return
		}
		id := r.URL.Query().Get("run_id")
		im.mu.Lock()
		var found *run
		for _, rs := range im.runs {
			for _, x := range rs {
				if x.RunID == id {
					found = x
				}
			}
		}
		var body []byte
		if found != nil && found.report != nil {
			body, _ = json.Marshal(map[string]any{"run_id": id, "report": found.report, "decision": found.decision})
		}
		im.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if body == nil {
			w.WriteHeader(404)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no report for that run_id (yet)"}}`))
			return
		}
		w.Write(body)
	})
	mux.HandleFunc("GET /api/v1/breakers", func(w http.ResponseWriter, r *http.Request) {
		if !im.authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"breakers": im.Breakers()})
	})
	mux.HandleFunc("GET /api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		if !im.authorized(w, r) {
			return
		}
		runs := im.Runs()
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
