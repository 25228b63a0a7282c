package importer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/model"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestKilledWorkerResumes: the importer process loading a roster is killed
// with kill -9 a third of the way in; the other process takes the run over
// when the lock expires and resumes the load from the checkpoint (the
// entities marked done are not loaded again); the published roster equals
// the source file by file. For each OneRoster version.
func TestKilledWorkerResumes(t *testing.T) { versions(t, killedWorkerResumes) }

func killedWorkerResumes(t *testing.T, version string) {
	students := 5000 // about 41,000 rows: a couple of seconds of loading on a quiet machine
	if raceEnabled {
		students = 2000
	}
	c, sshd, _, fdb := startChaos(t, "dade")
	src := filepath.Join(c.dir, "roster")
	counts, err := oneroster.Generate(src, oneroster.GenOptions{Students: students, Seed: 12, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	copyRoster(t, src, filepath.Join(sshd.Root, "dade"))
	r := c.waitFor("dade", "a third of the roster loaded", 3*time.Minute, func(r *record) bool {
		return r.Obs.State.Terminal() || (r.Obs.Stage == model.StageLoading && r.Obs.RowsDone >= int64(counts.Total()/3))
	})
	if r.Obs.State.Terminal() {
		t.Fatalf("the import ended (%s) before the kill: make the roster larger", r.Obs.State)
	}
	marked := 0
	for _, m := range r.Checkpoint.Load {
		marked += m.Rows
	}
	if marked == 0 {
		t.Fatalf("a third loaded and nothing marked in the checkpoint: %+v", r.Checkpoint)
	}
	t.Logf("killing at %d of %d rows", r.Obs.RowsDone, counts.Total())
	killed := c.killOwner(r)
	end := c.waitFor("dade", "the import to finish after the kill", 5*time.Minute, func(r *record) bool { return r.Obs.State.Terminal() })
	if end.Obs.State != model.StateSucceeded || end.Obs.Attempt < 2 || end.Worker == r.Worker {
		t.Fatalf("after killing %s (%s): %s, attempt %d, worker %s: %s", killed, r.Worker, end.Obs.State, end.Obs.Attempt, end.Worker, end.Obs.Error)
	}
	if end.Obs.RowsDone != int64(counts.Total()) {
		t.Fatalf("rows done %d of %d", end.Obs.RowsDone, counts.Total())
	}
	t.Logf("finished: attempt %d, %v after the upload", end.Obs.Attempt, end.Obs.FinishedAt.Sub(*end.UploadCompletedAt))
	verifyPublished(t, fdb.URI, "dade", src, counts, end.Obs.RunID)
	t.Log("verified")
	// The successor said it resumed, and from rows already loaded.
	c.stopAll()
	resumed := false
	for _, p := range c.logs {
		data, _ := os.ReadFile(p)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, `"msg":"run resumed"`) && strings.Contains(line, "rows loaded") {
				resumed = true
			}
		}
	}
	if !resumed {
		t.Fatal("no worker logged resuming the run from its loaded rows")
	}
}

// TestDeltaUpload: after a bulk import, the district uploads a delta (a
// user removed, one renamed, one added with an enrollment, and in 1.2 their
// roles); the importer validates it as a delta, applies it to the published
// collections, carries the absent files over, and publishes. For each
// OneRoster version.
func TestDeltaUpload(t *testing.T) { versions(t, deltaUpload) }

func deltaUpload(t *testing.T, version string) {
	e := startImporter(t)
	ctx := context.Background()
	bulk, delta := t.TempDir(), t.TempDir()
	counts, err := oneroster.Generate(bulk, oneroster.GenOptions{Students: 200, Seed: 8, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	dcounts, err := oneroster.GenerateDelta(delta, oneroster.GenOptions{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	up, err := inbox.Dial(ctx, e.sftp)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	putRoster(t, up, bulk)
	first := e.finishedRun(t, "")
	if first.State != model.StateSucceeded {
		t.Fatalf("the bulk import: %+v", first)
	}
	mc, _ := mongo.Connect(options.Client().ApplyURI(e.mongoURI))
	defer mc.Disconnect(ctx)
	l := &load.Loader{DB: mc.Database("etlhub")}
	before, _, _ := l.Current(ctx, "dade")

	putRoster(t, up, delta)
	got := e.finishedRun(t, first.RunID)
	if got.State != model.StateSucceeded || got.RowsDone != int64(dcounts.Total()) {
		t.Fatalf("the delta import (%d rows): %+v", dcounts.Total(), got)
	}
	ptr, _, err := l.Current(ctx, "dade")
	if err != nil || ptr.RunID != got.RunID {
		t.Fatalf("published %+v (%v), want the delta's run %s", ptr, err, got.RunID)
	}
	for ent, n := range counts {
		want := n
		if ent == "enrollments" {
			want++ // student-new's (users and roles: one out, one in)
		}
		if ptr.Counts[ent] != want {
			t.Errorf("%s: %d after the delta, want %d", ent, ptr.Counts[ent], want)
		}
		if _, changed := dcounts[ent]; !changed && ptr.Collections[ent] != before.Collections[ent] {
			t.Errorf("%s, absent from the delta, moved from %s to %s", ent, before.Collections[ent], ptr.Collections[ent])
		}
	}
	users := l.DB.Collection(ptr.Collections["users"])
	var u bson.M
	if err := users.FindOne(ctx, bson.D{{Key: "_id", Value: "student-2"}}).Decode(&u); err != nil || u["givenName"] != "Renamed" {
		t.Fatalf("student-2 after the delta = %v (%v)", u, err)
	}
	if n, _ := users.CountDocuments(ctx, bson.D{{Key: "_id", Value: "student-1"}}); n != 0 {
		t.Fatal("student-1, tobedeleted, is still published")
	}
	if version == "1.2" {
		roles := l.DB.Collection(ptr.Collections["roles"])
		var r bson.M
		if err := roles.FindOne(ctx, bson.D{{Key: "_id", Value: "role-new"}}).Decode(&r); err != nil || r["userSourcedId"] != "student-new" {
			t.Fatalf("role-new after the delta = %v (%v)", r, err)
		}
		if n, _ := roles.CountDocuments(ctx, bson.D{{Key: "_id", Value: "role-s1"}}); n != 0 {
			t.Fatal("role-s1, tobedeleted, is still published")
		}
	}
	if names, _ := l.Collections(ctx, "dade"); len(names) != len(counts) {
		t.Fatalf("collections after the delta: %v", names)
	}
}

// putRoster uploads a roster directory over SFTP, the manifest last.
func putRoster(t *testing.T, up *inbox.Client, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, last := range []bool{false, true} {
		for _, en := range entries {
			if (en.Name() == "manifest.csv") != last {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, en.Name()))
			if err == nil {
				err = up.Put(en.Name(), bytes.NewReader(data))
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}
