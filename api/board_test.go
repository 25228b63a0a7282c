package api

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// TestNightsJudgeThirtyNightsAgainstTheDeadline: a job's last 30 nights come
// back newest first, each with its outcome against the local deadline (a
// night that finished 44 minutes after 06:00 New York time is late by 44
// minutes), files arrived and data quality, and the on-time rate.
func TestNightsJudgeThirtyNightsAgainstTheDeadline(t *testing.T) {
	now := time.Date(2026, 9, 30, 12, 0, 0, 0, time.UTC) // 08:00 in New York
	spec := model.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: "America/New_York", Schedule: "0 1 * * *",
		Deadline: "06:00", StaleAfter: model.Duration(20 * time.Minute)}
	if err := spec.Compile(); err != nil {
		t.Fatal(err)
	}
	h := newHardened(t, func(o *Options) { o.Jobs = []model.JobSpec{spec}; o.Now = func() time.Time { return now } })
	var obs []model.Observation
	for d := 1; d <= 30; d++ {
		start := time.Date(2026, 9, d, 5, 0, 0, 0, time.UTC) // 01:00 EDT
		files := start.Add(-20 * time.Minute)
		fin := start.Add(90 * time.Minute) // 05:30 EDT: on time
		state := model.StateSucceeded
		if d%5 == 0 {
			fin = start.Add(5*time.Hour + 44*time.Minute) // 06:44 EDT
		}
		if d == 17 {
			state = model.StateFailed
		}
		obs = append(obs, model.Observation{At: fin, RunStatus: model.RunStatus{
			Source: "push", Tenant: "dade", Job: "roster-import",
			RunID: fmt.Sprintf("dade/%02d", d), State: state, StartedAt: &start, UpdatedAt: &fin, FinishedAt: &fin, RowsDone: 10, RowsTotal: 10,
		}, FilesArrivedAt: &files, Quality: &model.Quality{Errors: int64(d % 3), Warnings: 1}})
	}
	if _, err := h.st.Ingest(context.Background(), obs); err != nil {
		t.Fatal(err)
	}
	code, body, raw := h.call(t, dadeView, "GET", "/api/v1/jobs/dade/roster-import/nights?limit=30", "")
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	nights := body["nights"].([]any)
	if len(nights) != 30 {
		t.Fatalf("%d nights, want 30", len(nights))
	}
	first := nights[0].(map[string]any)
	if first["kind"] != "late" || first["late_by_s"] != 44.0*60 || !strings.Contains(first["summary"].(string), "late by 44 min") {
		t.Fatalf("the 30th's night: %v", first)
	}
	kinds := map[string]int{}
	for _, n := range nights {
		kinds[n.(map[string]any)["kind"].(string)]++
	}
	if kinds["late"] != 6 || kinds["failed"] != 1 || kinds["on-time"] != 23 {
		t.Fatalf("outcomes %v, want 6 late, 1 failed, 23 on time", kinds)
	}
	n13 := nights[30-13].(map[string]any)
	if n13["files_arrived_at"] != "2026-09-13T04:40:00Z" || n13["quality_errors"] != 1.0 {
		t.Fatalf("night of the 13th: %v", n13)
	}
	if r := body["on_time_rate"].(float64); r < 0.766 || r > 0.767 || body["judged"] != 30.0 || body["timezone"] != "America/New_York" {
		t.Fatalf("rate %v of %v judged", body["on_time_rate"], body["judged"])
	}
	if code, _, _ := h.call(t, dadeView, "GET", "/api/v1/jobs/broward/roster-import/nights", ""); code != 403 {
		t.Fatalf("another tenant's nights: %d", code)
	}
	if code, _, _ := h.call(t, adminTok, "GET", "/api/v1/jobs/dade/nope/nights", ""); code != 404 {
		t.Fatalf("an unconfigured job's nights: %d", code)
	}
}

// eventLines opens GET /api/v1/events with token (and Last-Event-ID when
// lastID is set) and gives its lines until the stream ends or the test
// does (or stop is called).
func eventLines(t *testing.T, h *hardened, token, lastID string) (lines <-chan string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	t.Cleanup(cancel)
	return ch, cancel
}

// TestEventsAnnounceOnlyTheTokensTenants: a push is announced on the event
// stream at once, to the tokens that may see its tenant only.
func TestEventsAnnounceOnlyTheTokensTenants(t *testing.T) {
	h := newHardened(t, nil)
	lines, _ := eventLines(t, h, dadeView, "")
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended")
			}
			return l
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5 s")
		}
		return ""
	}
	for next() != "event: hello" {
	}
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	h.push(t, adminTok, `{"at":"`+at+`","tenant":"broward","job":"roster-import","run_id":"b/1","state":"running"}`)
	h.push(t, adminTok, `{"at":"`+at+`","tenant":"dade","job":"roster-import","run_id":"d/1","state":"running"}`)
	var got []string
	for len(got) < 2 {
		if l := next(); l == "event: change" || strings.Contains(l, `"tenants"`) {
			got = append(got, l)
		}
	}
	if got[0] != "event: change" || !strings.Contains(got[1], `"tenants":["dade"]`) || strings.Contains(strings.Join(got, "\n"), "broward") {
		t.Fatalf("events %q: want one change of dade, nothing of broward", got)
	}
}

// TestEventsResumeFromTheLastEventID: a page away between two streams
// (the stream ends every EventStreamFor) reconnects with the id of the last
// event it heard and hears at once of what changed meanwhile, of its
// tenants only; an id it cannot know the changes after (another hub's, or
// garbage) makes it read everything.
func TestEventsResumeFromTheLastEventID(t *testing.T) {
	h := newHardened(t, nil)
	// open reads a stream's events up to the first change or until
	// the stream has been quiet for wait: the hello's id, the change's id
	// and data ("" if none).
	open := func(lastID string, wait time.Duration) (hello, id, data string) {
		t.Helper()
		lines, stop := eventLines(t, h, dadeView, lastID)
		defer stop()
		ev, evID := "", ""
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("the stream ended")
				}
				switch {
				case strings.HasPrefix(l, "id: "):
					evID = strings.TrimPrefix(l, "id: ")
				case strings.HasPrefix(l, "event: "):
					ev = strings.TrimPrefix(l, "event: ")
				case strings.HasPrefix(l, "data: ") && ev == "hello":
					hello = evID
				case strings.HasPrefix(l, "data: ") && ev == "change":
					return hello, evID, strings.TrimPrefix(l, "data: ")
				}
			case <-time.After(wait):
				if hello == "" {
					t.Fatal("no hello")
				}
				return hello, "", ""
			}
		}
	}
	first, _, _ := open("", 300*time.Millisecond)
	if first == "" {
		t.Fatal("the hello has no id")
	}
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	h.push(t, adminTok, `{"at":"`+at+`","tenant":"broward","job":"roster-import","run_id":"b/1","state":"running"}`)
	h.push(t, adminTok, `{"at":"`+at+`","tenant":"dade","job":"roster-import","run_id":"d/1","state":"running"}`)
	h.push(t, adminTok, `{"at":"`+at+`","tenant":"broward","job":"roster-import","run_id":"b/2","state":"running"}`)
	hello, id, data := open(first, 3*time.Second)
	if !strings.Contains(data, `"tenants":["dade"]`) || strings.Contains(data, "broward") {
		t.Fatalf("reconnected after %s: change %q, want dade's (and nothing of broward)", first, data)
	}
	if id == "" || id != hello {
		t.Fatalf("the change missed has id %q, the hello %q: want the same, the newest", id, hello)
	}
	if _, _, data := open(id, 500*time.Millisecond); data != "" {
		t.Fatalf("reconnected with the last id heard: %q, want nothing new", data)
	}
	for _, bad := range []string{"another-hub.1", "garbage", first + "9999"} {
		if _, _, data := open(bad, 3*time.Second); !strings.Contains(data, `"all":true`) {
			t.Fatalf("reconnected with id %q: %q, want all", bad, data)
		}
	}
}

// TestStatusOfSeveralTenants: the board reads the tenants of a burst of
// changes in one request (tenant=a&tenant=b); a tenant outside the token's
// scope among them is refused.
func TestStatusOfSeveralTenants(t *testing.T) {
	h := newHardened(t, nil)
	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	for _, tenant := range []string{"dade", "broward", "polk"} {
		h.push(t, adminTok, `{"at":"`+at+`","tenant":"`+tenant+`","job":"roster-import","run_id":"`+tenant+`/1","state":"running"}`)
	}
	code, body, raw := h.call(t, viewerTok, "GET", "/api/v1/status?tenant=dade&tenant=polk", "")
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	var got []string
	for _, j := range body["jobs"].([]any) {
		got = append(got, j.(map[string]any)["tenant"].(string))
	}
	if strings.Join(got, ",") != "dade,polk" {
		t.Fatalf("tenants %v, want dade and polk", got)
	}
	if code, _, raw := h.call(t, dadeView, "GET", "/api/v1/status?tenant=dade&tenant=broward", ""); code != 403 {
		t.Fatalf("dade's token asking for broward too: %d %s, want 403", code, raw)
	}
}

// fakeViews is the rules' view of jobs, changed by the test.
type fakeViews struct {
	mu sync.Mutex
	v  map[model.JobKey]JobView
}

func (f *fakeViews) JobViews() map[model.JobKey]JobView {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[model.JobKey]JobView, len(f.v))
	for k, v := range f.v {
		out[k] = v
	}
	return out
}

func (f *fakeViews) set(k model.JobKey, v JobView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.v[k] = v
}

// TestEventsAnnounceWhatTheRulesChange: with nothing new observed, a job
// whose risk the rules changed (time passed) is announced on the event
// stream within seconds, to the tokens that may see its tenant only; a
// view that did not change is not announced again.
func TestEventsAnnounceWhatTheRulesChange(t *testing.T) {
	dade, broward := model.JobKey{Tenant: "dade", Job: "roster-import"}, model.JobKey{Tenant: "broward", Job: "roster-import"}
	views := &fakeViews{v: map[model.JobKey]JobView{dade: {Risk: "running"}, broward: {Risk: "running"}}}
	h := newHardened(t, func(o *Options) { o.Views = views })
	lines, _ := eventLines(t, h, dadeView, "")
	// change waits up to d for a change event and returns its data ("" if none).
	change := func(d time.Duration) string {
		timeout := time.After(d)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("the stream ended")
				}
				if strings.HasPrefix(l, "data: ") && strings.Contains(l, `"tenants"`) {
					return l
				}
			case <-timeout:
				return ""
			}
		}
	}
	if c := change(2500 * time.Millisecond); c != "" {
		t.Fatalf("a change announced with nothing changed: %s", c)
	}
	views.set(broward, JobView{Risk: "at-risk", ActiveAlerts: 1})
	if c := change(2500 * time.Millisecond); c != "" {
		t.Fatalf("dade's stream heard of broward: %s", c)
	}
	views.set(dade, JobView{Risk: "at-risk", ActiveAlerts: 1})
	if c := change(3 * time.Second); !strings.Contains(c, `"tenants":["dade"]`) {
		t.Fatalf("dade's risk changed; the stream said %q", c)
	}
	if c := change(2500 * time.Millisecond); c != "" {
		t.Fatalf("announced again with nothing changed: %s", c)
	}
}

// TestNightsBeforeTheHubsRecordsAreUnknown: a night whose window opened
// before the store's first observation, with no run seen, is "no-record"
// and not counted in the on-time rate; a night since then without a run is
// missed.
func TestNightsBeforeTheHubsRecordsAreUnknown(t *testing.T) {
	now := time.Date(2026, 9, 30, 12, 0, 0, 0, time.UTC)
	spec := model.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: "America/New_York", Schedule: "0 1 * * *",
		Deadline: "06:00", StaleAfter: model.Duration(20 * time.Minute)}
	if err := spec.Compile(); err != nil {
		t.Fatal(err)
	}
	h := newHardened(t, func(o *Options) { o.Jobs = []model.JobSpec{spec}; o.Now = func() time.Time { return now } })
	// The hub's first record: another job's, on the 26th; dade ran on the 28th only.
	first := time.Date(2026, 9, 26, 3, 0, 0, 0, time.UTC)
	start, fin := time.Date(2026, 9, 28, 5, 0, 0, 0, time.UTC), time.Date(2026, 9, 28, 6, 0, 0, 0, time.UTC)
	if _, err := h.st.Ingest(context.Background(), []model.Observation{
		{At: first, RunStatus: model.RunStatus{Source: "push", Tenant: "broward", Job: "sis", RunID: "b/1", State: model.StateRunning}},
		{At: fin, RunStatus: model.RunStatus{Source: "push", Tenant: "dade", Job: "roster-import", RunID: "dade/28", State: model.StateSucceeded, StartedAt: &start, FinishedAt: &fin}},
	}); err != nil {
		t.Fatal(err)
	}
	code, body, raw := h.call(t, dadeView, "GET", "/api/v1/jobs/dade/roster-import/nights?limit=10", "")
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	kinds := map[string]string{}
	for _, x := range body["nights"].([]any) {
		n := x.(map[string]any)
		kinds[n["night"].(string)[:10]] = n["kind"].(string)
	}
	// Nights start 05:00Z (01:00 EDT); the window of the 26th opened at 04:00Z, after the first record.
	want := map[string]string{"2026-09-30": "missed", "2026-09-29": "missed", "2026-09-28": "on-time", "2026-09-27": "missed", "2026-09-26": "missed",
		"2026-09-25": NightNoRecord, "2026-09-21": NightNoRecord}
	for night, k := range want {
		if kinds[night] != k {
			t.Fatalf("the night of %s is %q, want %q (all: %v)", night, kinds[night], k, kinds)
		}
	}
	if body["judged"] != 5.0 || body["on_time"] != 1.0 {
		t.Fatalf("judged %v, on time %v: want the five nights since the first record (one on time)", body["judged"], body["on_time"])
	}
}
