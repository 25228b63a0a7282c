package api

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/gin-gonic/gin"
)

// The board's reads beyond the status: a job's night history, the
// district's own page, and the live stream of changes.

func (s *server) boardRoutes(v1 *gin.RouterGroup, view gin.HandlerFunc) {
	v1.GET("/jobs/:tenant/:job/nights", view, s.nights)
	v1.GET("/district/:tenant", view, s.district)
	v1.GET("/events", view, s.events)
}

// NightsView is GET /api/v1/jobs/{tenant}/{job}/nights: the last nights of a
// job judged against their deadlines, newest first.
type NightsView struct {
	Tenant   string              `json:"tenant"`
	Job      string              `json:"job"`
	Timezone string              `json:"timezone"`
	Deadline string              `json:"deadline"` // local HH:MM
	Nights   []rules.NightRecord `json:"nights"`
	Rates
}

// Rates are the on-time rate over the judged nights (on time, late, missed
// or failed) and over the most recent seven of them (the trend).
type Rates struct {
	Judged     int      `json:"judged"`
	OnTime     int      `json:"on_time"`
	OnTimeRate *float64 `json:"on_time_rate"`
	RecentRate *float64 `json:"recent_on_time_rate"`
}

// NightNoRecord is a night before the hub's records began (no run seen).
const NightNoRecord = "no-record"

// firstRecord is the store's oldest observation time, read at most once a
// minute.
func (s *server) firstRecord(ctx context.Context) (time.Time, bool, error) {
	s.first.mu.Lock()
	defer s.first.mu.Unlock()
	if s.first.known && time.Since(s.first.read) < time.Minute {
		return s.first.at, true, nil
	}
	at, ok, err := s.o.Store.FirstObservationAt(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	if ok {
		s.first.at, s.first.known, s.first.read = at, true, time.Now()
	}
	return at, ok, nil
}

func judged(kind string) bool {
	switch kind {
	case rules.OutcomeOnTime, rules.OutcomeLate, rules.OutcomeMissed, rules.OutcomeFailed:
		return true
	}
	return false
}

func rates(nights []rules.NightRecord) Rates {
	var r Rates
	recentN, recentOK := 0, 0
	for _, n := range nights { // newest first
		if !judged(n.Kind) {
			continue
		}
		r.Judged++
		ok := n.Kind == rules.OutcomeOnTime
		if ok {
			r.OnTime++
		}
		if recentN < 7 {
			recentN++
			if ok {
				recentOK++
			}
		}
	}
	if r.Judged > 0 {
		v := float64(r.OnTime) / float64(r.Judged)
		w := float64(recentOK) / float64(recentN)
		r.OnTimeRate, r.RecentRate = &v, &w
	}
	return r
}

// nightsOf judges the last n nights of a configured job at now.
func (s *server) nightsOf(ctx context.Context, k model.JobKey, n int, now time.Time) (*NightsView, error) {
	spec := s.specs[k]
	if spec == nil {
		return nil, nil
	}
	c := *spec
	if c.Location() == nil {
		if err := c.Compile(); err != nil {
			return &NightsView{Tenant: k.Tenant, Job: k.Job, Nights: []rules.NightRecord{}}, nil
		}
	}
	oldest := c.PrevStart(now.Add(time.Hour))
	for i := 1; i < n && !oldest.IsZero(); i++ {
		p := c.PrevStart(oldest.Add(-time.Second))
		if p.IsZero() {
			break
		}
		oldest = p
	}
	runs, err := s.o.Store.JobRunsSince(ctx, k, oldest.Add(-2*time.Hour))
	if err != nil {
		return nil, err
	}
	nights := rules.NightsOf(&c, runs, n, now)
	if nights == nil {
		nights = []rules.NightRecord{}
	}
	first, known, err := s.firstRecord(ctx)
	if err != nil {
		return nil, err
	}
	for i := range nights {
		// A night whose window opened before the hub's first record, with
		// no run seen, is unknown: the hub was not there to see it. It is
		// not counted against the on-time rate.
		if nr := &nights[i]; nr.Attempts == 0 && (!known || nr.Night.Add(-time.Hour).Before(first)) {
			nr.Kind, nr.LateByS, nr.Summary = NightNoRecord, 0, "no record: before the hub's first observation"
		}
	}
	return &NightsView{Tenant: k.Tenant, Job: k.Job, Timezone: c.Timezone, Deadline: c.Deadline, Nights: nights, Rates: rates(nights)}, nil
}

func (s *server) nights(c *gin.Context) {
	k, ok := s.jobKey(c)
	if !ok {
		return
	}
	n := 30
	if v := c.Query("limit"); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x < 1 || x > 90 {
			abort(c, 400, "bad_request", "limit must be a whole number from 1 to 90")
			return
		}
		n = x
	}
	out, err := s.nightsOf(c.Request.Context(), k, n, s.o.Now().UTC())
	if err != nil {
		s.storeError(c, err)
		return
	}
	if out == nil {
		abort(c, 404, "not_found", "no configured job "+strconv.Quote(k.Tenant+"/"+k.Job)+" (nights need its schedule and deadline)")
		return
	}
	c.JSON(200, out)
}

// Step is one step of tonight's upload as the district follows it; At is
// nil until it happened.
type Step struct {
	Name    string     `json:"name"`
	Meaning string     `json:"meaning"`
	At      *time.Time `json:"at"`
	// By: the step was not seen itself, but a later one was: it happened
	// at At at the latest.
	By bool `json:"by,omitempty"`
}

// Finding is one line of the data-quality report.
type Finding struct {
	Kind    string `json:"kind"` // error | warning
	Count   int64  `json:"count"`
	Meaning string `json:"meaning"`
	Fix     string `json:"fix"`
}

// DistrictJob is one job of the district's page.
type DistrictJob struct {
	Job      string         `json:"job"`
	Timezone string         `json:"timezone,omitempty"`
	RunID    string         `json:"run_id,omitempty"`
	State    model.State    `json:"state,omitempty"`
	Stage    string         `json:"stage,omitempty"`
	Deadline *time.Time     `json:"deadline,omitempty"`
	Outcome  *rules.Outcome `json:"outcome,omitempty"`
	Steps    []Step         `json:"steps"`
	Quality  []Finding      `json:"quality"`
	// Report is tonight's data-quality report finding by finding (code,
	// file, what it means, how to fix it, examples with line, column and
	// value), read from the source the run came from; ReportNote says why
	// there is none when there is none.
	Report     *QualityReport      `json:"report,omitempty"`
	ReportNote string              `json:"report_note,omitempty"`
	Nights     []rules.NightRecord `json:"nights"`
	Rates
}

// district is GET /api/v1/district/{tenant}: for each of the tenant's jobs,
// tonight's upload step by step, the data-quality report and recent nights.
func (s *server) district(c *gin.Context) {
	tenant := c.Param("tenant")
	if !who(c).CanSee(tenant) {
		abort(c, 403, "forbidden", "tenant "+strconv.Quote(tenant)+" is outside this token's scope")
		return
	}
	ctx := c.Request.Context()
	latest, err := s.o.Store.LatestRuns(ctx, store.Filter{Tenants: []string{tenant}})
	if err != nil {
		s.storeError(c, err)
		return
	}
	keys := map[model.JobKey]bool{}
	for k := range latest {
		keys[k] = true
	}
	for k := range s.specs {
		if k.Tenant == tenant {
			keys[k] = true
		}
	}
	if len(keys) == 0 {
		abort(c, 404, "not_found", "no jobs of tenant "+strconv.Quote(tenant))
		return
	}
	var views map[model.JobKey]JobView
	if s.o.Views != nil {
		views = s.o.Views.JobViews()
	}
	now := s.o.Now().UTC()
	jobs := make([]DistrictJob, 0, len(keys))
	for k := range keys {
		dj := DistrictJob{Job: k.Job, Steps: []Step{}, Quality: []Finding{}, Nights: []rules.NightRecord{}}
		if sp := s.specs[k]; sp != nil {
			dj.Timezone = sp.Timezone
		}
		v := views[k]
		dj.Deadline, dj.Outcome = v.Deadline, v.Outcome
		if r, ok := latest[k]; ok {
			obs, err := s.o.Store.Observations(ctx, store.RunKey{Tenant: r.Tenant, Job: r.Job, RunID: r.RunID}, 5000)
			if err != nil {
				s.storeError(c, err)
				return
			}
			dj.RunID, dj.State, dj.Stage = r.RunID, r.State, string(r.Stage)
			dj.Steps = uploadSteps(&r, obs)
			dj.Quality = findings(r.QualityErrors, r.QualityWarnings)
			dj.Report, dj.ReportNote = s.report(ctx, &r)
		}
		nv, err := s.nightsOf(ctx, k, 14, now)
		if err != nil {
			s.storeError(c, err)
			return
		}
		if nv != nil {
			dj.Nights, dj.Rates = nv.Nights, nv.Rates
		}
		jobs = append(jobs, dj)
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Job < jobs[j].Job })
	c.JSON(200, gin.H{"tenant": tenant, "generated_at": now, "jobs": jobs})
}

// uploadSteps reads the steps of a run from its observations (in at order):
// the importer's stages are awaiting_files, queued (the upload is
// complete), downloading, validating, loading (validated), publishing
// (loaded), and the success (published).
func uploadSteps(r *model.Run, obs []model.Observation) []Step {
	first := func(stage model.Stage) *time.Time {
		for i := range obs {
			if obs[i].Stage == stage {
				t := obs[i].At.UTC()
				if u := obs[i].UpdatedAt; u != nil && u.Before(t) {
					t = u.UTC()
				}
				return &t
			}
		}
		return nil
	}
	steps := []Step{
		{Name: "first file seen", Meaning: "the first of tonight's files arrived on the SFTP server", At: r.FilesArrivedAt},
		{Name: "upload complete", Meaning: "every expected file is there and has stopped changing", At: first(model.StageQueued)},
		{Name: "validated", Meaning: "the files were checked against the OneRoster rules", At: first(model.StageLoading)},
		{Name: "loaded", Meaning: "the rows are in the database, not yet visible", At: first(model.StagePublishing)},
		{Name: "published", Meaning: "the new roster is live", At: nil},
	}
	if r.State == model.StateSucceeded {
		t := r.LastSeenAt
		if r.FinishedAt != nil {
			t = *r.FinishedAt
		}
		t = t.UTC()
		steps[4].At = &t
	}
	// A later step implies the earlier ones (a collector may miss a stage):
	// they happened by then at the latest, and the upload was complete by
	// the time the run started.
	for i := len(steps) - 2; i >= 1; i-- {
		if steps[i].At == nil && steps[i+1].At != nil {
			t := *steps[i+1].At
			steps[i].At, steps[i].By = &t, true
		}
	}
	if up := &steps[1]; up.By && r.StartedAt != nil && r.StartedAt.Before(*up.At) {
		t := r.StartedAt.UTC()
		up.At = &t
	}
	return steps
}

func findings(errs, warns int64) []Finding {
	return []Finding{
		{Kind: "error", Count: errs,
			Meaning: "rows that break the OneRoster rules (a missing id, a reference to a school or class not in the files, a bad date); they were not loaded",
			Fix:     "correct these rows in the student information system's export and upload the files again"},
		{Kind: "warning", Count: warns,
			Meaning: "rows that were loaded but look wrong (an unusual grade, an empty email, a duplicate name)",
			Fix:     "check them in the student information system; nothing is needed for tonight's load"},
	}
}

// events is GET /api/v1/events: a server-sent event stream. "change" says
// that tenants the token may see have something new (the page reads them
// again), or, with "all", that anything may have (the page reads
// everything); a comment every 10 s keeps the stream alive, so a page that
// hears nothing for longer knows the hub is unreachable. Every event has an
// id; a stream opened with the last one heard (Last-Event-ID) starts with
// what changed since, so nothing is lost between two streams. The stream
// ends after Options.EventStreamFor; the page reconnects.
func (s *server) events(c *gin.Context) {
	p := who(c)
	sub, id := s.live.subscribe(p, c.GetHeader("Last-Event-ID"))
	defer s.live.unsubscribe(sub)
	w := c.Writer
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(200)
	// The server's write timeout would cut the stream; end it first, and
	// the page reconnects.
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.o.EventStreamFor)
	defer cancel()
	hello, _ := json.Marshal(gin.H{"at": s.o.Now().UTC()})
	fmt.Fprintf(w, "retry: 1000\nid: %s\nevent: hello\ndata: %s\n\n", id, hello)
	w.Flush()
	ping := time.NewTicker(10 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			fmt.Fprintf(w, ": ping\n\n")
		case n := <-sub.ch:
			data := gin.H{"at": s.o.Now().UTC(), "tenants": n.tenants}
			if n.all {
				data = gin.H{"at": s.o.Now().UTC(), "all": true}
			}
			b, _ := json.Marshal(data)
			fmt.Fprintf(w, "id: %s\nevent: change\ndata: %s\n\n", s.live.id(n.seq), b)
		}
		w.Flush()
	}
}
