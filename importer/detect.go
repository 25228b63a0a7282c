package importer

import (
	"archive/zip"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/importer/upload"
	"github.com/etlhub/etlhub/model"
)

// detector watches the tenants' inboxes: while this process holds a
// tenant's detector lease, it opens the run the tenant's schedule calls
// for and queues the upload once it is complete.
type detector struct {
	store detectStore
	guard *guard
	log   *slog.Logger
	// interval is how often an inbox is listed.
	interval time.Duration
	opts     upload.Options
	workDir  string
	mu       sync.Mutex
	// zips remembers bundles that already opened, by tenant, name, size and
	// mtime, so a waiting bundle is not re-read on every poll.
	zips map[upload.Entry]bool
}

// detectStore is what the detector needs of the run store.
type detectStore interface {
	holdDetector(ctx context.Context, tenant string, ttl time.Duration) (bool, error)
	active(ctx context.Context, tenant string) (string, error)
	waiting(ctx context.Context, tenant string) (string, error)
	loadRecord(ctx context.Context, id string) (*record, error)
	openRecord(ctx context.Context, t TenantConfig, started time.Time) (*record, bool, error)
	saveOpen(ctx context.Context, rec *record) error
	enqueue(ctx context.Context, rec *record) (bool, error)
}

func newDetector(cfg *Config, log *slog.Logger, st detectStore, g *guard) *detector {
	return &detector{store: st, guard: g, log: log, interval: cfg.Poll, workDir: cfg.WorkDir,
		opts: upload.Options{Quiet: cfg.Quiet, Marker: cfg.Marker}, zips: map[upload.Entry]bool{}}
}

// watch watches one tenant's inbox while this process holds the tenant's
// detector lease (so one process of the group polls the district's server),
// opens scheduled runs and queues complete uploads.
func (d *detector) watch(ctx context.Context, t TenantConfig) {
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	var next time.Time
	if t.sched != nil {
		next = t.sched.Next(time.Now())
	}
	var w upload.Watch
	var lastErr string
	var lastLogged time.Time
	for {
		held, err := d.store.holdDetector(ctx, t.Name, 3*d.interval+time.Second)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("detector lease failed", "tenant", t.Name, "stage", model.StageAwaitingFiles, "error", err)
		}
		if held {
			var err error
			if next, err = d.open(ctx, t, next, time.Now().UTC()); err == nil {
				err = d.poll(ctx, t, &w)
			}
			// A failing inbox is logged when the failure changes, and once
			// a minute while it lasts (the breaker fails fast every poll).
			if err != nil && ctx.Err() == nil && (err.Error() != lastErr || time.Since(lastLogged) > time.Minute) {
				d.log.Warn("poll failed", "tenant", t.Name, "stage", model.StageAwaitingFiles, "error", err)
				lastLogged = time.Now()
			}
			lastErr = ""
			if err != nil {
				lastErr = err.Error()
			}
		} else {
			w = upload.Watch{} // another process watches; start afresh if this one takes over
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// open starts a run waiting for files when the tenant's schedule comes due
// and none is open or active, and returns the next due time.
func (d *detector) open(ctx context.Context, t TenantConfig, next, now time.Time) (time.Time, error) {
	if t.sched == nil || next.IsZero() || now.Before(next) {
		return next, nil
	}
	rec, created, err := d.store.openRecord(ctx, t, next)
	if err != nil {
		return next, err
	}
	if created {
		d.log.Info("run opened, awaiting files", "tenant", t.Name, "run_id", rec.Obs.RunID, "stage", model.StageAwaitingFiles, "attempt", 0)
	}
	return t.sched.Next(now), nil
}

// poll lists the inbox and queues the upload once it is complete. While a
// run of the tenant is queued or in progress it leaves the inbox alone.
func (d *detector) poll(ctx context.Context, t TenantConfig, w *upload.Watch) error {
	active, err := d.store.active(ctx, t.Name)
	if err != nil {
		return err
	}
	if active != "" {
		*w = upload.Watch{}
		return nil
	}
	var c *inbox.Client
	var listing []upload.Entry
	err = d.guard.call(ctx, nil, "sftp:"+t.Name, func() error {
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
	openID, err := d.store.waiting(ctx, t.Name)
	if err != nil {
		return err
	}
	if openID == "" && len(listing) == 0 {
		return nil
	}
	in := d.inspect(c, t, listing)
	step := upload.Step(w, listing, in, now, d.opts)
	var rec *record
	if openID != "" {
		if rec, err = d.store.loadRecord(ctx, openID); err != nil {
			return err
		}
	} else if rec, _, err = d.store.openRecord(ctx, t, now); err != nil || rec == nil {
		return err // nil: another process queued the tenant's run meanwhile
	}
	if !step.Complete {
		rec.Obs.UpdatedAt = &now
		return d.store.saveOpen(ctx, rec)
	}
	arrived, completed := step.FirstFileAt, step.CompletedAt
	rec.UploadCompletedAt, rec.Files = &completed, step.Files
	rec.Obs.FilesArrivedAt, rec.Obs.Stage, rec.Obs.UpdatedAt = &arrived, model.StageQueued, &now
	queued, err := d.store.enqueue(ctx, rec)
	if err != nil {
		return err
	}
	*w = upload.Watch{}
	if !queued {
		return nil // another process of the group queued it first
	}
	d.log.Info("upload complete, run queued", "tenant", t.Name, "run_id", rec.Obs.RunID, "stage", model.StageQueued, "attempt", 0,
		"files", len(step.Files), "files_arrived_at", arrived, "upload_completed_at", completed)
	return nil
}

// inspect checks the zip bundles and reads the manifest of a listing.
func (d *detector) inspect(c *inbox.Client, t TenantConfig, listing []upload.Entry) upload.Inputs {
	in := upload.Inputs{ZipOK: map[string]bool{}}
	for _, e := range listing {
		if strings.HasSuffix(strings.ToLower(e.Name), ".zip") && !upload.Temporary(e.Name) {
			// A bundle is complete when its central directory reads. The
			// download resumes, so each poll fetches only what is new.
			key := upload.Entry{Name: t.Name + "/" + e.Name, Size: e.Size, ModTime: e.ModTime}
			d.mu.Lock()
			seen := d.zips[key]
			d.mu.Unlock()
			if seen {
				in.ZipOK[e.Name] = true
				continue
			}
			local := filepath.Join(d.workDir, t.Name+"-"+e.Name)
			if _, err := c.Download(e.Name, local); err == nil {
				if zr, err := zip.OpenReader(local); err == nil {
					zr.Close()
					in.ZipOK[e.Name] = true
					d.mu.Lock()
					d.zips[key] = true
					d.mu.Unlock()
				}
			}
		}
		if e.Name == "manifest.csv" {
			local := filepath.Join(d.workDir, "manifest-"+t.Name+".csv")
			os.Remove(local)
			if _, err := c.Download("manifest.csv", local); err == nil {
				if f, err := os.Open(local); err == nil {
					in.Listed, _ = oneroster.ListedFiles(f)
					f.Close()
				}
			}
		}
	}
	return in
}
