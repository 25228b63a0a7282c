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
	"io"
	"io/fs"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Entities are the roster files loaded, each into its own collection.
var Entities = []string{"orgs", "academicSessions", "courses", "classes", "users", "enrollments", "demographics"}

// PointerCollection holds one document per tenant: the published generation.
const PointerCollection = "roster_pointers"

// Pointer is a tenant's published roster.
type Pointer struct {
	Tenant      string            `bson:"_id" json:"tenant"`
	Generation  string            `bson:"generation" json:"generation"`
	RunID       string            `bson:"run_id" json:"run_id"`
	Collections map[string]string `bson:"collections" json:"collections"`
	Counts      map[string]int    `bson:"counts" json:"counts"`
	PublishedAt time.Time         `bson:"published_at" json:"published_at"`
}

// Loader loads into one database.
type Loader struct {
	DB      *mongo.Database
	Workers int // parallel insert workers (default 4)
	Batch   int // documents per InsertMany (default 1000)
	// Progress, if set, is told the rows loaded so far (for heartbeats).
	Progress func(done int64)
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

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

// Load writes every entity of the upload into a new generation and publishes
// it. On any error nothing is published and the partial generation is dropped.
func (l *Loader) Load(ctx context.Context, tenant, runID string, upload fs.FS) (Pointer, error) {
	gen := Generation(runID)
	p := Pointer{Tenant: tenant, Generation: gen, RunID: runID, Collections: map[string]string{}, Counts: map[string]int{}}
	var loaded int64
	for _, e := range Entities {
		name := collection(e, tenant, gen)
		p.Collections[e] = name
		c := l.DB.Collection(name)
		// A re-run starts its generation over: idempotent.
		if err := c.Drop(ctx); err != nil {
			return p, fmt.Errorf("mongo drop %s: %w", name, err)
		}
		f, err := upload.Open(e + ".csv")
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return p, err
		}
		n, err := l.insertFile(ctx, c, tenant, f, &loaded)
		f.Close()
		if err != nil {
			l.dropGeneration(context.WithoutCancel(ctx), p)
			return p, fmt.Errorf("load %s.csv: %w", e, err)
		}
		p.Counts[e] = n
	}
	prev, hadPrev, err := l.Current(ctx, tenant)
	if err != nil {
		return p, fmt.Errorf("mongo read pointer: %w", err)
	}
	p.PublishedAt = time.Now().UTC()
	// The switch: one document, replaced as a whole.
	if _, err := l.DB.Collection(PointerCollection).ReplaceOne(ctx, bson.D{{Key: "_id", Value: tenant}}, p,
		options.Replace().SetUpsert(true)); err != nil {
		l.dropGeneration(context.WithoutCancel(ctx), p)
		return p, fmt.Errorf("mongo publish: %w", err)
	}
	if hadPrev && prev.Generation != gen {
		l.dropGeneration(ctx, prev)
	}
	return p, nil
}

func (l *Loader) dropGeneration(ctx context.Context, p Pointer) {
	for _, name := range p.Collections {
		l.DB.Collection(name).Drop(ctx)
	}
}

// insertFile streams a CSV into c with unordered InsertMany batches from
// parallel workers; documents are keyed by sourcedId and carry the tenant.
func (l *Loader) insertFile(ctx context.Context, c *mongo.Collection, tenant string, r io.Reader, loaded *int64) (int, error) {
	workers, batch := max(l.Workers, 1), l.Batch
	if l.Workers == 0 {
		workers = 4
	}
	if batch <= 0 {
		batch = 1000
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return 0, err
	}
	header = append([]string(nil), header...)
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan []any, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for docs := range jobs {
				_, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				*loaded += int64(len(docs))
				done := *loaded
				mu.Unlock()
				if l.Progress != nil {
					l.Progress(done)
				}
			}
		}()
	}
	n := 0
	docs := make([]any, 0, batch)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			cancel()
			close(jobs)
			wg.Wait()
			return n, err
		}
		d := make(bson.D, 0, len(rec)+1)
		d = append(d, bson.E{Key: "_id", Value: rec[0]}, bson.E{Key: "tenant", Value: tenant})
		for i := 1; i < len(rec) && i < len(header); i++ {
			if rec[i] != "" {
				d = append(d, bson.E{Key: header[i], Value: rec[i]})
			}
		}
		docs = append(docs, d)
		n++
		if len(docs) == batch {
			select {
			case jobs <- docs:
			case <-ctx.Done():
			}
			docs = make([]any, 0, batch)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(docs) > 0 && ctx.Err() == nil {
		jobs <- docs
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return n, firstErr
	}
	return n, ctx.Err()
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
	marker := "__" + unsafe.ReplaceAllString(tenant, "_") + "__"
	for _, n := range names {
		if strings.Contains(n, marker) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
