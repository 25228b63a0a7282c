// Package api is the hub's HTTP API (gin): status, jobs and runs, sources,
// push ingest, health and metrics, behind bearer tokens with roles and
// tenant scopes. Every error has one shape: {"error": {"code", "message"}}.
package api

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Ingester stores observations through the hub's one ingest path.
type Ingester interface {
	Ingest(ctx context.Context, via string, obs []model.Observation) (store.IngestResult, error)
}

// JobView is what the rules know of a job beyond its runs (risk, prediction,
// active alerts); nil fields are omitted.
type JobView struct {
	Risk            string     `json:"risk,omitempty"`
	PredictedFinish *time.Time `json:"predicted_finish,omitempty"`
	Deadline        *time.Time `json:"deadline,omitempty"`
	PBreach         float64    `json:"p_breach"`
	Basis           string     `json:"prediction_basis,omitempty"`
	LearnedFrom     int        `json:"learned_from"`
	Why             string     `json:"why,omitempty"`
	// WhyParts is Why cut into its words and its times, each time with the
	// instant it names (the API fills it in; absent when Why names none).
	WhyParts     []TextPart `json:"why_parts,omitempty"`
	Logs         string     `json:"logs,omitempty"`
	ActiveAlerts int        `json:"active_alerts"`
	// FinishLo and FinishHi bound the predicted finish (the band).
	FinishLo *time.Time `json:"finish_lo,omitempty"`
	FinishHi *time.Time `json:"finish_hi,omitempty"`
	// Outcome is tonight's result against the deadline; LastNight the
	// previous night's (late, missed, failed and retried nights keep theirs).
	Outcome   *rules.Outcome `json:"outcome,omitempty"`
	LastNight *rules.Outcome `json:"last_night,omitempty"`
}

// Views gives the rules' view of jobs; may be nil.
type Views interface {
	JobViews() map[model.JobKey]JobView
}

// Options wire the API.
type Options struct {
	Store        *store.Store
	Ingest       Ingester
	Jobs         []model.JobSpec
	Auth         AuthConfig
	Views        Views
	Actions      AlertActions
	Gatherer     prometheus.Gatherer
	Registerer   prometheus.Registerer
	Log          *slog.Logger
	MaxBodyBytes int64
	// MaxItems caps the observations of one push (default 10000).
	MaxItems int
	// MaxUnconfiguredJobs caps the tenant/job pairs outside Jobs that pushes
	// may create (default 1000).
	MaxUnconfiguredJobs int
	// MaxSilences caps active and future silences: all of them for an
	// unscoped token, those pinned to its tenants for a scoped one (default 1000).
	MaxSilences int
	Now         func() time.Time
	// EventStreamFor is how long one GET /api/v1/events stream lasts before
	// the server ends it and the page reconnects (default 50 s, under the
	// server's write timeout).
	EventStreamFor time.Duration
	// Live, when set, is told of every ingest by the hub (pushes and
	// collectors alike); without it the API announces the pushes it takes.
	Live *Live
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose
	// X-Forwarded-For / X-Real-IP name the client; none by default, so the
	// logged client is the peer that connected.
	TrustedProxies []string
	// PingRate and PingBurst bound the pings of one ping key (default
	// PingRate a second, bursts of PingBurst).
	PingRate  float64
	PingBurst int
	// Cluster tells GET /api/v1/cluster the replicas and the lease.
	Cluster Cluster
	// Reload, when set, re-reads the config and applies it on this replica
	// (POST /api/v1/reload).
	Reload func(ctx context.Context) (ReloadResult, error)
	// Reports, when set, reads runs' data-quality reports from their
	// sources for the district's page.
	Reports Reports
	// Health, when set, says whether the store is known to be down (the
	// hub pings it every second): /readyz says since when and why, and
	// pushes are answered 503 at once.
	Health Health
}

// Health is what the hub knows of its store's health.
type Health interface {
	// Down says whether the store is unreachable, since when (its last
	// answer) and why.
	Down() (since time.Time, reason string, down bool)
}

// RetryAfterStoreError is the Retry-After (seconds) of a 503 for a store
// that did not answer.
const RetryAfterStoreError = 5

type server struct {
	o       Options
	auth    *authenticator
	specs   map[model.JobKey]*model.JobSpec
	metrics *httpMetrics
	jobs    *jobGuard
	started time.Time // when the handler was built (uptime in /api/v2/status)
	live    *live     // the event streams
	board   boardCache
	pings   *pinger // the ping API's keys
	reports *reportCache
	first   struct {
		mu    sync.Mutex
		at    time.Time
		known bool
		read  time.Time
	} // the store's oldest observation (nights before it are unknown)
}

// New builds the HTTP handler.
func New(o Options) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 10 << 20
	}
	if o.MaxItems <= 0 {
		o.MaxItems = DefaultMaxItems
	}
	if o.MaxUnconfiguredJobs <= 0 {
		o.MaxUnconfiguredJobs = DefaultMaxUnconfiguredJobs
	}
	if o.MaxSilences <= 0 {
		o.MaxSilences = DefaultMaxSilences
	}
	if o.EventStreamFor <= 0 {
		o.EventStreamFor = 50 * time.Second
	}
	s := &server{o: o, auth: newAuthenticator(o.Auth), specs: map[model.JobKey]*model.JobSpec{}, started: o.Now().UTC(), live: o.Live,
		pings: newPinger(o.Auth.PingKeys, o.PingRate, o.PingBurst)}
	if s.live == nil {
		// No hub to tell of every ingest: announce the pushes at least.
		s.live = NewLive()
		if s.o.Ingest != nil {
			s.o.Ingest = liveIngest{Ingester: s.o.Ingest, live: s.live}
		}
	}
	// Changes without new observations reach the pages too (the watcher
	// runs while a page listens).
	s.live.mu.Lock()
	s.live.digest, s.live.log = s.digests, o.Log
	s.live.mu.Unlock()
	for i := range o.Jobs {
		j := &o.Jobs[i]
		s.specs[model.JobKey{Tenant: j.Tenant, Job: j.Job}] = j
	}
	configured := map[model.JobKey]bool{}
	for k := range s.specs {
		configured[k] = true
	}
	s.jobs = &jobGuard{max: o.MaxUnconfiguredJobs, configured: configured}
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, not exported
	}
	s.reports = newReportCache(reg)
	if o.Registerer != nil {
		s.metrics = newHTTPMetrics(o.Registerer)
	}
	r := gin.New()
	if err := r.SetTrustedProxies(o.TrustedProxies); err != nil {
		// The config check refuses bad entries; trust nobody rather than everybody.
		_ = r.SetTrustedProxies(nil)
	}
	r.HandleMethodNotAllowed = true
	r.Use(s.recoverer(), s.logRequests())
	r.NoRoute(func(c *gin.Context) { abort(c, 404, "not_found", "no such endpoint") })
	r.NoMethod(func(c *gin.Context) { abort(c, 405, "method_not_allowed", "method not allowed here") })

	r.GET("/healthz", func(c *gin.Context) { c.JSON(200, gin.H{"status": "ok"}) })
	r.GET("/api/v1/openapi.json", func(c *gin.Context) { c.Data(200, "application/json", openAPI) })
	// The dashboard: static files; it reads the API with the user's token.
	uiFS, _ := fs.Sub(uiFiles, "ui")
	page := func(c *gin.Context) {
		// The pages run only their own script and styles, and are not framed;
		// Trusted Types make the browser refuse every HTML sink (innerHTML and
		// the like), so data can only go in as text.
		c.Header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "+
			"require-trusted-types-for 'script'; trusted-types 'none'")
		c.Header("X-Content-Type-Options", "nosniff")
		c.Header("Cache-Control", "no-cache")
	}
	r.GET("/", func(c *gin.Context) { page(c); c.FileFromFS("/", http.FS(uiFS)) })
	r.GET("/ui/*file", func(c *gin.Context) { page(c); c.FileFromFS(c.Param("file"), http.FS(uiFS)) })
	r.GET("/readyz", s.ready)
	metrics := promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})
	if o.Auth.MetricsPublic {
		r.GET("/metrics", gin.WrapH(metrics))
	} else {
		r.GET("/metrics", s.auth.require(RoleViewer), unscoped("/metrics"), gin.WrapH(metrics))
	}

	v1 := r.Group("/api/v1")
	view := s.auth.require(RoleViewer)
	v1.GET("/status", view, s.status)
	v1.GET("/jobs/:tenant/:job", view, s.job)
	v1.GET("/jobs/:tenant/:job/runs", view, s.runs)
	v1.GET("/runs/*run_id", view, s.run)
	v1.GET("/sources", view, s.sources)
	v1.GET("/dependencies", view, s.dependencies)
	v1.GET("/alerts", view, s.alerts)
	v1.GET("/silences", view, s.listSilences)
	op := s.auth.require(RoleOperator)
	v1.POST("/silences", op, s.createSilence)
	v1.DELETE("/silences/:id", op, s.deleteSilence)
	v1.GET("/notifications", view, s.notifications)
	v1.GET("/cluster", s.auth.require(RoleAdmin), unscoped("the cluster"), s.cluster)
	v1.POST("/reload", s.auth.require(RoleAdmin), unscoped("the config"), s.reload)
	s.boardRoutes(v1, view)
	if o.Actions != nil {
		v1.POST("/alerts/:id/ack", op, s.ack)
		// PagerDuty signs its webhooks; no bearer token.
		v1.POST("/webhooks/pagerduty", s.pagerdutyWebhook)
	}
	v1.POST("/observations", s.auth.require(parseRole(o.Auth.PushRole)), s.push)
	s.alertmanagerRoutes(r)
	// Jobs that can run curl: a key in the path instead of a bearer token.
	s.pingRoutes(r)
	return r
}

// uiFiles are the dashboard's files, served from the binary (no CDN).
//
//go:embed ui
var uiFiles embed.FS

// openAPI documents this API; a test keeps it in step with the routes.
//
//go:embed openapi.json
var openAPI []byte

// apiError is the one error shape.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func abort(c *gin.Context, code int, kind, msg string) {
	c.AbortWithStatusJSON(code, gin.H{"error": apiError{Code: kind, Message: msg}})
}

func (s *server) recoverer() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if p := recover(); p != nil {
				s.o.Log.Error("panic in handler", "path", c.FullPath(), "panic", p)
				abort(c, 500, "internal", "internal error")
			}
		}()
		c.Next()
	}
}

// logRequests logs each request through slog; the token never, its name only.
func (s *server) logRequests() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		if s.metrics != nil {
			s.metrics.observe(c.Request.Method, route, c.Writer.Status(), d)
		}
		lvl := slog.LevelDebug
		if c.Writer.Status() >= 500 {
			lvl = slog.LevelError
		} else if c.Writer.Status() >= 400 {
			lvl = slog.LevelInfo
		}
		s.o.Log.Log(c.Request.Context(), lvl, "http request", "method", c.Request.Method, "route", route,
			"status", c.Writer.Status(), "duration_ms", d.Milliseconds(), "client", c.ClientIP(), "token", who(c).name)
	}
}

func (s *server) ready(c *gin.Context) {
	if msg, down := s.storeDown(); down {
		c.Header("Retry-After", strconv.Itoa(RetryAfterStoreError))
		abort(c, 503, "store_unreachable", msg)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.o.Store.Ping(ctx); err != nil {
		c.Header("Retry-After", strconv.Itoa(RetryAfterStoreError))
		abort(c, 503, "store_unreachable", "the store does not answer")
		return
	}
	c.JSON(200, gin.H{"status": "ready"})
}

// filter limits store queries to what the token may see and the ?tenant asked for.
func (s *server) filter(c *gin.Context) (store.Filter, bool) {
	p := who(c)
	var ts []string
	for _, t := range c.QueryArray("tenant") {
		if t != "" && !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	if len(ts) > maxTenantsAsked {
		abort(c, 400, "bad_request", "tenant: at most "+strconv.Itoa(maxTenantsAsked)+" tenants in one request")
		return store.Filter{}, false
	}
	for _, t := range ts {
		if !p.CanSee(t) {
			abort(c, 403, "forbidden", "tenant "+strconv.Quote(t)+" is outside this token's scope")
			return store.Filter{}, false
		}
	}
	if len(ts) > 0 {
		return store.Filter{Tenants: ts}, true
	}
	return store.Filter{Tenants: p.tenants}, true
}

// maxTenantsAsked is how many tenants one request may name (tenant=a&tenant=b):
// the board reads the tenants of a burst of changes in one request.
const maxTenantsAsked = 100

// StatusRow is one tenant/job in GET /api/v1/status.
type StatusRow struct {
	Tenant        string      `json:"tenant"`
	Job           string      `json:"job"`
	Configured    bool        `json:"configured"`
	Timezone      string      `json:"timezone,omitempty"` // the job's IANA zone
	RunID         string      `json:"run_id,omitempty"`
	State         model.State `json:"state,omitempty"`
	Stage         string      `json:"stage,omitempty"`
	ProgressPct   *float64    `json:"progress_pct"`
	RowsDone      int64       `json:"rows_done"`
	RowsTotal     int64       `json:"rows_total"`
	ElapsedS      *int64      `json:"elapsed_s"`
	StartedAt     *time.Time  `json:"started_at"`
	UpdatedAt     *time.Time  `json:"updated_at"`
	LastSuccessAt *time.Time  `json:"last_success_at"`
	Error         string      `json:"error,omitempty"`
	JobView
}

func (s *server) status(c *gin.Context) {
	f, ok := s.filter(c)
	if !ok {
		return
	}
	latest, succ, stale, ok := s.lastRuns(c, f)
	if !ok {
		return
	}
	var views map[model.JobKey]JobView
	if s.o.Views != nil {
		views = s.o.Views.JobViews()
	}
	keys := map[model.JobKey]bool{}
	for k := range latest {
		keys[k] = true
	}
	p := who(c)
	for k := range s.specs {
		if p.CanSee(k.Tenant) && (len(f.Tenants) == 0 || slices.Contains(f.Tenants, k.Tenant)) {
			keys[k] = true
		}
	}
	now := s.o.Now().UTC()
	want := c.Query("state")
	rows := make([]StatusRow, 0, len(keys))
	for k := range keys {
		row := StatusRow{Tenant: k.Tenant, Job: k.Job, Configured: s.specs[k] != nil, JobView: views[k]}
		if sp := s.specs[k]; sp != nil {
			row.Timezone = sp.Timezone
		}
		if r, ok := latest[k]; ok {
			fillRun(&row, &r, now)
		}
		if r, ok := succ[k]; ok {
			row.LastSuccessAt = r.FinishedAt
			if row.LastSuccessAt == nil {
				t := r.LastSeenAt
				row.LastSuccessAt = &t
			}
		}
		if want != "" && string(row.State) != want && !(want == "none" && row.State == "") {
			continue
		}
		row.WhyParts = whyParts(&row, now)
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Tenant != rows[j].Tenant {
			return rows[i].Tenant < rows[j].Tenant
		}
		return rows[i].Job < rows[j].Job
	})
	if stale != nil {
		// The store does not answer: the last board read, and since when it
		// is old, rather than nothing.
		c.JSON(200, gin.H{"generated_at": now, "jobs": rows, "stale_since": stale})
		return
	}
	c.JSON(200, gin.H{"generated_at": now, "jobs": rows})
}

// boardCache keeps the last runs the board read, per filter, for when the
// store does not answer.
type boardCache struct {
	mu   sync.Mutex
	last map[string]boardRead
}

type boardRead struct {
	latest, succ map[model.JobKey]model.Run
	at           time.Time
	// version is the runs' version it was read at ("": not to be reused).
	version string
}

// boardMaxAge bounds how long a board read is reused while the runs'
// version stands (what a version cannot see: another replica's prune).
const boardMaxAge = time.Minute

// lastRuns is currentRuns, falling back on the last answer read for the same
// filter when the store fails (stale then says since when it is old).
func (s *server) lastRuns(c *gin.Context, f store.Filter) (latest, succ map[model.JobKey]model.Run, stale *time.Time, ok bool) {
	key := strings.Join(f.Tenants, "\x00")
	if f.Tenants == nil {
		key = "\x01all"
	}
	ctx := c.Request.Context()
	b := &s.board
	// The board is read again only when the runs have changed since the
	// last read of this filter: between pushes, every request of every
	// viewer is answered from one read.
	version, cacheable, err := s.o.Store.RunsVersion(ctx)
	if err == nil && cacheable {
		b.mu.Lock()
		r, found := b.last[key]
		b.mu.Unlock()
		if found && r.version == version && s.o.Now().UTC().Sub(r.at) < boardMaxAge {
			return r.latest, r.succ, nil, true
		}
	}
	if !cacheable {
		version = ""
	}
	if err == nil {
		latest, err = s.o.Store.LatestRuns(ctx, f)
	}
	if err == nil {
		succ, err = s.o.Store.LastSuccess(ctx, f)
	}
	if err == nil {
		b.mu.Lock()
		if b.last == nil || len(b.last) >= 1024 {
			b.last = map[string]boardRead{}
		}
		b.last[key] = boardRead{latest: latest, succ: succ, at: s.o.Now().UTC(), version: version}
		b.mu.Unlock()
		return latest, succ, nil, true
	}
	b.mu.Lock()
	r, found := b.last[key]
	b.mu.Unlock()
	if !found || errors.Is(err, context.Canceled) {
		s.storeError(c, err)
		return nil, nil, nil, false
	}
	s.o.Log.Warn("the store failed: the board answers with its last read", "route", c.FullPath(), "error", err, "read_at", r.at)
	at := r.at
	return r.latest, r.succ, &at, true
}

// currentRuns reads every job's current run and last success; on an error it
// has answered the request and ok is false.
func (s *server) currentRuns(c *gin.Context, f store.Filter) (latest, succ map[model.JobKey]model.Run, ok bool) {
	ctx := c.Request.Context()
	latest, err := s.o.Store.LatestRuns(ctx, f)
	if err == nil {
		succ, err = s.o.Store.LastSuccess(ctx, f)
	}
	if err != nil {
		s.storeError(c, err)
		return nil, nil, false
	}
	return latest, succ, true
}

func fillRun(row *StatusRow, r *model.Run, now time.Time) {
	row.RunID, row.State, row.Stage, row.Error = r.RunID, r.State, string(r.Stage), r.Error
	row.RowsDone, row.RowsTotal = r.RowsDone, r.RowsTotal
	row.StartedAt, row.UpdatedAt = r.StartedAt, r.UpdatedAt
	if p := r.Progress(); p >= 0 {
		p = float64(int(p*10)) / 10
		row.ProgressPct = &p
	}
	if r.StartedAt != nil {
		end := now
		if r.FinishedAt != nil {
			end = *r.FinishedAt
		}
		e := int64(end.Sub(*r.StartedAt).Seconds())
		row.ElapsedS = &e
	}
}

func (s *server) jobKey(c *gin.Context) (model.JobKey, bool) {
	k := model.JobKey{Tenant: c.Param("tenant"), Job: c.Param("job")}
	if !who(c).CanSee(k.Tenant) {
		abort(c, 403, "forbidden", "tenant "+strconv.Quote(k.Tenant)+" is outside this token's scope")
		return k, false
	}
	return k, true
}

func (s *server) job(c *gin.Context) {
	k, ok := s.jobKey(c)
	if !ok {
		return
	}
	latest, succ, ok := s.currentRuns(c, store.Filter{Tenants: []string{k.Tenant}})
	if !ok {
		return
	}
	spec := s.specs[k]
	cur, hasRun := latest[k]
	if spec == nil && !hasRun {
		abort(c, 404, "not_found", "no job "+strconv.Quote(k.Tenant+"/"+k.Job))
		return
	}
	out := gin.H{"tenant": k.Tenant, "job": k.Job, "spec": spec}
	if hasRun {
		out["current_run"] = cur
	}
	if r, ok := succ[k]; ok {
		out["last_success"] = r
	}
	if s.o.Views != nil {
		row := StatusRow{JobView: s.o.Views.JobViews()[k]}
		if hasRun {
			fillRun(&row, &cur, s.o.Now().UTC())
		}
		row.WhyParts = whyParts(&row, s.o.Now().UTC())
		out["view"] = row.JobView
	}
	c.JSON(200, out)
}

func (s *server) runs(c *gin.Context) {
	k, ok := s.jobKey(c)
	if !ok {
		return
	}
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			abort(c, 400, "bad_request", "limit must be a whole number from 1 to 500")
			return
		}
		limit = n
	}
	runs, next, err := s.o.Store.Runs(c.Request.Context(), k, store.Page{Limit: limit, Before: c.Query("before")})
	if errors.Is(err, store.ErrBadCursor) {
		abort(c, 400, "bad_request", "before is not a cursor this API returned")
		return
	}
	if err != nil {
		s.storeError(c, err)
		return
	}
	if runs == nil {
		runs = []model.Run{}
	}
	c.JSON(200, gin.H{"runs": runs, "next": next})
}

// run answers one run and its observations. A run belongs to one tenant and
// job: a run_id several jobs used needs ?tenant=&job= (409 without), and
// every observation answered is the run's own, which the token may see.
func (s *server) run(c *gin.Context) {
	id := c.Param("run_id")
	if len(id) > 0 && id[0] == '/' {
		id = id[1:]
	}
	p := who(c)
	tenant, job := c.Query("tenant"), c.Query("job")
	f := store.Filter{Tenants: p.tenants}
	if tenant != "" {
		if !p.CanSee(tenant) {
			abort(c, 404, "not_found", "no run "+strconv.Quote(id))
			return
		}
		f = store.Filter{Tenants: []string{tenant}}
	}
	all, err := s.o.Store.RunsByID(c.Request.Context(), id, f)
	if err != nil {
		s.storeError(c, err)
		return
	}
	runs := all[:0]
	for _, r := range all {
		if p.CanSee(r.Tenant) && (job == "" || r.Job == job) {
			runs = append(runs, r)
		}
	}
	switch {
	case len(runs) == 0:
		abort(c, 404, "not_found", "no run "+strconv.Quote(id))
		return
	case len(runs) > 1:
		owners := make([]string, len(runs))
		for i, r := range runs {
			owners[i] = r.Tenant + "/" + r.Job
		}
		abort(c, 409, "ambiguous_run_id", fmt.Sprintf("run_id %q belongs to %d jobs (%s); add ?tenant=&job=",
			id, len(runs), strings.Join(owners, ", ")))
		return
	}
	r := runs[0]
	obs, err := s.o.Store.Observations(c.Request.Context(), store.RunKey{Tenant: r.Tenant, Job: r.Job, RunID: r.RunID}, 5000)
	if err != nil {
		s.storeError(c, err)
		return
	}
	own := obs[:0]
	for _, o := range obs {
		if o.Tenant == r.Tenant && o.Job == r.Job && o.RunID == r.RunID && p.CanSee(o.Tenant) {
			own = append(own, o)
		}
	}
	if own == nil {
		own = []model.Observation{}
	}
	c.JSON(200, gin.H{"run": r, "observations": own})
}

// SourceView is one source's health and the tenants it feeds that the
// token may see.
type SourceView struct {
	model.SourceHealth
	Tenants []string `json:"tenants"`
}

// sources answers every source's health; a tenant-scoped token sees only
// the sources that feed its tenants (named by a configured job's source, or
// having delivered observations of them).
func (s *server) sources(c *gin.Context) {
	ctx := c.Request.Context()
	all, err := s.o.Store.Sources(ctx)
	if err != nil {
		s.storeError(c, err)
		return
	}
	fed, err := s.o.Store.SourceTenants(ctx)
	if err != nil {
		s.storeError(c, err)
		return
	}
	for _, j := range s.o.Jobs {
		if j.Source != "" && !slices.Contains(fed[j.Source], j.Tenant) {
			fed[j.Source] = append(fed[j.Source], j.Tenant)
		}
	}
	p := who(c)
	out := make([]SourceView, 0, len(all))
	for _, h := range all {
		v := SourceView{SourceHealth: h, Tenants: []string{}}
		for _, t := range fed[h.Name] {
			if p.CanSee(t) {
				v.Tenants = append(v.Tenants, t)
			}
		}
		sort.Strings(v.Tenants)
		if p.tenants != nil && len(v.Tenants) == 0 {
			continue
		}
		out = append(out, v)
	}
	c.JSON(200, gin.H{"sources": out})
}

// DependencyView is one dependency's latest measurement (the contract:
// model.Measurement) and how old it is.
type DependencyView struct {
	model.Measurement
	// AgeS is how long ago it was measured, by the hub's clock.
	AgeS float64 `json:"age_s"`
}

// dependencies answers the latest measurement of every dependency, by
// subject. Shared infrastructure (no tenant) is for tokens of every tenant;
// a tenant-scoped token sees its tenants' dependencies only (their SFTP
// endpoints), as it sees only its tenants' alerts.
func (s *server) dependencies(c *gin.Context) {
	all, err := s.o.Store.Dependencies(c.Request.Context())
	if err != nil {
		s.storeError(c, err)
		return
	}
	p := who(c)
	now := s.o.Now().UTC()
	out := make([]DependencyView, 0, len(all))
	for _, m := range all {
		if p.tenants != nil && (m.Tenant == "" || !p.CanSee(m.Tenant)) {
			continue
		}
		out = append(out, DependencyView{Measurement: m, AgeS: math.Max(0, math.Round(now.Sub(m.At).Seconds()))})
	}
	c.JSON(200, gin.H{"dependencies": out})
}

// unscoped refuses tenant-scoped tokens where scoping cannot apply.
func unscoped(what string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if p := who(c); p.tenants != nil {
			abort(c, 403, "forbidden", fmt.Sprintf("%s covers every tenant; token %q is scoped to tenants %v: use a token without tenants", what, p.name, p.tenants))
			return
		}
		c.Next()
	}
}

// storeDown says, when the hub knows its store is down, since when and why.
func (s *server) storeDown() (string, bool) {
	if s.o.Health == nil {
		return "", false
	}
	since, reason, down := s.o.Health.Down()
	if !down {
		return "", false
	}
	return fmt.Sprintf("the store has not answered since %s (%s)", since.UTC().Format(time.RFC3339), reason), true
}

func (s *server) storeError(c *gin.Context, err error) {
	if errors.Is(err, context.Canceled) {
		abort(c, 499, "canceled", "request canceled")
		return
	}
	c.Header("Retry-After", strconv.Itoa(RetryAfterStoreError))
	s.o.Log.Error("store query failed", "route", c.FullPath(), "error", err)
	abort(c, 503, "store_error", "the store could not answer; try again")
}
