package sim

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/etlhub/etlhub/importer"
	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/embedded"
	"github.com/etlhub/etlhub/model"
)

// liveStep is the default simulated pace while the real import runs: one simulated
// minute per 250 ms of real time, whatever the demo's step.
const liveStep = 250 * time.Millisecond

// liveSpec is a district whose night the real importer imports.
type liveSpec struct {
	name     string
	students int
	errors   bool          // the roster has real-world mistakes
	drop     bool          // the SFTP connection drops during the download
	after    time.Duration // when its files are uploaded, after 02:00
}

// liveTenant is one such district as the night goes.
type liveTenant struct {
	liveSpec
	inbox, roster string
	rows          int64
	// The import runs in real time; its times are shown on the simulated
	// clock from the upload on: sim = sim0 + (real - real0) * scale.
	real0, sim0 time.Time
	uploaded    bool
	done        *model.Observation
	retries     map[string]int // failed calls by dependency, from the importer
	// runID is the importer's own name of the run (its report is filed
	// under it); the board shows it with the simulated night's date.
	runID string
}

// liveImporter is the real importer of the demo's live districts, on an
// embedded SFTP server and an embedded MongoDB-wire server, with Redis for
// its queue, locks and run records.
type liveImporter struct {
	im      *importer.Importer
	redis   *embedded.Redis
	dir     string
	tenants []*liveTenant
	stops   []func()
	step    time.Duration // real time per simulated minute while imports run
}

// startLive starts the servers and the importer, with each district's
// generated roster waiting to be uploaded.
func startLive(ctx context.Context, dir string, step time.Duration, specs []liveSpec) (*liveImporter, error) {
	l := &liveImporter{dir: dir, step: step}
	fail := func(err error) (*liveImporter, error) { l.stop(); return nil, err }
	for _, d := range []string{"ferret", "redis", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	var users []string
	for _, sp := range specs {
		users = append(users, sp.name)
	}
	sftpSrv, err := embedded.StartSFTP(dir, users...)
	if err != nil {
		return fail(fmt.Errorf("embedded SFTP: %w", err))
	}
	l.stops = append(l.stops, sftpSrv.Close)
	// The demo reads the importer in-process; its API still wants a token.
	tok := make([]byte, 16)
	crand.Read(tok)
	cfg := &importer.Config{Listen: "127.0.0.1:0", WorkDir: filepath.Join(dir, "work"), Poll: 200 * time.Millisecond,
		Quiet: 500 * time.Millisecond, LockTTL: 10 * time.Second, Heartbeat: time.Second, Workers: 2,
		StatusToken: config.Secret(hex.EncodeToString(tok))}
	for i, sp := range specs {
		t := &liveTenant{liveSpec: sp, inbox: filepath.Join(dir, "sftp", sp.name), roster: filepath.Join(dir, "roster", sp.name)}
		if err := os.MkdirAll(t.inbox, 0o755); err != nil {
			return fail(err)
		}
		counts, err := oneroster.Generate(t.roster, oneroster.GenOptions{Students: sp.students, Seed: uint64(i + 3), InjectErrors: sp.errors})
		if err != nil {
			return fail(err)
		}
		for _, n := range counts {
			t.rows += int64(n)
		}
		l.tenants = append(l.tenants, t)
		if sp.drop {
			sftpSrv.DropOnce(sp.name, 64<<10) // past the listing: in the download
		}
		cfg.Tenants = append(cfg.Tenants, importer.TenantConfig{Name: sp.name, SFTP: inbox.Config{Host: sftpSrv.Host, Port: sftpSrv.Port,
			User: sp.name, PrivateKey: config.Secret(sftpSrv.KeyPEM), KnownHosts: sftpSrv.KnownHosts, Dir: t.inbox}})
	}
	fdb, err := embedded.NewFerret("127.0.0.1:0", filepath.Join(dir, "ferret"))
	if err == nil {
		err = fdb.Start()
	}
	if err != nil {
		return fail(fmt.Errorf("embedded MongoDB-wire server: %w", err))
	}
	l.stops = append(l.stops, fdb.Stop)
	if l.redis, err = embedded.StartRedis(filepath.Join(dir, "redis")); err != nil {
		return fail(fmt.Errorf("redis: %w", err))
	}
	l.stops = append(l.stops, l.redis.Stop)
	cfg.Redis.Addr = l.redis.Addr
	cfg.Mongo.URI = config.Secret(fdb.URI)
	var p config.Problems
	cfg.Validate(&p)
	if err := p.Err("the demo's importer"); err != nil {
		return fail(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "importer.log"))
	if err != nil {
		return fail(err)
	}
	l.stops = append(l.stops, func() { logFile.Close() })
	if l.im, err = importer.New(ctx, cfg, slog.New(slog.NewJSONHandler(logFile, nil))); err != nil {
		return fail(err)
	}
	ictx, cancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() { defer close(ended); l.im.Run(ictx, nil) }()
	l.stops = append(l.stops, func() { cancel(); <-ended })
	return l, nil
}

// stop stops the importer and the servers, last started first.
func (l *liveImporter) stop() {
	for i := len(l.stops) - 1; i >= 0; i-- {
		l.stops[i]()
	}
}

// tenant is the live district called name, or nil.
func (l *liveImporter) tenant(name string) *liveTenant {
	for _, t := range l.tenants {
		if t.name == name {
			return t
		}
	}
	return nil
}

// busy says a live import is under way: the clock keeps the live pace.
func (l *liveImporter) busy() bool {
	for _, t := range l.tenants {
		if t.uploaded && t.done == nil {
			return true
		}
	}
	return false
}

// report is where the district finds the data-quality report of its run.
func (l *liveImporter) report(tenant string) string {
	return filepath.Join(l.dir, "sftp", tenant, "reports", importer.BatchName(l.tenant(tenant).runID)+".csv")
}

// onDate renames an importer run (tenant/job/day#n, day on the real clock)
// with the simulated clock's day, so that every time and date the demo
// shows is the simulated night's.
func onDate(runID string, sim time.Time) string {
	i := strings.LastIndexByte(runID, '/')
	j := strings.LastIndexByte(runID, '#')
	if i < 0 || j < i {
		return runID
	}
	return runID[:i+1] + sim.UTC().Format("2006-01-02") + runID[j:]
}

// upload puts the roster in the tenant's inbox, the manifest last, as the
// district's SFTP client would.
func (t *liveTenant) upload(sim time.Time) error {
	entries, err := os.ReadDir(t.roster)
	if err != nil {
		return err
	}
	for _, last := range []bool{false, true} {
		for _, e := range entries {
			if (e.Name() == "manifest.csv") != last {
				continue
			}
			if err := copyFile(filepath.Join(t.roster, e.Name()), filepath.Join(t.inbox, e.Name())); err != nil {
				return err
			}
		}
	}
	t.real0, t.sim0, t.uploaded = time.Now(), sim, true
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// observe reads the importer's runs of the uploaded districts still under
// way, as observations on the simulated clock.
func (l *liveImporter) observe(ctx context.Context, sim time.Time) ([]model.Observation, error) {
	runs, err := l.im.Runs(ctx)
	if err != nil {
		return nil, err
	}
	latest := map[string]model.Observation{}
	for _, r := range runs {
		latest[r.Tenant] = r.Observation
		if t := l.tenant(r.Tenant); t != nil {
			t.retries = r.Retries
		}
	}
	scale := float64(time.Minute) / float64(l.step)
	var out []model.Observation
	for _, t := range l.tenants {
		o, ok := latest[t.name]
		if !ok || !t.uploaded || t.done != nil {
			continue
		}
		toSim := func(at *time.Time) *time.Time {
			if at == nil {
				return nil
			}
			s := t.sim0.Add(time.Duration(float64(at.Sub(t.real0)) * scale)).Truncate(time.Second)
			if s.Before(t.sim0) { // mtimes have a resolution of a second
				s = t.sim0
			}
			if s.After(sim) {
				s = sim
			}
			return &s
		}
		t.runID = o.RunID
		o.RunID = onDate(o.RunID, t.sim0)
		o.At = sim
		o.StartedAt, o.UpdatedAt, o.FinishedAt, o.FilesArrivedAt = toSim(o.StartedAt), toSim(o.UpdatedAt), toSim(o.FinishedAt), toSim(o.FilesArrivedAt)
		out = append(out, o)
	}
	return out, nil
}
