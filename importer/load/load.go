// Package load writes a validated OneRoster upload into MongoDB as a new
// generation and publishes it by switching one pointer document per tenant,
// so readers never see a half-loaded or rejected roster. It uses unordered
// batched inserts from parallel workers (no upserts, no transactions: the
// MongoDB-wire server in tests, FerretDB, is slow at the first and lacks the
// second), drops old generations after the switch, and a re-run of the same
// run is idempotent.
package load

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Entities are the OneRoster files loaded, each into its own collection,
// in the order they are loaded: those of 1.1 (orgs to demographics, and the
// resources and gradebook files when a 1.1 upload carries them) and those
// 1.2 added (roles, userProfiles, userResources, scoreScales and the line
// item and result links). A file the validator passes in modes that is not
// listed here is loaded too, after these.
var Entities = []string{"orgs", "academicSessions", "courses", "classes", "users", "userProfiles", "roles", "enrollments",
	"demographics", "resources", "courseResources", "classResources", "userResources", "categories", "scoreScales",
	"lineItems", "results", "lineItemScoreScales", "resultScoreScales", "lineItemLearningObjectiveIds",
	"resultLearningObjectiveIds"}

// PointerCollection holds one document per tenant: the published generation.
const PointerCollection = "roster_pointers"

// Pointer is a tenant's published roster.
type Pointer struct {
	Tenant      string            `bson:"_id" json:"tenant"`
	Generation  string            `bson:"generation" json:"generation"`
	RunID       string            `bson:"run_id" json:"run_id"`
	Collections map[string]string `bson:"collections" json:"collections"`
	Counts      map[string]int    `bson:"counts" json:"counts"`
	// Duplicates are rows of a bulk file not loaded because their sourcedId
	// repeats an earlier row's: the first row is kept (the validator reports
	// the others as row.duplicate_sourcedid).
	Duplicates  map[string]int `bson:"duplicates,omitempty" json:"duplicates,omitempty"`
	PublishedAt time.Time      `bson:"published_at" json:"published_at"`
}

// Loader loads into one database.
type Loader struct {
	DB      *mongo.Database
	Workers int // parallel insert workers (default 4)
	Batch   int // documents per InsertMany (default 1000)
	// Progress, if set, is told the rows loaded so far (for heartbeats), one
	// call at a time.
	Progress func(done int64)
	// Resume is where an earlier, interrupted load of the same run stopped:
	// its marked entities are not started over.
	Resume Checkpoint
	// Mark, if set, is told each time an entity's durable prefix grows, so
	// the caller can save a Checkpoint for a later Resume.
	Mark func(entity string, m Mark)
}

// Mark is how far one entity of a run's load has got: Rows, from the top of
// the file, are in the collection for certain; Done means all of them are
// (Count is then the collection's size, Rows minus the rows whose sourcedId
// repeated an earlier one).
type Mark struct {
	Rows  int  `json:"rows"`
	Done  bool `json:"done,omitempty"`
	Count int  `json:"count,omitempty"`
}

// Checkpoint is a run's load progress by entity.
type Checkpoint map[string]Mark

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// collectionName is ENTITY__TENANT__gHEX; the tenant part is captured.
var collectionName = regexp.MustCompile(`^[A-Za-z]+__(.+)__g[0-9a-f]{12}$`)

// Generation derives a run's generation name: the same run, the same name.
func Generation(runID string) string {
	sum := sha256.Sum256([]byte(runID))
	return "g" + hex.EncodeToString(sum[:6])
}

func collection(entity, tenant, gen string) string {
	return fmt.Sprintf("%s__%s__%s", entity, unsafe.ReplaceAllString(tenant, "_"), gen)
}

// Current is a tenant's published pointer; ok is false before the first.
func (l *Loader) Current(ctx context.Context, tenant string) (p Pointer, ok bool, err error) {
	err = l.DB.Collection(PointerCollection).FindOne(ctx, bson.D{{Key: "_id", Value: tenant}}).Decode(&p)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return p, false, nil
	}
	return p, err == nil, err
}

// Mode is how an upload carries an entity (the manifest's file.* value).
type Mode string

// Modes an upload gives an entity.
const (
	Bulk   Mode = "bulk"   // the whole entity: a new collection of this generation
	Delta  Mode = "delta"  // changes applied to the published collection
	Absent Mode = "absent" // unchanged: the published collection carries over
)

// Load writes the upload as a new generation and publishes it. Bulk entities
// are loaded into new collections; delta entities are applied to the
// published ones (tobedeleted removes, active replaces or adds); absent
// entities carry over. modes nil means bulk for every file present. On any
// error before the switch nothing is published; a fresh load drops what it
// created, a resumed one (l.Resume set) keeps it for the next attempt.
func (l *Loader) Load(ctx context.Context, tenant, runID string, upload fs.FS, modes map[string]Mode) (Pointer, error) {
	gen := Generation(runID)
	prev, hadPrev, err := l.Current(ctx, tenant)
	if err != nil {
		return Pointer{}, fmt.Errorf("mongo read pointer: %w", err)
	}
	p := Pointer{Tenant: tenant, Generation: gen, RunID: runID, Collections: map[string]string{}, Counts: map[string]int{}}
	var created []string
	abort := func(err error) (Pointer, error) {
		if len(l.Resume) > 0 || l.Mark != nil {
			return p, err // kept: the next attempt resumes into them
		}
		for _, name := range created {
			l.DB.Collection(name).Drop(context.WithoutCancel(ctx))
		}
		return p, err
	}
	var loaded int64
	for _, e := range entities(modes, prev.Collections) {
		mode := modes[e]
		if modes == nil {
			mode = Bulk
			if _, err := fs.Stat(upload, e+".csv"); err != nil {
				mode = Absent
			}
		}
		mark, resumed := l.Resume[e]
		switch mode {
		case Bulk:
			name := collection(e, tenant, gen)
			c := l.DB.Collection(name)
			created = append(created, name)
			if mark.Done {
				p.Collections[e], p.Counts[e] = name, mark.Count
				p.duplicates(e, mark.Rows-mark.Count)
				loaded += int64(mark.Rows)
				continue
			}
			if !resumed {
				// A re-run starts its generation over: idempotent.
				if err := c.Drop(ctx); err != nil {
					return abort(fmt.Errorf("mongo drop %s: %w", name, err))
				}
			}
			var dups int
			n, err := l.loadFile(ctx, upload, e, func(r io.Reader) (int, error) {
				n, d, err := l.insertFile(ctx, c, e, tenant, r, mark.Rows, &loaded)
				dups = d
				return n, err
			})
			if err != nil {
				return abort(fmt.Errorf("load %s.csv: %w", e, err))
			}
			count := n - dups
			p.Collections[e], p.Counts[e] = name, count
			p.duplicates(e, n-count)
			l.mark(e, Mark{Rows: n, Done: true, Count: count})
		case Delta:
			name := prev.Collections[e]
			if !hadPrev || name == "" {
				name = collection(e, tenant, gen)
				created = append(created, name)
			}
			c := l.DB.Collection(name)
			if _, err := l.loadFile(ctx, upload, e, func(r io.Reader) (int, error) { return l.applyDelta(ctx, c, tenant, r) }); err != nil {
				return abort(fmt.Errorf("apply %s.csv: %w", e, err))
			}
			n, err := c.CountDocuments(ctx, bson.D{})
			if err != nil {
				return abort(err)
			}
			// A delta re-applied is the same delta: no mark until done.
			p.Collections[e], p.Counts[e] = name, int(n)
		default:
			if hadPrev && prev.Collections[e] != "" {
				p.Collections[e], p.Counts[e] = prev.Collections[e], prev.Counts[e]
			}
		}
	}
	p.PublishedAt = time.Now().UTC()
	// The switch: one document, replaced as a whole.
	if _, err := l.DB.Collection(PointerCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: tenant}}, p,
		options.Replace().SetUpsert(true)); err != nil {
		return abort(fmt.Errorf("mongo publish: %w", err))
	}
	// Drop every collection of the tenant the new pointer does not use: the
	// previous generation, and any left by a run killed before its publish.
	keep := map[string]bool{}
	for _, n := range p.Collections {
		keep[n] = true
	}
	if names, err := l.Collections(ctx, tenant); err == nil {
		for _, n := range names {
			if !keep[n] {
				l.DB.Collection(n).Drop(ctx)
			}
		}
	}
	return p, nil
}

func (p *Pointer) duplicates(entity string, n int) {
	if n <= 0 {
		return
	}
	if p.Duplicates == nil {
		p.Duplicates = map[string]int{}
	}
	p.Duplicates[entity] = n
}

// entities are the files a load goes through: every known entity in
// loading order, then any other the modes or the published pointer name.
func entities(modes map[string]Mode, prev map[string]string) []string {
	out := append([]string(nil), Entities...)
	var extra []string
	for e := range modes {
		if !slices.Contains(out, e) && !slices.Contains(extra, e) {
			extra = append(extra, e)
		}
	}
	for e := range prev {
		if !slices.Contains(out, e) && !slices.Contains(extra, e) {
			extra = append(extra, e)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

func (l *Loader) loadFile(ctx context.Context, upload fs.FS, entity string, f func(io.Reader) (int, error)) (int, error) {
	file, err := upload.Open(entity + ".csv")
	if err != nil {
		return 0, err
	}
	defer file.Close()
	return f(file)
}

// deltaBatch stays under what the MongoDB-wire test server handles in one
// bulk write (measured: about 50 to 100 updates in one bulk write hang it).
const deltaBatch = 40

// applyDelta applies a delta file: tobedeleted rows are removed, others
// replace (or add) their document; it returns the rows applied.
func (l *Loader) applyDelta(ctx context.Context, c *mongo.Collection, tenant string, r io.Reader) (int, error) {
	cr, header, err := openCSV(r)
	if err != nil {
		return 0, err
	}
	status := -1
	for i, h := range header {
		if h == "status" {
			status = i
		}
	}
	var ops []mongo.WriteModel
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		_, err := c.BulkWrite(ctx, ops, options.BulkWrite().SetOrdered(true))
		ops = ops[:0]
		return err
	}
	n := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		id := bson.D{{Key: "_id", Value: rec[0]}}
		if status >= 0 && status < len(rec) && rec[status] == "tobedeleted" {
			ops = append(ops, mongo.NewDeleteOneModel().SetFilter(id))
		} else {
			ops = append(ops, mongo.NewReplaceOneModel().SetFilter(id).SetReplacement(document(header, rec, tenant)).SetUpsert(true))
		}
		n++
		if len(ops) == deltaBatch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// openCSV reads a roster file's header (without a BOM).
func openCSV(r io.Reader) (*csv.Reader, []string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, nil, err
	}
	header = append([]string(nil), header...)
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	return cr, header, nil
}

// document is one CSV row as a document keyed by sourcedId.
func document(header, rec []string, tenant string) bson.D {
	d := make(bson.D, 0, len(rec)+1)
	d = append(d, bson.E{Key: "_id", Value: rec[0]}, bson.E{Key: "tenant", Value: tenant})
	for i := 1; i < len(rec) && i < len(header); i++ {
		if rec[i] != "" {
			d = append(d, bson.E{Key: header[i], Value: rec[i]})
		}
	}
	return d
}

func (l *Loader) mark(entity string, m Mark) {
	if l.Mark != nil {
		l.Mark(entity, m)
	}
}

// onlyDuplicates says err is nothing but duplicate-key errors: documents an
// interrupted attempt had already inserted.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if err == nil || !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

// insertFile streams a CSV into c with unordered InsertMany batches from
// parallel workers; documents are keyed by sourcedId and carry the tenant.
// The first skip rows are already in c (a resumed load); rows after them may
// be too, and their duplicate-key errors are expected. A row whose sourcedId
// an earlier row of the file had is not sent; it returns the rows read and
// how many of them those were (the ids are held as 64-bit hashes while the
// file loads). It marks the rows loaded for certain: the longest run of
// finished batches from the top.
func (l *Loader) insertFile(ctx context.Context, c *mongo.Collection, entity, tenant string, r io.Reader, skip int, loaded *int64) (rows, dups int, err error) {
	workers, batch := max(l.Workers, 1), l.Batch
	if l.Workers == 0 {
		workers = 4
	}
	if batch <= 0 {
		batch = 1000
	}
	cr, header, err := openCSV(r)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		seq, end int // batch number; rows from the top once it is in
		docs     []any
	}
	jobs := make(chan job, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	finished := map[int]int{} // batch seq -> its end row, until contiguous
	next, durable := 0, skip
	*loaded += int64(skip)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				_, err := c.InsertMany(ctx, j.docs, options.InsertMany().SetOrdered(false))
				if onlyDuplicates(err) {
					err = nil // documents an interrupted attempt had inserted
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					continue
				}
				*loaded += int64(len(j.docs))
				done := *loaded
				finished[j.seq] = j.end
				advanced := false
				for end, ok := finished[next]; ok; end, ok = finished[next] {
					delete(finished, next)
					next++
					durable, advanced = end, true
				}
				if advanced {
					l.mark(entity, Mark{Rows: durable})
				}
				if l.Progress != nil {
					l.Progress(done) // under the lock: in order, never backwards
				}
				mu.Unlock()
			}
		}()
	}
	n, seq := 0, 0
	docs := make([]any, 0, batch)
	seed := maphash.MakeSeed()
	seen := map[uint64]struct{}{} // the file's sourcedIds, as 64-bit hashes
	send := func() {
		select {
		case jobs <- job{seq: seq, end: n, docs: docs}:
			seq++
		case <-ctx.Done():
		}
		docs = make([]any, 0, batch)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			cancel()
			close(jobs)
			wg.Wait()
			return n, dups, err
		}
		n++
		// A sourcedId seen earlier in the file: its first row is kept (in
		// every attempt alike) and this one counted, not sent.
		if _, again := seen[maphash.String(seed, rec[0])]; again {
			dups++
			continue
		}
		seen[maphash.String(seed, rec[0])] = struct{}{}
		if n <= skip {
			continue
		}
		docs = append(docs, document(header, rec, tenant))
		if len(docs) == batch {
			send()
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(docs) > 0 && ctx.Err() == nil {
		send()
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return n, dups, firstErr
	}
	return n, dups, ctx.Err()
}

// Counts is the published roster's record count per entity (for the
// mass-deletion guard), empty before the first publish.
func (l *Loader) Counts(ctx context.Context, tenant string) (map[string]int, error) {
	p, ok, err := l.Current(ctx, tenant)
	if err != nil || !ok {
		return map[string]int{}, err
	}
	return p.Counts, nil
}

// Collections lists a tenant's roster collections in the database (tests, ops).
func (l *Loader) Collections(ctx context.Context, tenant string) ([]string, error) {
	names, err := l.DB.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var out []string
	want := unsafe.ReplaceAllString(tenant, "_")
	for _, n := range names {
		if m := collectionName.FindStringSubmatch(n); m != nil && m[1] == want {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
