package load

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/testsrv"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

func connect(t *testing.T) *mongo.Database {
	uri := testsrv.FerretDB(t)
	cl, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(30 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Disconnect(context.Background()) })
	return cl.Database("etlhub")
}

// versions runs a test for each OneRoster version the importer loads.
func versions(t *testing.T, f func(t *testing.T, version string)) {
	for _, v := range []string{"1.1", "1.2"} {
		t.Run("v"+v, func(t *testing.T) { f(t, v) })
	}
}

func TestGenerationsPublishAtomically(t *testing.T) { versions(t, generationsPublishAtomically) }

func generationsPublishAtomically(t *testing.T, version string) {
	db := connect(t)
	ctx := context.Background()
	dir := t.TempDir()
	counts, err := oneroster.Generate(dir, oneroster.GenOptions{Students: 400, Seed: 1, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	l := &Loader{DB: db, Batch: 500}
	if _, ok, _ := l.Current(ctx, "dade"); ok {
		t.Fatal("a pointer before any load")
	}
	p1, err := l.Load(ctx, "dade", "dade/roster/2026-09-01#1", os.DirFS(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A collection per file, each with the file's rows.
	if len(p1.Collections) != len(counts) {
		t.Fatalf("collections %v for files %v", p1.Collections, counts)
	}
	for e, want := range counts {
		n, err := db.Collection(p1.Collections[e]).CountDocuments(ctx, bson.D{})
		if err != nil || int(n) != want || p1.Counts[e] != want {
			t.Fatalf("%s: %d documents (%v), pointer says %d, file has %d", e, n, err, p1.Counts[e], want)
		}
	}
	if len(p1.Duplicates) != 0 {
		t.Fatalf("duplicates in a generated roster: %v", p1.Duplicates)
	}
	var u bson.M
	if err := db.Collection(p1.Collections["users"]).FindOne(ctx, bson.D{{Key: "_id", Value: "student-7"}}).Decode(&u); err != nil ||
		u["tenant"] != "dade" || u["givenName"] == nil {
		t.Fatalf("student-7 = %v, %v", u, err)
	}
	if version == "1.2" {
		// The entities 1.2 added, each as its rows say.
		for _, c := range []struct{ entity, id, field, want string }{
			{"roles", "role-s7", "userSourcedId", "student-7"},
			{"userProfiles", "profile-t0", "userSourcedId", "teacher-0"},
			{"resources", "resource-0", "importance", "primary"},
			{"results", "result-7", "studentSourcedId", "student-7"},
			{"lineItems", "line-item-0", "categorySourcedId", "category-0"},
			{"scoreScales", "score-scale-0", "scoreScaleValue", "{A:90},{B:80},{C:70},{D:60},{F:0}"},
		} {
			var d bson.M
			if err := db.Collection(p1.Collections[c.entity]).FindOne(ctx, bson.D{{Key: "_id", Value: c.id}}).Decode(&d); err != nil ||
				d[c.field] != c.want || d["tenant"] != "dade" {
				t.Fatalf("%s %s = %v (%v), want %s %q", c.entity, c.id, d, err, c.field, c.want)
			}
		}
	}
	// The same run again is idempotent: same generation, same counts.
	again, err := l.Load(ctx, "dade", "dade/roster/2026-09-01#1", os.DirFS(dir), nil)
	if err != nil || again.Generation != p1.Generation {
		t.Fatalf("re-run: %v, %v", again.Generation, err)
	}
	if n2, _ := db.Collection(p1.Collections["enrollments"]).CountDocuments(ctx, bson.D{}); int(n2) != counts["enrollments"] {
		t.Fatalf("re-run doubled rows: %d", n2)
	}
	// A failing load publishes nothing and leaves the current roster.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Load(cctx, "dade", "dade/roster/2026-09-02#1", os.DirFS(dir), nil); err == nil {
		t.Fatal("a cancelled load succeeded")
	}
	if cur, _, _ := l.Current(ctx, "dade"); cur.Generation != p1.Generation {
		t.Fatalf("a failed load moved the pointer to %s", cur.Generation)
	}
	// A run killed before its publish left a partial generation behind.
	orphan := collection("users", "dade", Generation("killed#1"))
	db.Collection(orphan).InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}})
	// The next night's run publishes and drops the old generation and the orphan.
	p2, err := l.Load(ctx, "dade", "dade/roster/2026-09-02#2", os.DirFS(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := l.Collections(ctx, "dade")
	for _, c := range names {
		if c == p1.Collections["users"] {
			t.Fatalf("old generation %s not dropped: %v", p1.Generation, names)
		}
	}
	for _, c := range names {
		if c == orphan {
			t.Fatalf("the killed run's collection %s was not dropped", orphan)
		}
	}
	if cur, _, _ := l.Current(ctx, "dade"); cur.Generation != p2.Generation || len(names) != len(counts) {
		t.Fatalf("pointer %s, collections %v", cur.Generation, names)
	}
}

func TestDeltaAppliesToThePublishedRoster(t *testing.T) {
	versions(t, deltaAppliesToThePublishedRoster)
}

func deltaAppliesToThePublishedRoster(t *testing.T, version string) {
	db := connect(t)
	ctx := context.Background()
	dir := t.TempDir()
	counts, _ := oneroster.Generate(dir, oneroster.GenOptions{Students: 100, Seed: 4, Version: version})
	l := &Loader{DB: db}
	p1, err := l.Load(ctx, "dade", "bulk#1", os.DirFS(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	delta := t.TempDir()
	dcounts, err := oneroster.GenerateDelta(delta, oneroster.GenOptions{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]Mode{}
	for e := range counts {
		modes[e] = Absent
	}
	for e := range dcounts {
		modes[e] = Delta
	}
	p2, err := l.Load(ctx, "dade", "delta#1", os.DirFS(delta), modes)
	if err != nil {
		t.Fatal(err)
	}
	// One user and its role out, one in; one enrollment more; the rest as it was.
	if p2.Counts["users"] != counts["users"] || p2.Collections["enrollments"] != p1.Collections["enrollments"] ||
		p2.Counts["enrollments"] != counts["enrollments"]+1 || p2.Collections["orgs"] != p1.Collections["orgs"] {
		t.Fatalf("after the delta: %+v (before %+v)", p2, p1)
	}
	users := db.Collection(p2.Collections["users"])
	if n, _ := users.CountDocuments(ctx, bson.D{{Key: "_id", Value: "student-1"}}); n != 0 {
		t.Fatal("tobedeleted did not remove student-1")
	}
	var u bson.M
	if err := users.FindOne(ctx, bson.D{{Key: "_id", Value: "student-2"}}).Decode(&u); err != nil || u["givenName"] != "Renamed" {
		t.Fatalf("student-2 = %v %v", u, err)
	}
	if n, _ := users.CountDocuments(ctx, bson.D{{Key: "_id", Value: "student-new"}}); n != 1 {
		t.Fatal("the new user was not added")
	}
	if version == "1.2" {
		roles := db.Collection(p2.Collections["roles"])
		if p2.Counts["roles"] != counts["roles"] || p2.Collections["roles"] != p1.Collections["roles"] {
			t.Fatalf("roles after the delta: %d in %s, before %d in %s", p2.Counts["roles"], p2.Collections["roles"], counts["roles"], p1.Collections["roles"])
		}
		var r bson.M
		if n, _ := roles.CountDocuments(ctx, bson.D{{Key: "_id", Value: "role-s1"}}); n != 0 {
			t.Fatal("tobedeleted did not remove role-s1")
		}
		if err := roles.FindOne(ctx, bson.D{{Key: "_id", Value: "role-new"}}).Decode(&r); err != nil || r["userSourcedId"] != "student-new" {
			t.Fatalf("role-new = %v %v", r, err)
		}
		if p2.Collections["results"] != p1.Collections["results"] || p2.Counts["results"] != counts["results"] {
			t.Fatal("the absent results did not carry over")
		}
	}
	// Nothing the new pointer uses was dropped.
	names, _ := l.Collections(ctx, "dade")
	if len(names) != len(counts) {
		t.Fatalf("collections after the delta: %v", names)
	}
}

// TestResumeAfterInterruption: a load stopped midway (as by kill -9) and
// resumed from its marks ends with exactly the source's documents: none
// lost, none twice, the first collections not loaded again.
func TestResumeAfterInterruption(t *testing.T) { versions(t, resumeAfterInterruption) }

func resumeAfterInterruption(t *testing.T, version string) {
	db := connect(t)
	ctx := context.Background()
	dir := t.TempDir()
	counts, err := oneroster.Generate(dir, oneroster.GenOptions{Students: 1500, Seed: 3, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	const run = "dade/roster/2026-09-01#1"
	saved := Checkpoint{}
	var mu sync.Mutex
	stopCtx, stop := context.WithCancel(ctx)
	l := &Loader{DB: db, Batch: 200, Mark: func(e string, m Mark) {
		mu.Lock()
		defer mu.Unlock()
		saved[e] = m
		if e == "users" && m.Rows >= 1000 {
			stop() // the worker dies in the middle of users
		}
	}}
	if _, err := l.Load(stopCtx, "dade", run, os.DirFS(dir), nil); err == nil {
		t.Fatal("the interrupted load published")
	}
	if !saved["orgs"].Done || saved["users"].Done || saved["users"].Rows < 1000 {
		t.Fatalf("marks after the interruption: %+v", saved)
	}
	// A batch or two past the mark may be in already: the resume must
	// tolerate them (duplicate keys) and add only what is missing. Make
	// sure of one: the server's answer to a batch that is partly in.
	users := db.Collection(collection("users", "dade", Generation(run)))
	_, err = users.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: "student-1"}}, bson.D{{Key: "_id", Value: "zz-new"}}},
		options.InsertMany().SetOrdered(false))
	if !onlyDuplicates(err) {
		t.Fatalf("a batch with one duplicate: %v", err)
	}
	// (Counting would race: the interrupted attempt's last batches may
	// still be landing on the server.)
	if err := users.FindOne(ctx, bson.D{{Key: "_id", Value: "zz-new"}}).Err(); err != nil {
		t.Fatalf("the new document of a partly duplicate batch was not inserted: %v", err)
	}
	users.DeleteOne(ctx, bson.D{{Key: "_id", Value: "zz-new"}})
	var inserts int64
	r := &Loader{DB: db, Batch: 200, Resume: saved, Progress: func(done int64) { inserts = done }}
	p, err := r.Load(ctx, "dade", run, os.DirFS(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	for e := range counts {
		want, err := FileDigest(os.DirFS(dir), e, "dade")
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.CollectionDigest(ctx, p.Collections[e])
		if err != nil || got.Count != want.Count || got.Sum != want.Sum || p.Counts[e] != want.Count {
			t.Fatalf("%s: loaded %+v (%v), pointer count %d, source %+v", e, got, err, p.Counts[e], want)
		}
	}
	total := 0
	for _, n := range p.Counts {
		total += n
	}
	if inserts != int64(total) {
		t.Fatalf("progress after resume reports %d rows of %d", inserts, total)
	}
}

// TestRepeatedSourcedIDsAreCounted: a bulk file whose sourcedId repeats (an
// upload the policy let through with a few errors) loads the first row for
// it, and the pointer says how many rows were not loaded, and of which file,
// rather than dropping them silently.
func TestRepeatedSourcedIDsAreCounted(t *testing.T) { versions(t, repeatedSourcedIDsAreCounted) }

func repeatedSourcedIDsAreCounted(t *testing.T, version string) {
	db := connect(t)
	ctx := context.Background()
	dir := t.TempDir()
	counts, err := oneroster.Generate(dir, oneroster.GenOptions{Students: 200, Seed: 6, Version: version, InjectErrors: true})
	if err != nil {
		t.Fatal(err)
	}
	l := &Loader{DB: db, Batch: 100}
	p, err := l.Load(ctx, "dade", "dups#1", os.DirFS(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := db.Collection(p.Collections["enrollments"]).CountDocuments(ctx, bson.D{})
	if p.Duplicates["enrollments"] != 1 || len(p.Duplicates) != 1 || int(n) != counts["enrollments"]-1 || p.Counts["enrollments"] != int(n) {
		t.Fatalf("duplicates %v, %d enrollments loaded, pointer count %d, file rows %d", p.Duplicates, n, p.Counts["enrollments"], counts["enrollments"])
	}
	// The first row of a repeated sourcedId is the one kept.
	var first bson.M
	if err := db.Collection(p.Collections["enrollments"]).FindOne(ctx, bson.D{{Key: "_id", Value: "enr-0"}}).Decode(&first); err != nil ||
		first["beginDate"] != "2026-08-10" {
		t.Fatalf("enr-0 = %v (%v), want its first row (beginDate 2026-08-10)", first, err)
	}
}
