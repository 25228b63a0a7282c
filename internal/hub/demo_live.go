package hub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/etlhub/etlhub/importer"
	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/embedded"
	"github.com/etlhub/etlhub/internal/status"
)

// liveStep is the simulated pace while the real import runs: one simulated
// minute per 250 ms of real time, whatever the demo's step.
const liveStep = 250 * time.Millisecond

// liveTenant is the demo's district whose night is not simulated: the real
// importer imports its roster from an embedded SFTP server into an embedded
// MongoDB-wire server, with Redis for its queue, locks and run records.
type liveTenant struct {
	name, inbox, roster string
	rows                int64
	im                  *importer.Importer
	redis               *embedded.Redis
	stops               []func()
	// The import runs in real time; its times are shown on the simulated
	// clock from the upload on: sim = sim0 + (real - real0) * scale.
	real0, sim0 time.Time
	uploaded    bool
	done        *status.Observation
}

// startLive starts the servers and the importer for tenant name, with a
// generated roster of students waiting to be uploaded.
func startLive(ctx context.Context, dir, name string, students int) (*liveTenant, error) {
	l := &liveTenant{name: name}
	fail := func(err error) (*liveTenant, error) { l.stop(); return nil, err }
	for _, d := range []string{"sftp/" + name, "ferret", "redis", "work", "roster"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	l.inbox, l.roster = filepath.Join(dir, "sftp", name), filepath.Join(dir, "roster")
	counts, err := oneroster.Generate(l.roster, oneroster.GenOptions{Students: students, Seed: 3})
	if err != nil {
		return nil, err
	}
	for _, n := range counts {
		l.rows += int64(n)
	}
	sftpSrv, err := embedded.StartSFTP(dir, name)
	if err != nil {
		return fail(fmt.Errorf("embedded SFTP: %w", err))
	}
	l.stops = append(l.stops, sftpSrv.Close)
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
	cfg := &importer.Config{Listen: "127.0.0.1:0", WorkDir: filepath.Join(dir, "work"), Poll: 200 * time.Millisecond,
		Quiet: 500 * time.Millisecond, LockTTL: 10 * time.Second, Heartbeat: time.Second, Workers: 1}
	cfg.Redis.Addr = l.redis.Addr
	cfg.Mongo.URI = config.Secret(fdb.URI)
	cfg.Tenants = []importer.TenantConfig{{Name: name, SFTP: inbox.Config{Host: sftpSrv.Host, Port: sftpSrv.Port, User: sftpSrv.User,
		PrivateKey: config.Secret(sftpSrv.KeyPEM), KnownHosts: sftpSrv.KnownHosts, Dir: l.inbox}}}
	var p config.Problems
	cfg.Validate(&p)
	if p.Len() != 0 {
		return fail(fmt.Errorf("importer config: %v", p))
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
func (l *liveTenant) stop() {
	for i := len(l.stops) - 1; i >= 0; i-- {
		l.stops[i]()
	}
}

// upload puts the roster in the tenant's inbox, the manifest last, as the
// district's SFTP client would.
func (l *liveTenant) upload(sim time.Time) error {
	entries, err := os.ReadDir(l.roster)
	if err != nil {
		return err
	}
	for _, last := range []bool{false, true} {
		for _, e := range entries {
			if (e.Name() == "manifest.csv") != last {
				continue
			}
			if err := copyFile(filepath.Join(l.roster, e.Name()), filepath.Join(l.inbox, e.Name())); err != nil {
				return err
			}
		}
	}
	l.real0, l.sim0, l.uploaded = time.Now(), sim, true
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

// observe reads the importer's latest run of the tenant as an observation on
// the simulated clock (nil before there is one).
func (l *liveTenant) observe(ctx context.Context, sim time.Time) (*status.Observation, error) {
	runs, err := l.im.Runs(ctx)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	o := runs[len(runs)-1].Observation
	scale := float64(time.Minute) / float64(liveStep)
	toSim := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		s := l.sim0.Add(time.Duration(float64(t.Sub(l.real0)) * scale)).Truncate(time.Second)
		if s.After(sim) {
			s = sim
		}
		return &s
	}
	o.At = sim
	o.StartedAt, o.UpdatedAt, o.FinishedAt, o.FilesArrivedAt = toSim(o.StartedAt), toSim(o.UpdatedAt), toSim(o.FinishedAt), toSim(o.FilesArrivedAt)
	if o.FilesArrivedAt != nil && o.FilesArrivedAt.Before(l.sim0) {
		o.FilesArrivedAt = &l.sim0 // mtimes have a resolution of a second
	}
	return &o, nil
}
