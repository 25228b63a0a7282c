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

func TestGenerationsPublishAtomically(t *testing.T) {
	db := connect(t)
	ctx := context.Background()
	dir := t.TempDir()
	counts, err := oneroster.Generate(dir, oneroster.GenOptions{Students: 400, Seed: 1})
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
	n, err := db.Collection(p1.Collections["enrollments"]).CountDocuments(ctx, bson.D{})
	if err != nil || int(n) != counts["enrollments"] || p1.Counts["users"] != counts["users"] {
		t.Fatalf("loaded %d enrollments (%v), want %d; counts %v", n, err, counts["enrollments"], p1.Counts)
	}
	var u bson.M
	if err := db.Collection(p1.Collections["users"]).FindOne(ctx, bson.D{{Key: "_id", Value: "student-7"}}).Decode(&u); err != nil ||
		u["tenant"] != "dade" || u["role"] != "student" {
		t.Fatalf("student-7 = %v, %v", u, err)
	}
	// The same run again is idempotent: same generation, same counts.
	again, err := l.Load(ctx, "dade", "dade/roster/2026-09-01#1", os.DirFS(dir), nil)
	if err != nil || again.Generation != p1.Generation {
		t.Fatalf("re-run: %v, %v", again.Generation, err)
	}
	if n2, _ := db.Collection(p1.Collections["enrollments"]).CountDocuments(ctx, bson.D{}); n2 != n {
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
	if cur, _, _ := l.Current(ctx, "dade"); cur.Generation != p2.Generation || len(names) != len(Entities) {
		t.Fatalf("pointer %s, collections %v", cur.Generation, names)
	}
}

func TestDeltaAppliesToThePublishedRoster(t *testing.T) {
	db := connect(t)
	ctx := context.Background()
	dir := t.TempDir()
	counts, _ := oneroster.Generate(dir, oneroster.GenOptions{Students: 100, Seed: 4})
	l := &Loader{DB: db}
	p1, err := l.Load(ctx, "dade", "bulk#1", os.DirFS(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	delta := t.TempDir()
	os.WriteFile(delta+"/users.csv", []byte("sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"+
		"student-1,tobedeleted,2026-09-02T00:00:00.000Z,true,school-0,student,s1,,A,B,,,,,,,KG,\n"+
		"student-2,active,2026-09-02T00:00:00.000Z,true,school-0,student,s2,,Renamed,B,,,,,,,KG,\n"+
		"student-new,active,2026-09-02T00:00:00.000Z,true,school-0,student,sn,,New,C,,,,,,,01,\n"), 0o644)
	modes := map[string]Mode{"users": Delta}
	for _, e := range Entities {
		if e != "users" {
			modes[e] = Absent
		}
	}
	p2, err := l.Load(ctx, "dade", "delta#1", os.DirFS(delta), modes)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Counts["users"] != counts["users"] || p2.Collections["enrollments"] != p1.Collections["enrollments"] ||
		p2.Counts["enrollments"] != counts["enrollments"] {
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
	// Nothing the new pointer uses was dropped.
	names, _ := l.Collections(ctx, "dade")
	if len(names) != len(Entities) {
		t.Fatalf("collections after the delta: %v", names)
	}
}

// TestResumeAfterInterruption: a load stopped midway (as by kill -9) and
// resumed from its marks ends with exactly the source's documents: none
// lost, none twice, the first collections not loaded again.
func TestResumeAfterInterruption(t *testing.T) {
	db := connect(t)
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := oneroster.Generate(dir, oneroster.GenOptions{Students: 1500, Seed: 3}); err != nil {
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
	_, err := users.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: "student-1"}}, bson.D{{Key: "_id", Value: "zz-new"}}},
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
	for _, e := range []string{"orgs", "users", "enrollments", "classes"} {
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
