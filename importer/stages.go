package importer

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/etlhub/etlhub/importer/coord"
	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/model"
)

// stages carry a run, for the worker that holds its tenant's lock, from
// its checkpoint to its end: download, validate and decide, load and
// publish, archive. A stage done is checkpointed and not done again.
type stages struct {
	store   stageStore
	guard   *guard
	loader  *load.Loader
	workDir string
}

// stageStore is what the stages need of the run store.
type stageStore interface {
	save(ctx context.Context, rec *record, lock *coord.Lock) error
	saveReport(ctx context.Context, runID string, body []byte) error
}

// checkpoint saves the run's record now, through the Redis breaker.
func (s *stages) checkpoint(ctx context.Context, a *attempt) error {
	return s.guard.call(ctx, a, "redis", func() error { return s.store.save(ctx, a.snapshot(), a.lock) })
}

// sftp calls fn with the run's SFTP connection, dialling it when there is
// none; a failed call drops the connection so the retry dials afresh.
func (s *stages) sftp(ctx context.Context, a *attempt, fn func(c *inbox.Client) error) error {
	return s.guard.call(ctx, a, "sftp:"+a.t.Name, func() error {
		if a.conn == nil {
			c, err := inbox.Dial(ctx, a.t.SFTP)
			if err != nil {
				return err
			}
			a.conn = c
		}
		err := fn(a.conn)
		if err != nil {
			a.conn.Close()
			a.conn = nil
		}
		return err
	})
}

func (a *attempt) setStage(stage model.Stage) { a.update(func(r *record) { r.Obs.Stage = stage }) }

// run carries the run from its checkpoint to the end: download, validate
// and decide, load and publish, archive. A stage done is not done again.
func (s *stages) run(ctx context.Context, a *attempt) error {
	rec := a.snapshot()
	ck := rec.Checkpoint
	id := rec.Obs.RunID
	safe := BatchName(id)
	dir := filepath.Join(s.workDir, safe)
	if _, err := privateDir(dir); err != nil {
		return err
	}
	if !ck.Downloaded || !localComplete(dir, ck.Sizes) {
		if err := s.download(ctx, a, dir, rec.Files); err != nil {
			return err
		}
	}
	files, err := uploadFS(dir, rec.Files)
	if err != nil {
		return permanent{err}
	}
	if cl, ok := files.(io.Closer); ok {
		defer cl.Close()
	}
	if !ck.Validated {
		if err := s.validate(ctx, a, files, safe); err != nil {
			return err
		}
	}
	rec = a.snapshot()
	if !rec.Checkpoint.Published {
		if err := s.load(ctx, a, id, files, rec.Checkpoint.Modes); err != nil {
			return err
		}
	}
	if !rec.Checkpoint.Archived {
		if err := s.archive(ctx, a, safe, rec.Files); err != nil {
			return err
		}
	}
	os.RemoveAll(dir)
	return nil
}

// download copies the upload's files from SFTP into dir (each download
// resumes at the local file's size), then checkpoints their sizes.
func (s *stages) download(ctx context.Context, a *attempt, dir string, names []string) error {
	a.setStage(model.StageDownloading)
	sizes := map[string]int64{}
	for _, f := range names {
		local := filepath.Join(dir, f)
		if err := s.sftp(ctx, a, func(c *inbox.Client) error { _, err := c.Download(f, local); return err }); err != nil {
			return err
		}
		st, err := os.Stat(local)
		if err != nil {
			return err
		}
		sizes[f] = st.Size()
	}
	a.update(func(r *record) { r.Checkpoint.Downloaded, r.Checkpoint.Sizes = true, sizes })
	return s.checkpoint(ctx, a)
}

// validate checks the upload, sends the district its report, and decides
// by the tenant's policy whether to load.
func (s *stages) validate(ctx context.Context, a *attempt, files fs.FS, safe string) error {
	a.setStage(model.StageValidating)
	rep := oneroster.NewReport(5)
	res, err := oneroster.ValidateWith(files, a.t.Policy.Options(), rep.Add)
	if err != nil {
		return permanent{err}
	}
	rep.Finish(res)
	total := int64(0)
	modes := map[string]load.Mode{}
	for e, st := range rep.Files {
		total += int64(st.Rows)
		modes[e] = load.Mode(st.Mode)
	}
	a.update(func(r *record) {
		r.Obs.Quality = &model.Quality{Errors: int64(rep.Errors), Warnings: int64(rep.Warnings)}
		r.Obs.RowsTotal = total
	})
	var csvBuf strings.Builder
	rep.WriteCSV(&csvBuf)
	js, _ := json.MarshalIndent(rep, "", "  ")
	if err := s.sftp(ctx, a, func(c *inbox.Client) error {
		if err := c.Put("reports/"+safe+".csv", strings.NewReader(csvBuf.String())); err != nil {
			return err
		}
		return c.Put("reports/"+safe+".json", strings.NewReader(string(js)))
	}); err != nil {
		a.logger().Warn("the district's report could not be uploaded", "error", err)
	}
	var current map[string]int
	if err := s.guard.call(ctx, a, "mongo", func() error {
		var err error
		current, err = s.loader.Counts(ctx, a.t.Name)
		return err
	}); err != nil {
		return err
	}
	dec := a.t.Policy.Decide(rep, current)
	body, _ := json.Marshal(map[string]any{"run_id": a.rec.Obs.RunID, "report": rep, "decision": dec})
	if err := s.guard.call(ctx, a, "redis", func() error {
		return s.store.saveReport(ctx, a.rec.Obs.RunID, body)
	}); err != nil {
		return err
	}
	a.update(func(r *record) { r.Checkpoint.Validated, r.Checkpoint.Decision, r.Checkpoint.Modes = true, &dec, modes })
	if !dec.Load {
		if err := s.sftp(ctx, a, func(c *inbox.Client) error { return c.Archive(safe, a.snapshot().Files) }); err != nil {
			a.logger().Warn("archiving the rejected upload failed", "error", err)
		}
		return permanent{fmt.Errorf("rejected by policy: %s", strings.Join(dec.Reasons, "; "))}
	}
	return s.checkpoint(ctx, a)
}

// load writes the upload into a new generation and publishes it, resuming
// from the load's marks, then checkpoints it published.
func (s *stages) load(ctx context.Context, a *attempt, id string, files fs.FS, modes map[string]load.Mode) error {
	a.setStage(model.StageLoading)
	ld := *s.loader // a copy per run: tenants load concurrently
	ld.Progress = func(done int64) {
		a.update(func(r *record) { r.Obs.RowsDone = done })
		a.recovered("mongo", time.Now().UTC()) // a batch went in
	}
	ld.Mark = func(e string, m load.Mark) {
		a.update(func(r *record) {
			if r.Checkpoint.Load == nil {
				r.Checkpoint.Load = load.Checkpoint{}
			}
			r.Checkpoint.Load[e] = m
		})
	}
	var ptr load.Pointer
	if err := s.guard.call(ctx, a, "mongo", func() error {
		ld.Resume = a.snapshot().Checkpoint.Load // each try resumes from the marks so far
		var err error
		ptr, err = ld.Load(ctx, a.t.Name, id, files, modes)
		return err
	}); err != nil {
		return err
	}
	if len(ptr.Duplicates) > 0 {
		a.logger().Warn("rows not loaded: their sourcedId repeats an earlier row of the file (row.duplicate_sourcedid in the report)",
			"rows_by_file", ptr.Duplicates)
	}
	a.update(func(r *record) { r.Checkpoint.Published, r.Obs.Stage = true, model.StagePublishing })
	return s.checkpoint(ctx, a)
}

// archive moves the upload's files to archive/NAME/ on the district's server.
func (s *stages) archive(ctx context.Context, a *attempt, safe string, names []string) error {
	a.setStage(model.StagePublishing)
	if err := s.sftp(ctx, a, func(c *inbox.Client) error { return c.Archive(safe, names) }); err != nil {
		return err
	}
	a.update(func(r *record) { r.Checkpoint.Archived = true })
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

// BatchName is a run's name in file paths: its work directory, the
// district's reports/NAME.csv and .json, and archive/NAME/.
func BatchName(runID string) string { return strings.NewReplacer("/", "_", "#", "_").Replace(runID) }

// localComplete says the downloaded files are all here at their sizes.
func localComplete(dir string, sizes map[string]int64) bool {
	if len(sizes) == 0 {
		return false
	}
	for f, n := range sizes {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() != n {
			return false
		}
	}
	return true
}
