package api

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// fakeReports answers for the source "imp": a report, none, or a failure,
// counting the reads.
type fakeReports struct {
	mu    sync.Mutex
	body  []byte
	err   error
	reads int
}

func (f *fakeReports) KeepsReports(source string) bool { return source == "imp" }

func (f *fakeReports) Report(ctx context.Context, source, runID string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.body, f.err
}

// TestDistrictReportFindingByFinding: the district's page carries the run's
// report as its source keeps it, bounded, read once for many page loads; a
// source that failed or has none gives a note that says so, and a pushed
// run's page says its source keeps no report.
func TestDistrictReportFindingByFinding(t *testing.T) {
	rep := &fakeReports{body: []byte(`{"run_id":"d/1","report":{"oneroster_version":"1.2","errors":3,"warnings":1,"findings":[
		{"code":"row.invalid_date","severity":"error","file":"users.csv","count":3,"meaning":"The value is not a date","fix":"Write dates as YYYY-MM-DD",
		 "examples":[{"line":12,"column":"birthDate","value":"1/2/2010","message":"not a date"},{"line":13},{"line":14},{"line":15},{"line":16},{"line":17}]},
		{"code":"row.empty_email","severity":"warning","file":"users.csv","count":1,"meaning":"m","fix":"f","examples":null}]}}`)}
	h := newHardened(t, func(o *Options) { o.Reports = rep })
	at := time.Now().UTC().Add(-time.Minute)
	for _, o := range []model.Observation{
		{At: at, RunStatus: model.RunStatus{Source: "imp", Tenant: "dade", Job: "roster-import", RunID: "d/1", State: model.StateRunning}, Quality: &model.Quality{Errors: 3, Warnings: 1}},
		{At: at, RunStatus: model.RunStatus{Source: "push", Tenant: "broward", Job: "roster-import", RunID: "b/1", State: model.StateRunning}, Quality: &model.Quality{Errors: 2}},
	} {
		if _, err := h.st.Ingest(context.Background(), []model.Observation{o}); err != nil {
			t.Fatal(err)
		}
	}
	job := func(token, tenant string) map[string]any {
		t.Helper()
		code, body, raw := h.call(t, token, "GET", "/api/v1/district/"+tenant, "")
		if code != 200 {
			t.Fatalf("%d %s", code, raw)
		}
		return body["jobs"].([]any)[0].(map[string]any)
	}
	var j map[string]any
	for i := 0; i < 3; i++ {
		j = job(dadeView, "dade")
	}
	r, _ := j["report"].(map[string]any)
	if r == nil || rep.reads != 1 {
		t.Fatalf("report %v after %d reads, want one read for three pages", j["report"], rep.reads)
	}
	f := r["findings"].([]any)
	first := f[0].(map[string]any)
	ex := first["examples"].([]any)
	if len(f) != 2 || first["file"] != "users.csv" || first["fix"] != "Write dates as YYYY-MM-DD" || len(ex) != maxReportExamples ||
		ex[0].(map[string]any)["column"] != "birthDate" || f[1].(map[string]any)["examples"] == nil {
		t.Fatalf("findings %v", f)
	}
	if b := job(adminTok, "broward"); b["report"] != nil || !strings.Contains(b["report_note"].(string), "push is not one of this hub's importer sources") {
		t.Fatalf("a pushed run's page: report %v, note %v", b["report"], b["report_note"])
	}

	// A failure and a missing report, each after the cache of the last.
	h2 := newHardened(t, func(o *Options) { o.Reports = &fakeReports{err: errors.New("source imp: GET: connection refused")} })
	h2.st.Ingest(context.Background(), []model.Observation{{At: at, RunStatus: model.RunStatus{Source: "imp", Tenant: "dade", Job: "roster-import", RunID: "d/1", State: model.StateRunning}}})
	_, body, _ := h2.call(t, dadeView, "GET", "/api/v1/district/dade", "")
	if n := body["jobs"].([]any)[0].(map[string]any)["report_note"]; !strings.Contains(n.(string), "could not be read from imp: source imp: GET: connection refused") {
		t.Fatalf("a failed read's note: %v", n)
	}
	h3 := newHardened(t, func(o *Options) { o.Reports = &fakeReports{err: ErrNoReport} })
	h3.st.Ingest(context.Background(), []model.Observation{{At: at, RunStatus: model.RunStatus{Source: "imp", Tenant: "dade", Job: "roster-import", RunID: "d/1", State: model.StateRunning}}})
	_, body, _ = h3.call(t, dadeView, "GET", "/api/v1/district/dade", "")
	if n := body["jobs"].([]any)[0].(map[string]any)["report_note"]; !strings.Contains(n.(string), "no detailed report from imp for this run (yet)") {
		t.Fatalf("a missing report's note: %v", n)
	}
}
