package importer

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/importer/load"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
	"github.com/redis/go-redis/v9"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestMain(m *testing.M) {
	if path := os.Getenv("ETLHUB_TEST_WORKER"); path != "" {
		os.Exit(workerProcess(path))
	}
	testsrv.Main(m)
}

type env struct {
	im       *Importer
	sshd     *testsrv.SSHD
	api      string
	sftp     inbox.Config
	inbox    string
	mongoURI string
}

// startImporter runs an importer against a real sshd, redis-server and
// FerretDB, for one tenant "dade".
func startImporter(t *testing.T) *env {
	sshd := testsrv.StartSSHD(t)
	rds := testsrv.StartRedis(t)
	mongoURI := testsrv.FerretDB(t)
	inboxDir := filepath.Join(sshd.Root, "dade")
	os.MkdirAll(inboxDir, 0o755)
	cfg := &Config{Listen: "127.0.0.1:0", WorkDir: t.TempDir(), StatusToken: "status-token-123456",
		Poll: 100 * time.Millisecond, Quiet: 600 * time.Millisecond}
	cfg.Redis.Addr = rds.Addr
	cfg.Mongo.URI = config.Secret(mongoURI)
	sftpCfg := inbox.Config{Host: sshd.Host, Port: sshd.Port, User: sshd.User, PrivateKey: config.Secret(sshd.KeyPEM),
		KnownHosts: sshd.KnownHosts, Dir: inboxDir}
	cfg.Tenants = []TenantConfig{{Name: "dade", SFTP: sftpCfg}}
	im, addr := runImporter(t, cfg)
	return &env{im: im, sshd: sshd, api: "http://" + addr, sftp: sftpCfg, inbox: inboxDir, mongoURI: mongoURI}
}

// runImporter validates cfg and runs an importer until the test ends; it
// returns it and its API's address.
func runImporter(t *testing.T, cfg *Config) (*Importer, string) {
	t.Helper()
	var p config.Problems
	cfg.Validate(&p)
	if p.Len() != 0 {
		t.Fatal(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	im, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- im.Run(ctx, func(a string) { addrc <- a }) }()
	t.Cleanup(func() { cancel(); <-done })
	return im, <-addrc
}

// finishedRun polls /api/v1/runs until dade's latest run has ended and is
// not skip (an earlier run).
func (e *env) finishedRun(t *testing.T, skip string) model.Observation {
	t.Helper()
	var got model.Observation
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest("GET", e.api+"/api/v1/runs?tenant=dade", nil)
		req.Header.Set("Authorization", "Bearer status-token-123456")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var body struct {
				Runs []json.RawMessage `json:"runs"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if len(body.Runs) > 0 {
				got, err = model.Decode(body.Runs[len(body.Runs)-1], model.DecodeOptions{})
				if err != nil {
					t.Fatalf("the importer's run is not a valid observation: %v", err)
				}
				if got.State.Terminal() && got.RunID != skip {
					return got
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished run; last %+v", got)
		}
		time.Sleep(100 * time.Millisecond) // another component's progress: polled, as the hub does
	}
}

// TestUploadToPublish: a district uploads its roster over SFTP in pieces; the
// importer waits until it is complete, validates, loads, publishes, reports,
// archives, and shows the run with its times in /api/v1/runs.
// It runs for each OneRoster version.
func TestUploadToPublish(t *testing.T) { versions(t, uploadToPublish) }

// versions runs a test for each OneRoster version the importer takes.
func versions(t *testing.T, f func(t *testing.T, version string)) {
	for _, v := range []string{"1.1", "1.2"} {
		t.Run("v"+v, func(t *testing.T) { f(t, v) })
	}
}

func uploadToPublish(t *testing.T, version string) {
	e := startImporter(t)
	ctx := context.Background()
	sftpCfg, inboxDir, mongoURI := e.sftp, e.inbox, e.mongoURI
	// The district's upload, written over SFTP: a temporary name first, one
	// file in two pieces, the manifest last.
	src := t.TempDir()
	counts, _ := oneroster.Generate(src, oneroster.GenOptions{Students: 300, Seed: 5, Version: version})
	up, err := inbox.Dial(ctx, sftpCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	firstUpload := time.Now().UTC()
	users, _ := os.ReadFile(filepath.Join(src, "users.csv"))
	if err := up.Put("users.csv", strings.NewReader(string(users[:len(users)/2]))); err != nil {
		t.Fatal(err)
	}
	for f := range counts {
		if f != "users" {
			data, _ := os.ReadFile(filepath.Join(src, f+".csv"))
			up.Put(f+".csv", strings.NewReader(string(data)))
		}
	}
	up.Put("users.csv", strings.NewReader(string(users))) // the rest of the file
	manifest, _ := os.ReadFile(filepath.Join(src, "manifest.csv"))
	up.Put("manifest.csv", strings.NewReader(string(manifest)))
	uploaded := time.Now().UTC()

	got := e.finishedRun(t, "")
	if got.State != model.StateSucceeded || got.Quality == nil || got.Quality.Errors != 0 || got.RunID == "" {
		t.Fatalf("run = %+v", got)
	}
	// SFTP mtimes have a resolution of a second.
	if got.FilesArrivedAt == nil || got.FilesArrivedAt.Before(firstUpload.Truncate(time.Second)) || got.FilesArrivedAt.After(uploaded) {
		t.Fatalf("files arrived at %v; the upload began at %v", got.FilesArrivedAt, firstUpload)
	}
	if got.RowsDone != int64(counts.Total()) || got.FinishedAt == nil {
		t.Fatalf("rows %d of %d", got.RowsDone, counts.Total())
	}
	// Published in MongoDB, reported and archived on the server.
	mc, _ := mongo.Connect(options.Client().ApplyURI(mongoURI))
	defer mc.Disconnect(ctx)
	l := &load.Loader{DB: mc.Database("etlhub")}
	ptr, ok, err := l.Current(ctx, "dade")
	if err != nil || !ok || ptr.RunID != got.RunID {
		t.Fatalf("pointer = %+v %v %v", ptr, ok, err)
	}
	checkPublished(t, l, ptr, counts, version)
	reports, _ := filepath.Glob(filepath.Join(inboxDir, "reports", "*.csv"))
	archived, _ := filepath.Glob(filepath.Join(inboxDir, "archive", "*", "*.csv"))
	left, _ := filepath.Glob(filepath.Join(inboxDir, "*.csv"))
	if len(reports) != 1 || len(archived) != len(counts)+1 || len(left) != 0 {
		t.Fatalf("reports %v, archived %v, left in the inbox %v", reports, archived, left)
	}
	// The report is in the status API as JSON too.
	req, _ := http.NewRequest("GET", e.api+"/api/v1/report?run_id="+url.QueryEscape(got.RunID), nil)
	req.Header.Set("Authorization", "Bearer status-token-123456")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("report: %v %v", resp.StatusCode, err)
	}
	var rep struct {
		Report   oneroster.Report   `json:"report"`
		Decision oneroster.Decision `json:"decision"`
	}
	json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if !rep.Decision.Load || rep.Report.Version != version || len(rep.Report.Files) != len(counts) ||
		rep.Report.Files["users"] == nil || rep.Report.Files["users"].Rows != counts["users"] {
		t.Fatalf("report = %+v", rep)
	}
	// Without the token the run list is refused.
	if resp, err := http.Get(e.api + "/api/v1/runs"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("no token: %v %v", resp.StatusCode, err)
	}
}

// checkPublished asserts that the published roster has a collection per
// file of the upload, each with the file's rows, and (1.2) that a document
// of each entity 1.2 added reads as its row.
func checkPublished(t *testing.T, l *load.Loader, ptr load.Pointer, counts oneroster.GenCounts, version string) {
	t.Helper()
	ctx := context.Background()
	if len(ptr.Collections) != len(counts) {
		t.Fatalf("published collections %v for the files %v", ptr.Collections, counts)
	}
	for e, want := range counts {
		n, err := l.DB.Collection(ptr.Collections[e]).CountDocuments(ctx, bson.D{})
		if err != nil || int(n) != want || ptr.Counts[e] != want {
			t.Fatalf("%s: %d documents in %s (%v), the pointer says %d, the file has %d", e, n, ptr.Collections[e], err, ptr.Counts[e], want)
		}
	}
	if version != "1.2" {
		return
	}
	for _, c := range []struct{ entity, id, field, want string }{
		{"users", "student-3", "primaryOrgSourcedId", "school-0"},
		{"roles", "role-s3", "orgSourcedId", "school-0"},
		{"userProfiles", "profile-t1", "credentialType", "username"},
		{"resources", "resource-1", "vendorResourceId", "VR00001"},
		{"courseResources", "course-resource-1", "resourceSourcedId", "resource-1"},
		{"classResources", "class-resource-10", "classSourcedId", "class-10"},
		{"userResources", "user-resource-1", "userSourcedId", "teacher-1"},
		{"categories", "category-2", "title", "Exam"},
		{"scoreScales", "score-scale-0", "type", "letter"},
		{"lineItems", "line-item-5", "classSourcedId", "class-5"},
		{"results", "result-3", "lineItemSourcedId", "line-item-21"},
		{"lineItemScoreScales", "line-item-score-scale-0", "scoreScaleSourcedId", "score-scale-0"},
		{"resultScoreScales", "result-score-scale-0", "resultSourcedId", "result-0"},
		{"lineItemLearningObjectiveIds", "line-item-lo-10", "source", "case"},
		{"resultLearningObjectiveIds", "result-lo-10", "textScore", "mastered"},
	} {
		var d bson.M
		if err := l.DB.Collection(ptr.Collections[c.entity]).FindOne(ctx, bson.D{{Key: "_id", Value: c.id}}).Decode(&d); err != nil ||
			d[c.field] != c.want || d["tenant"] != "dade" {
			t.Errorf("%s %s = %v (%v), want %s %q", c.entity, c.id, d, err, c.field, c.want)
		}
	}
}

// TestZipBundleAndRejection: a zipped roster loads; a roster with a
// misspelled header is refused by policy, reported, and not published.
func TestZipBundleAndRejection(t *testing.T) {
	e := startImporter(t)
	ctx := context.Background()
	up, err := inbox.Dial(ctx, e.sftp)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	src := t.TempDir()
	oneroster.Generate(src, oneroster.GenOptions{Students: 100, Seed: 9})
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	entries, _ := os.ReadDir(src)
	for _, en := range entries {
		data, _ := os.ReadFile(filepath.Join(src, en.Name()))
		w, _ := zw.Create(en.Name())
		w.Write(data)
	}
	zw.Close()
	if err := up.Put("roster.zip", &buf); err != nil {
		t.Fatal(err)
	}
	first := e.finishedRun(t, "")
	if first.State != model.StateSucceeded {
		t.Fatalf("zip bundle: %+v", first)
	}
	// The next upload has a misspelled header.
	for _, en := range entries {
		data, _ := os.ReadFile(filepath.Join(src, en.Name()))
		if en.Name() == "users.csv" {
			data = []byte(strings.Replace(string(data), "familyName", "FamilyName", 1))
		}
		up.Put(en.Name(), bytes.NewReader(data))
	}
	got := e.finishedRun(t, first.RunID)
	if got.State != model.StateFailed || !strings.Contains(got.Error, "rejected by policy") || !strings.Contains(got.Error, "file.header_mismatch") {
		t.Fatalf("rejected upload: %+v", got)
	}
	mc, _ := mongo.Connect(options.Client().ApplyURI(e.mongoURI))
	defer mc.Disconnect(ctx)
	ptr, _, _ := (&load.Loader{DB: mc.Database("etlhub")}).Current(ctx, "dade")
	if ptr.RunID != first.RunID {
		t.Fatalf("published %q, want the zip's run %q still", ptr.RunID, first.RunID)
	}
	reports, _ := filepath.Glob(filepath.Join(e.inbox, "reports", "*.csv"))
	if len(reports) != 2 {
		t.Fatalf("reports: %v", reports)
	}
}

func TestScheduleOpensAWaitingRun(t *testing.T) {
	rds := testsrv.StartRedis(t)
	cfg := &Config{InsecureNoAuth: true, Tenants: []TenantConfig{{Name: "dade", Schedule: "15 3 * * *", Timezone: "America/New_York",
		SFTP: inbox.Config{Host: "h", User: "u", PrivateKey: "k", KnownHosts: emptyKnownHosts(t)}}}}
	cfg.Redis.Addr, cfg.Mongo.URI = rds.Addr, "y"
	var p config.Problems
	cfg.Validate(&p)
	if p.Len() != 0 {
		t.Fatal(p)
	}
	ctx := context.Background()
	im := assemble(cfg, slog.New(slog.DiscardHandler), redis.NewClient(&redis.Options{Addr: rds.Addr}), nil, "test")
	defer im.rdb.Close()
	runs := func() []RunView {
		t.Helper()
		rs, err := im.Runs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	tc := cfg.Tenants[0]
	due := time.Date(2026, 9, 1, 7, 15, 0, 0, time.UTC) // 03:15 EDT
	next := tc.sched.Next(due.Add(-time.Minute))
	if !next.Equal(due) {
		t.Fatalf("next start %v", next)
	}
	if n, err := im.detector.open(ctx, tc, next, due.Add(-time.Second)); err != nil || !n.Equal(due) || len(runs()) != 0 {
		t.Fatal("opened before the schedule")
	}
	n, err := im.detector.open(ctx, tc, next, due.Add(10*time.Second))
	rs := runs()
	if err != nil || len(rs) != 1 || rs[0].State != model.StateWaiting || rs[0].Stage != model.StageAwaitingFiles || !rs[0].StartedAt.Equal(due) ||
		rs[0].RunID != "dade/roster-import/2026-09-01#1" {
		t.Fatalf("runs = %+v (%v)", rs, err)
	}
	if !n.Equal(due.Add(24 * time.Hour)) {
		t.Fatalf("next %v", n)
	}
	// An open run is not doubled the next day.
	im.detector.open(ctx, tc, n, n.Add(time.Second))
	if len(runs()) != 1 {
		t.Fatal("a second waiting run opened while one is open")
	}
	// Without Redis the importer cannot vouch for its runs, and says so.
	rds.Stop()
	if _, err := im.Runs(ctx); err == nil || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("runs with Redis down: %v", err)
	}
	bad := &Config{Tenants: []TenantConfig{{Name: "x", Schedule: "every night", SFTP: tc.SFTP}}}
	var bp config.Problems
	bad.Validate(&bp)
	if !strings.Contains(fmt.Sprint(bp), "tenants[0].schedule") {
		t.Fatalf("a bad schedule passed: %v", bp)
	}
}

// TestSFTPOutageOpensItsBreaker: with the district's server down, the
// importer retries, then fails fast, and says so in /api/v1/breakers.
func TestSFTPOutageOpensItsBreaker(t *testing.T) {
	e := startImporter(t)
	e.sshd.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var sftp breakerView
		for _, b := range e.im.Breakers() {
			if b.Name == "sftp:dade" {
				sftp = breakerView{string(b.State), b.LastError}
			}
		}
		if sftp.state == "open" {
			if !strings.Contains(sftp.lastError, "connection refused") {
				t.Fatalf("open with reason %q", sftp.lastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sftp breaker did not open: %+v", e.im.Breakers())
		}
		time.Sleep(50 * time.Millisecond) // the importer's own retries take their time
	}
	req, _ := http.NewRequest("GET", e.api+"/api/v1/breakers", nil)
	req.Header.Set("Authorization", "Bearer status-token-123456")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("breakers API: %v", err)
	}
	resp.Body.Close()
}

type breakerView struct{ state, lastError string }

func TestIsolationGroups(t *testing.T) {
	c := &Config{Tenants: []TenantConfig{{Name: "miami-dade", Group: "dade"}, {Name: "broward"}, {Name: "leon"}}}
	if g := c.InGroup("dade"); len(g) != 1 || g[0].Name != "miami-dade" {
		t.Fatalf("dade group = %+v", g)
	}
	if g := c.InGroup(SharedGroup); len(g) != 2 {
		t.Fatalf("shared group = %+v", g)
	}
}

// TestOneTenantCannotHoldEveryWorker: a large district's import is under
// way when a small one uploads; the small one gets the other worker at once
// and finishes first, rather than queueing behind the large one.
func TestOneTenantCannotHoldEveryWorker(t *testing.T) {
	sshd := testsrv.StartSSHD(t)
	rds := testsrv.StartRedis(t)
	mongoURI := testsrv.FerretDB(t)
	cfg := &Config{Listen: "127.0.0.1:0", WorkDir: t.TempDir(), Poll: 100 * time.Millisecond, Quiet: 300 * time.Millisecond, Workers: 2,
		Heartbeat: 200 * time.Millisecond, StatusToken: "status-token-123456"}
	cfg.Redis.Addr = rds.Addr
	cfg.Mongo.URI = config.Secret(mongoURI)
	for _, name := range []string{"big", "small"} {
		os.MkdirAll(filepath.Join(sshd.Root, name), 0o755)
		cfg.Tenants = append(cfg.Tenants, TenantConfig{Name: name, SFTP: inbox.Config{Host: sshd.Host, Port: sshd.Port, User: sshd.User,
			PrivateKey: config.Secret(sshd.KeyPEM), KnownHosts: sshd.KnownHosts, Dir: filepath.Join(sshd.Root, name)}})
	}
	im, _ := runImporter(t, cfg)
	ctx := context.Background()
	latest := func(tenant string) *RunView {
		runs, _ := im.Runs(ctx)
		var out *RunView
		for i := range runs {
			if runs[i].Tenant == tenant {
				out = &runs[i]
			}
		}
		return out
	}
	// The limits are for a hang, not for speed: the race detector on two
	// shared cores loads the big roster (65k rows) in one to three minutes.
	wait := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s; big %+v, small %+v", what, within, latest("big"), latest("small"))
			}
		}
	}
	big, small := t.TempDir(), t.TempDir()
	oneroster.Generate(big, oneroster.GenOptions{Students: 8000, Seed: 1})
	oneroster.Generate(small, oneroster.GenOptions{Students: 50, Seed: 2})
	copyRoster(t, big, filepath.Join(sshd.Root, "big"))
	wait("the big import loading", 2*time.Minute, func() bool { r := latest("big"); return r != nil && r.RowsDone > 0 })
	copyRoster(t, small, filepath.Join(sshd.Root, "small"))
	wait("the small import finished", 2*time.Minute, func() bool { r := latest("small"); return r != nil && r.State.Terminal() })
	b, s := latest("big"), latest("small")
	if s.State != model.StateSucceeded || b.State.Terminal() {
		t.Fatalf("the small district (%s) finished while the big one was %s: it should have, but not by waiting\nsmall %+v\nbig %+v", s.State, b.State, s.Observation, b.Observation)
	}
	wait("the big import finished", 8*time.Minute, func() bool { r := latest("big"); return r != nil && r.State.Terminal() })
	if b := latest("big"); b.State != model.StateSucceeded {
		t.Fatalf("big: %+v", b.Observation)
	}
}

// TestQueueEntryWithoutItsRun: a queued entry whose run Redis lost (a
// restart without persistence, say) is dropped, and the tenant is free for
// its next upload instead of stuck behind it.
func TestQueueEntryWithoutItsRun(t *testing.T) {
	rds := testsrv.StartRedis(t)
	ctx := context.Background()
	cfg := &Config{LockTTL: time.Minute, Tenants: []TenantConfig{{Name: "dade"}}}
	im := assemble(cfg, slog.New(slog.DiscardHandler), redis.NewClient(&redis.Options{Addr: rds.Addr}), nil, "test")
	defer im.rdb.Close()
	if err := im.store.ensureGroup(ctx, "dade"); err != nil {
		t.Fatal(err)
	}
	im.rdb.Set(ctx, activeKey("dade"), "dade/roster-import/2026-09-01#1", 0)
	im.rdb.XAdd(ctx, &redis.XAddArgs{Stream: queueKey("dade"), Values: []any{"run_id", "dade/roster-import/2026-09-01#1"}})
	if im.workers.tryTenant(ctx, cfg.Tenants[0]) {
		t.Fatal("worked on a run that does not exist")
	}
	if n, _ := im.rdb.Exists(ctx, activeKey("dade")).Result(); n != 0 {
		t.Fatal("the tenant is still marked active")
	}
	if n, _ := im.rdb.XLen(ctx, queueKey("dade")).Result(); n != 0 {
		t.Fatalf("%d entries left on the queue", n)
	}
}
