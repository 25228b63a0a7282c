package importer

import (
	"archive/zip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/importer/upload"
	"github.com/redis/go-redis/v9"
)

var leaseScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2]) return 1 end
if v == ARGV[1] then redis.call("PEXPIRE", KEYS[1], ARGV[2]) return 1 end
return 0`)

// detect watches one tenant's inbox while this process holds the tenant's
// detector lease (so one process of the group polls the district's server),
// opens scheduled runs and queues complete uploads.
func (im *Importer) detect(ctx context.Context, t TenantConfig) {
	tick := time.NewTicker(im.cfg.Poll)
	defer tick.Stop()
	var next time.Time
	if t.sched != nil {
		next = t.sched.Next(time.Now())
	}
	var w upload.Watch
	var lastErr string
	var lastLogged time.Time
	for {
		held, err := leaseScript.Run(ctx, im.rdb, []string{detectKey(t.Name)}, im.id, (3*im.cfg.Poll + time.Second).Milliseconds()).Int()
		if err != nil && ctx.Err() == nil {
			im.log.Warn("detector lease failed", "tenant", t.Name, "stage", "awaiting_files", "error", err)
		}
		if held == 1 {
			var err error
			if next, err = im.open(ctx, t, next, time.Now().UTC()); err == nil {
				err = im.poll(ctx, t, &w)
			}
			// A failing inbox is logged when the failure changes, and once
			// a minute while it lasts (the breaker fails fast every poll).
			if err != nil && ctx.Err() == nil && (err.Error() != lastErr || time.Since(lastLogged) > time.Minute) {
				im.log.Warn("poll failed", "tenant", t.Name, "stage", "awaiting_files", "error", err)
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
func (im *Importer) open(ctx context.Context, t TenantConfig, next, now time.Time) (time.Time, error) {
	if t.sched == nil || next.IsZero() || now.Before(next) {
		return next, nil
	}
	rec, created, err := im.openRecord(ctx, t, next)
	if err != nil {
		return next, err
	}
	if created {
		im.log.Info("run opened, awaiting files", "tenant", t.Name, "run_id", rec.Obs.RunID, "stage", "awaiting_files", "attempt", 0)
	}
	return t.sched.Next(now), nil
}

// poll lists the inbox and queues the upload once it is complete. While a
// run of the tenant is queued or in progress it leaves the inbox alone.
func (im *Importer) poll(ctx context.Context, t TenantConfig, w *upload.Watch) error {
	active, err := im.rdb.Get(ctx, activeKey(t.Name)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if active != "" {
		*w = upload.Watch{}
		return nil
	}
	var c *inbox.Client
	var listing []upload.Entry
	err = im.guarded(ctx, nil, "sftp:"+t.Name, func() error {
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
	openID, err := im.rdb.Get(ctx, openKey(t.Name)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if openID == "" && len(listing) == 0 {
		return nil
	}
	in := im.inspect(c, t, listing)
	d := upload.Step(w, listing, in, now, upload.Options{Quiet: im.cfg.Quiet, Marker: im.cfg.Marker})
	var rec *record
	if openID != "" {
		if rec, err = im.loadRecord(ctx, openID); err != nil {
			return err
		}
	} else if rec, _, err = im.openRecord(ctx, t, now); err != nil || rec == nil {
		return err // nil: another process queued the tenant's run meanwhile
	}
	if !d.Complete {
		rec.Obs.UpdatedAt = &now
		return im.saveOpen(ctx, rec)
	}
	arrived, completed := d.FirstFileAt, d.CompletedAt
	rec.UploadCompletedAt, rec.Files = &completed, d.Files
	rec.Obs.FilesArrivedAt, rec.Obs.Stage, rec.Obs.UpdatedAt = &arrived, "queued", &now
	queued, err := im.enqueue(ctx, rec)
	if err != nil {
		return err
	}
	*w = upload.Watch{}
	if !queued {
		return nil // another process of the group queued it first
	}
	im.log.Info("upload complete, run queued", "tenant", t.Name, "run_id", rec.Obs.RunID, "stage", "queued", "attempt", 0,
		"files", len(d.Files), "files_arrived_at", arrived, "upload_completed_at", completed)
	return nil
}

// inspect checks the zip bundles and reads the manifest of a listing.
func (im *Importer) inspect(c *inbox.Client, t TenantConfig, listing []upload.Entry) upload.Inputs {
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
	return in
}
