package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/etlhub/etlhub/importer/oneroster"
	"github.com/etlhub/etlhub/internal/testsrv"
)

// fakeImporter follows the importer's status API as the hub's importer
// collector reads it: GET /api/v1/runs (the observation schema) and GET
// /api/v1/report?run_id= (the run's data-quality report as the importer
// stores it: oneroster.Report), both behind its bearer status token.
type fakeImporter struct {
	token   string
	runs    func() string
	reports map[string][]byte
	reads   atomic.Int64
}

func (f *fakeImporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(401)
		fmt.Fprint(w, `{"error":{"code":"unauthorized","message":"a bearer token is required"}}`)
		return
	}
	switch r.URL.Path {
	case "/api/v1/runs":
		fmt.Fprintf(w, `{"runs":[%s]}`, f.runs())
	case "/api/v1/report":
		f.reads.Add(1)
		body, ok := f.reports[r.URL.Query().Get("run_id")]
		if !ok {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no report for that run_id (yet)"}}`)
			return
		}
		w.Write(body)
	default:
		w.WriteHeader(404)
		fmt.Fprint(w, `{"error":{"code":"not_found","message":"no such endpoint"}}`)
	}
}

// TestDashboardDistrictQualityReport: the district's page shows tonight's
// data-quality report as the district needs it to fix its files: one row
// per finding with its severity in words, the file, how many rows, where
// (line, field, value) with the message, what it means and how to fix it,
// read from the importer the run came from; the markup in a value is text;
// a run whose source keeps no report says so instead of showing nothing.
func TestDashboardDistrictQualityReport(t *testing.T) {
	browser := testsrv.Chromium(t)
	now := time.Now().UTC()
	start := now.Add(-40 * time.Minute).Truncate(time.Minute)
	rep := oneroster.NewReport(5)
	const hostile = `<img src=x onerror="window.__pwned=1">`
	rep.Add(oneroster.Finding{Code: "reference.missing_target_record", Severity: oneroster.SevError, File: "enrollments.csv", Line: 14709,
		Column: "classSourcedId", Value: "class-nope", Message: `classSourcedId "class-nope" is not in classes.csv`})
	rep.Add(oneroster.Finding{Code: "reference.missing_target_record", Severity: oneroster.SevError, File: "enrollments.csv", Line: 14720,
		Column: "classSourcedId", Value: "class-gone", Message: `classSourcedId "class-gone" is not in classes.csv`})
	rep.Add(oneroster.Finding{Code: "row.invalid_date", Severity: oneroster.SevError, File: "enrollments.csv", Line: 14708,
		Column: "beginDate", Value: "1/05/2023", Message: `"1/05/2023" is not a date YYYY-MM-DD`})
	rep.Add(oneroster.Finding{Code: "row.invalid_boolean", Severity: oneroster.SevError, File: "users.csv", Line: 2633,
		Column: "enabledUser", Value: hostile, Message: `booleans are true or false (lower case)`})
	rep.Finish(oneroster.Result{Version: "1.2"})
	body, err := json.Marshal(map[string]any{"run_id": "dade/roster-import/1", "report": rep})
	if err != nil {
		t.Fatal(err)
	}
	imp := &fakeImporter{token: "importer-status-token-0123456789", reports: map[string][]byte{"dade/roster-import/1": body}}
	imp.runs = func() string {
		return fmt.Sprintf(`{"at":%q,"source":"importer","tenant":"dade","job":"roster-import","run_id":"dade/roster-import/1","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"files_arrived_at":%q,"rows_done":500,"rows_total":1000,"quality":{"errors":4,"warnings":0}}`,
			time.Now().UTC().Format(time.RFC3339), start.Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339), start.Add(-10*time.Minute).Format(time.RFC3339))
	}
	srv := httptest.NewServer(imp)
	t.Cleanup(srv.Close)
	t.Setenv("IMP_TOKEN", imp.token)
	sources := fmt.Sprintf(`  - {name: sis-importer, kind: importer, url: %q, schedule: "@every 1s", timeout: 2s, headers: {Authorization: "Bearer ${IMP_TOKEN}"}}`, srv.URL)
	jobs := strings.ReplaceAll(nowJobs("", "dade", "broward"), "timezone: UTC", "timezone: America/New_York")
	h := startHubIn(t, t.TempDir(), sources, jobs, "rules: {tick: 1s}")
	h.eventually("the importer's run collected", 20*time.Second, func() bool {
		_, b := h.call("GET", "/api/v1/status?tenant=dade", viewTok, nil)
		return jobsOf(b)["dade/roster-import"]["run_id"] == "dade/roster-import/1"
	})
	// broward's run is pushed: its source keeps no report.
	h.call("POST", "/api/v1/observations", opTok, []byte(fmt.Sprintf(
		`{"at":%q,"tenant":"broward","job":"roster-import","run_id":"broward/1","state":"running","stage":"loading","started_at":%q,"rows_done":1,"rows_total":100,"quality":{"errors":2,"warnings":1}}`,
		now.Format(time.RFC3339), start.Format(time.RFC3339))))

	b := openBrowser(t, browser, h)
	b.step("log in", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", dadeTok),
		chromedp.Click(`#login button`), chromedp.WaitVisible(`#board tbody tr`))
	b.step("district", chromedp.Navigate(h.url+"/#/district/dade"), chromedp.WaitVisible(`table.quality.report tbody tr`))
	// The importer was first seen loading: the upload was complete by the
	// time the run started, at the latest; the page says so, not "at".
	b.step("zone", chromedp.SetValue("#zone", "UTC"))
	b.eval(`document.querySelector("#zone").dispatchEvent(new Event("change")); 1`)
	h.eventually("the steps in UTC", 5*time.Second, func() bool {
		return strings.Contains(b.evalString(`document.querySelector("ol.steps").innerText`), "upload complete by "+clockIn(start, time.UTC)+" UTC")
	})
	if steps := b.evalString(`document.querySelector("ol.steps").innerText`); !strings.Contains(steps, "not seen itself") || !strings.Contains(steps, "loaded not yet") {
		t.Fatalf("tonight's upload reads %q", steps)
	}
	b.step("report again", chromedp.WaitVisible(`table.quality.report tbody tr`))
	caption := b.text(`table.quality.report caption`)
	if !strings.Contains(caption, "4 errors") || !strings.Contains(caption, "0 warnings") || !strings.Contains(caption, "OneRoster 1.2") {
		t.Fatalf("the report's caption reads %q", caption)
	}
	rows := b.evalString(`[...document.querySelectorAll("table.quality.report tbody tr")].map((r) => r.innerText.replace(/\s+/g, " ")).join("\n")`)
	lines := strings.Split(rows, "\n")
	if len(lines) != 3 {
		t.Fatalf("%d findings on the page, want 3 (a code in a file each):\n%s", len(lines), rows)
	}
	missing := lines[0]
	for _, want := range []string{"error: not loaded", "enrollments.csv", "reference.missing_target_record", " 2 ",
		`line 14709, classSourcedId, “class-nope”: classSourcedId "class-nope" is not in classes.csv`,
		`line 14720, classSourcedId, “class-gone”`,
		"A reference names a sourcedId that the referenced file does not have", "Add the record to the referenced file or correct the reference."} {
		if !strings.Contains(missing, want) {
			t.Fatalf("the first finding %q lacks %q", missing, want)
		}
	}
	var users string
	for _, l := range lines {
		if strings.Contains(l, "users.csv") {
			users = l
		}
	}
	if !strings.Contains(users, "line 2633, enabledUser, “"+hostile+"”") || !strings.Contains(users, "Write true or false") {
		t.Fatalf("the users.csv finding reads %q", users)
	}
	if n := b.eval(`(window.__pwned || 0) + (document.querySelector("table.quality img") ? 10 : 0)`); n != 0 {
		t.Fatalf("a value's markup ran or became elements (%d)", n)
	}
	b.shot("district-report.png")
	b.axe("district's page with its report")
	if n := imp.reads.Load(); n < 1 || n > 3 {
		t.Fatalf("the importer's report was read %d times for one page", n)
	}

	// A run pushed to the hub has only its counts, and the page says why.
	b.eval(fmt.Sprintf(`localStorage.setItem("etlhub-token", %q); 1`, opTok))
	b.step("broward", chromedp.Navigate(h.url+"/#/district/broward"), chromedp.Reload(), chromedp.WaitVisible(`table.quality tbody tr`))
	if note := b.text(`.report-note`); !strings.Contains(note, "is not one of this hub's importer sources") {
		t.Fatalf("broward's note reads %q", note)
	}
	if q := b.text(`table.quality tbody`); !strings.Contains(q, "Errors") || !strings.Contains(q, "2") {
		t.Fatalf("broward's counts read %q", q)
	}
}
