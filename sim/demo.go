package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/app"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/notifier/pagerduty"
	"github.com/etlhub/etlhub/notifier/slack"
	"github.com/etlhub/etlhub/store"
)

// DemoOptions shape `etlhub demo`.
type DemoOptions struct {
	Listen string
	// Step is how much real time one simulated minute takes (250ms: a night
	// in about a minute and a half).
	Step time.Duration
	Out  io.Writer // where transitions are printed (the console receiver)
	Dir  string    // data directory ("" for a temporary one)
	// Ready receives the dashboard URL and the token.
	Ready func(url, token string)
	// LiveStudents sizes the roster the real importer loads for polk
	// (5000 when zero).
	LiveStudents int
	// LiveStep is the real time of one simulated minute while the real
	// imports run (250ms when zero); a slower machine (or a race-detector
	// build of the embedded servers) needs more for an ordinary night to
	// take its ordinary minutes.
	LiveStep time.Duration
	// PagerDuty and Slack, when set, receive the night's alerts besides the
	// console: critical ones page, all go to Slack.
	PagerDuty *pagerduty.Config
	Slack     *slack.Config
}

// demoTenant is one simulated district and what goes wrong for it tonight.
type demoTenant struct {
	name, story string
	rows        int64
	rate        float64 // rows a simulated minute, usually
	late        int     // minutes the files are late
	// slowAt: when after the night's start its load slows, of its own, to
	// slowRate rows a minute (zero: it does not).
	slowAt   time.Duration
	slowRate float64
	stallAt  float64
	// mongo: its load runs into the MongoDB overload, at overloadPace of
	// its pace from overloadFrom to overloadTo after the night's start.
	mongo bool
}

// Tonight the MongoDB four districts load into is overloaded from 03:45 to
// 04:35, when the real imports are long done: the loads in progress then go
// at 40% of their pace, together.
const (
	overloadFrom = 105 * time.Minute
	overloadTo   = 155 * time.Minute
	overloadPace = 0.4
)

// Demo runs the hub on SQLite with a night of ten districts on an
// accelerated clock: five ordinary nights of history, then tonight, in which
// one load slows of its own and is too slow for its deadline, one worker
// stalls, one upload is late, and MongoDB's overload slows five loads at once
// (simulated observations), while three districts are imported by
// the real importer on embedded servers: an ordinary one, one with data
// errors, and one whose SFTP connection drops mid-download. The dashboard and API
// show it on the simulated clock; alert transitions print to Out.
func Demo(ctx context.Context, o DemoOptions, log *slog.Logger) error {
	if o.Step <= 0 {
		o.Step = 250 * time.Millisecond
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "etlhub-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if o.LiveStep <= 0 {
		o.LiveStep = liveStep
	}
	if o.LiveStudents <= 0 {
		o.LiveStudents = 5000
	}
	// Two districts' nights are the real importer's: polk's ordinary one,
	// and orange's, whose roster has real-world mistakes.
	live, err := startLive(ctx, filepath.Join(dir, "live"), o.LiveStep, []liveSpec{
		{name: "polk", students: o.LiveStudents, after: 5 * time.Minute},
		{name: "orange", students: max(o.LiveStudents/2, 200), errors: true, after: 10 * time.Minute},
		{name: "duval", students: max(o.LiveStudents/2, 200), drop: true, after: 15 * time.Minute},
	})
	if err != nil {
		return fmt.Errorf("the demo's importer: %w", err)
	}
	defer live.stop()
	polk, orange, duval := live.tenant("polk"), live.tenant("orange"), live.tenant("duval")
	tenants := []demoTenant{
		{name: "miami-dade", story: "its big load (usually done by 05:30) slows at 03:00, its own trouble: it will miss the 06:00 deadline",
			rows: 3_000_000, rate: 15000, slowAt: time.Hour, slowRate: 10000},
		{name: "broward", story: "its worker stalls", rows: 800_000, rate: 10000, stallAt: 0.4},
		{name: "hillsborough", story: "its district uploads 90 minutes late; its load begins in MongoDB's overload", rows: 600_000, rate: 9000, late: 90, mongo: true},
		{name: "palm-beach", rows: 1_500_000, rate: 10000, mongo: true},
		{name: "pinellas", rows: 1_200_000, rate: 9000, mongo: true},
		{name: "lee", rows: 900_000, rate: 8000, mongo: true},
		{name: "seminole", rows: 1_200_000, rate: 8000, mongo: true},
		{name: "orange", story: "its files have data errors (imported for real, below)", rows: orange.rows, rate: float64(orange.rows) / 10},
		{name: "duval", story: "its SFTP connection drops mid-download; the importer resumes (imported for real, below)",
			rows: duval.rows, rate: float64(duval.rows) / 10},
		{name: "polk", story: "an ordinary night (imported for real, below)", rows: polk.rows, rate: float64(polk.rows) / 10},
	}
	// Tonight starts at 02:00 New York; deadlines are 06:00.
	tz, _ := time.LoadLocation("America/New_York")
	today := time.Now().In(tz)
	night := time.Date(today.Year(), today.Month(), today.Day(), 2, 0, 0, 0, tz).UTC()
	var specs []model.JobSpec
	for _, t := range tenants {
		s := model.JobSpec{Tenant: t.name, Job: "roster-import", Timezone: "America/New_York", Schedule: "0 2 * * *",
			Deadline: "06:00", StaleAfter: model.Duration(20 * time.Minute)}
		if err := s.Compile(); err != nil {
			return err
		}
		specs = append(specs, s)
	}
	var obs []model.Observation
	for k := 5; k >= 1; k-- {
		for _, t := range tenants {
			ordinary := demoTenant{name: t.name, rows: t.rows, rate: t.rate}
			obs = append(obs, ordinary.simulate(night.AddDate(0, 0, -k), fmt.Sprintf("#%d", k))...)
		}
	}
	for _, t := range tenants {
		if live.tenant(t.name) == nil { // the live districts' nights are the real importer's
			obs = append(obs, t.simulate(night, "")...)
		}
	}
	sort.SliceStable(obs, func(i, j int) bool { return obs[i].At.Before(obs[j].At) })

	var tok [16]byte
	rand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	cfg := &app.Config{Listen: o.Listen, Store: store.Config{Driver: "sqlite", Path: filepath.Join(dir, "demo.db")}, Jobs: specs,
		Auth: api.AuthConfig{Tokens: []api.TokenConfig{{Name: "demo", Token: config.Secret(token), Role: "admin"}}}}
	if o.PagerDuty != nil {
		cfg.Notify.Receivers = append(cfg.Notify.Receivers, app.ReceiverConfig{Name: "pagerduty", PagerDuty: o.PagerDuty})
		cfg.Notify.Routes = append(cfg.Notify.Routes, notifier.Route{Match: map[string]string{"severity": string(model.SeverityCritical)}, Receiver: "pagerduty", Continue: true})
	}
	if o.Slack != nil {
		cfg.Notify.Receivers = append(cfg.Notify.Receivers, app.ReceiverConfig{Name: "slack", Slack: o.Slack})
		cfg.Notify.Routes = append(cfg.Notify.Routes, notifier.Route{Receiver: "slack"})
	}
	var p config.Problems
	cfg.Validate(&p)
	if err := p.Err("the demo's receivers (PAGERDUTY_ROUTING_KEY, SLACK_*)"); err != nil {
		return err
	}
	// The hub as etlhub serve wires it, on the demo's simulated clock; the
	// demo steps the alert loop itself, one simulated minute at a time.
	var mu sync.Mutex
	clock := night.AddDate(0, 0, -5).Add(-time.Hour)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	h, err := app.New(ctx, cfg, app.Options{Log: log, Now: now, Stepped: true})
	if err != nil {
		return err
	}
	if err := h.Start(ctx); err != nil {
		h.Stop()
		return err
	}
	defer h.Stop()
	ing, handler := h.Ingest, h.Handler
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(o.Out, "etlhub demo: a night of %d districts, one simulated minute every %v\n", len(tenants), o.Step)
	var struck []string
	for _, t := range tenants {
		if t.story == "" {
			struck = append(struck, t.name)
			continue
		}
		fmt.Fprintf(o.Out, "  %-13s %s\n", t.name, t.story)
	}
	fmt.Fprintf(o.Out, "  %s: the MongoDB they load into is overloaded from 03:45 to 04:35;\n"+
		"    their loads slow together (and hillsborough's): one shared alert names the cause and pages once,\n"+
		"    not once per district; they make their deadlines\n", strings.Join(struck, ", "))
	redisKind := "redis-server"
	if live.redis.DemoOnly {
		redisKind = "an in-process Redis stand-in (demo only: redis-server is not installed)"
	}
	fmt.Fprintf(o.Out, "  polk (%d rows, files at 02:05), orange (%d rows, 02:10) and duval (%d rows, 02:15) go through the real\n"+
		"    importer: an embedded SFTP server, OneRoster validation, an embedded MongoDB-wire server (FerretDB)\n    and %s; its log: %s\n",
		polk.rows, orange.rows, duval.rows, redisKind, filepath.Join(dir, "live", "importer.log"))
	sent := "the console"
	for _, r := range cfg.Notify.Receivers {
		sent += ", " + r.Name
	}
	fmt.Fprintf(o.Out, "alerts go to %s\n", sent)
	fmt.Fprintf(o.Out, "dashboard: %s  token: %s\n", url, token)
	if o.Ready != nil {
		o.Ready(url, token)
	}
	// History goes in at once, on a clock after it (the rules believe no
	// observation from their future); tonight plays on the simulated clock.
	i := 0
	for i < len(obs) && obs[i].At.Before(night.Add(-time.Hour)) {
		i++
	}
	mu.Lock()
	clock = night.Add(-time.Hour)
	mu.Unlock()
	for start := 0; start < i; start += 1000 {
		if _, err := ing.Ingest(ctx, "demo", obs[start:min(start+1000, i)]); err != nil {
			return err
		}
	}
	// Let the rules learn the history night by night.
	for t := night.AddDate(0, 0, -5).Add(-time.Hour); t.Before(night.Add(-time.Hour)); t = t.Add(time.Hour) {
		h.Alerting.Engine().Tick(t)
	}
	end := night.Add(6*time.Hour + 30*time.Minute)
	for sim := night.Add(-time.Hour); !sim.After(end); sim = sim.Add(time.Minute) {
		mu.Lock()
		clock = sim
		mu.Unlock()
		j := i
		for j < len(obs) && !obs[j].At.After(sim) {
			j++
		}
		if j > i {
			if _, err := ing.Ingest(ctx, "demo", obs[i:j]); err != nil {
				return err
			}
			i = j
		}
		pace := o.Step
		for _, t := range live.tenants {
			if sim.Equal(night.Add(t.after)) {
				if err := t.upload(sim); err != nil {
					return fmt.Errorf("the demo's upload for %s: %w", t.name, err)
				}
			}
		}
		if live.busy() {
			// The real imports run in real time: the clock slows to the
			// live pace until they end, so their minutes are believable.
			pace = max(o.Step, o.LiveStep)
			lobs, err := live.observe(ctx, sim)
			if err != nil {
				fmt.Fprintf(o.Out, "%s  the importer's runs cannot be read: %v\n", sim.In(tz).Format("15:04 MST"), err)
			}
			if len(lobs) > 0 {
				if _, err := ing.Ingest(ctx, "importer", lobs); err != nil {
					return err
				}
			}
			for _, ob := range lobs {
				if !ob.State.Terminal() {
					continue
				}
				live.tenant(ob.Tenant).done = &ob
				fmt.Fprintf(o.Out, "%s  %s: run %s %s by the real importer: %d of %d rows published in %v (simulated), error %q\n",
					sim.In(tz).Format("15:04 MST"), ob.Tenant, ob.RunID, ob.State, ob.RowsDone, ob.RowsTotal, ob.FinishedAt.Sub(*ob.StartedAt), ob.Error)
				if n := live.tenant(ob.Tenant).retries; len(n) > 0 {
					fmt.Fprintf(o.Out, "    %s: the importer retried failed calls and carried on: %v\n", ob.Tenant, n)
				}
				if ob.Quality != nil {
					fmt.Fprintf(o.Out, "    %s's data-quality report, as the district gets it on its SFTP server: %s (%d errors, %d warnings)\n",
						ob.Tenant, live.report(ob.Tenant), ob.Quality.Errors, ob.Quality.Warnings)
				}
			}
		}
		trans, err := h.Alerting.StepTransitions(ctx, sim)
		if err != nil {
			fmt.Fprintf(o.Out, "%s  the alerts could not be saved (kept, saved on the next minute): %v\n", sim.In(tz).Format("15:04 MST"), err)
		}
		printTransitions(o.Out, sim.In(tz).Format("15:04 MST"), trans)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pace):
		}
	}
	fmt.Fprintln(o.Out, "etlhub demo: the night is over; the dashboard stays up until you stop it (Ctrl-C)")
	<-ctx.Done()
	return nil
}

// simulate is what a collector polling every 5 minutes would see of one
// night of t starting at start.
func (t demoTenant) simulate(start time.Time, suffix string) []model.Observation {
	type snap struct {
		at          time.Time
		state       model.State
		stage       model.Stage
		upd         time.Time
		done, total int64
		fin         *time.Time
	}
	var snaps []snap
	runID := fmt.Sprintf("%s/roster-import/%s#1%s", t.name, start.Format("2006-01-02"), suffix)
	now := start
	add := func(state model.State, stage model.Stage, upd time.Time, done, total int64) {
		s := snap{at: now, state: state, stage: stage, upd: upd, done: done, total: total}
		snaps = append(snaps, s)
		now = now.Add(time.Minute)
	}
	for m := 0; m < t.late; m++ {
		add(model.StateWaiting, model.StageAwaitingFiles, now, 0, 0)
	}
	files := now
	var done float64
	for m := 0; m < 6; m++ {
		add(model.StateRunning, model.StageDownloading, now, int64(done), 0)
	}
	for m := 0; m < 3; m++ {
		add(model.StateRunning, model.StageValidating, now, int64(done), t.rows)
	}
	stalled := false
	for done < float64(t.rows) {
		frac := done / float64(t.rows)
		if t.stallAt > 0 && !stalled && frac >= t.stallAt {
			stalled = true
			frozen := now.Add(-time.Minute)
			for m := 0; m < 45; m++ {
				add(model.StateRunning, model.StageLoading, frozen, int64(done), t.rows)
			}
		}
		r := t.rate * (1 + 0.05*math.Sin(float64(len(snaps))))
		if t.slowAt > 0 && now.Sub(start) >= t.slowAt {
			r = t.slowRate
		}
		if off := now.Sub(start); t.mongo && off >= overloadFrom && off < overloadTo {
			r *= overloadPace
		}
		done = math.Min(float64(t.rows), done+r)
		add(model.StateRunning, model.StageLoading, now, int64(done), t.rows)
	}
	for m := 0; m < 2; m++ {
		add(model.StateRunning, model.StagePublishing, now, t.rows, t.rows)
	}
	f := now
	snaps = append(snaps, snap{at: now, state: model.StateSucceeded, upd: now, done: t.rows, total: t.rows, fin: &f})
	var out []model.Observation
	last := snaps[len(snaps)-1].at
	k := 0
	for poll := start; !poll.After(last.Add(5 * time.Minute)); poll = poll.Add(5 * time.Minute) {
		for k+1 < len(snaps) && !snaps[k+1].at.After(poll) {
			k++
		}
		s := snaps[k]
		upd, st := s.upd, start
		o := model.Observation{At: poll, RunStatus: model.RunStatus{
			Source: "importer", Tenant: t.name, Job: "roster-import", RunID: runID,
			State: s.state, Stage: s.stage, StartedAt: &st, UpdatedAt: &upd, FinishedAt: s.fin, RowsDone: s.done,
			RowsTotal: s.total,
		}, Attempt: 1}
		if s.state != model.StateWaiting {
			fa := files
			o.FilesArrivedAt = &fa
		}
		out = append(out, o)
	}
	return out
}

// printTransitions is the demo's console receiver: one line a transition.
// A summary holds outside text (a pushed tenant or job, a posted alert's
// annotation): terminal escapes and line breaks are taken out.
func printTransitions(w io.Writer, at string, trans []model.Transition) {
	for _, tr := range trans {
		fmt.Fprintf(w, "%s  %-8s %-9s %s\n", at, redact.Printable(string(tr.Alert.Severity)), tr.Status, redact.Printable(tr.Alert.Summary))
	}
}
