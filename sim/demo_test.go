package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/notifier/pagerduty"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDemoNight plays the demo's night fast and checks what a newcomer is
// promised: a predicted-breach page before the deadline (sent to PagerDuty
// too), a stall, a late upload, a data-quality report from the real
// importer, and a dropped SFTP connection the importer got over.
func TestDemoNight(t *testing.T) {
	// A PagerDuty Events API v2 stand-in: the page must reach it.
	var mu sync.Mutex
	var pages []string
	pd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Action  string `json:"event_action"`
			Payload struct {
				Summary string `json:"summary"`
			} `json:"payload"`
		}
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		pages = append(pages, ev.Action+" "+ev.Payload.Summary)
		mu.Unlock()
		w.WriteHeader(202)
		w.Write([]byte(`{"status":"success","message":"Event processed","dedup_key":"k"}`))
	}))
	defer pd.Close()
	var url, token string
	ready := make(chan struct{})
	out, stop := playNight(t, DemoOptions{PagerDuty: &pagerduty.Config{RoutingKey: "0123456789abcdef0123456789abcdef", EventsURL: pd.URL},
		Ready: func(u, tok string) { url, token = u, tok; close(ready) }})
	defer stop()
	<-ready
	paged := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pages {
			if strings.HasPrefix(p, "trigger ") && strings.Contains(p, "miami-dade/roster-import: predicted to miss") {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !paged(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("PagerDuty got no predicted-breach page for miami-dade; it got %q", pages)
		}
	}
	// The board has the shared cause: one alert of scope shared that lists
	// the four districts MongoDB's overload slowed, not miami-dade, whose
	// load was slow of its own before it.
	req, _ := http.NewRequest("GET", url+"api/v1/alerts?state=pending,firing,resolved", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var alerts struct {
		Alerts []struct {
			Rule     string `json:"rule"`
			Scope    string `json:"scope"`
			Tenant   string `json:"tenant"`
			Affected []struct {
				Tenant string `json:"tenant"`
			} `json:"affected"`
		} `json:"alerts"`
	}
	err = json.NewDecoder(resp.Body).Decode(&alerts)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /api/v1/alerts: %d %v", resp.StatusCode, err)
	}
	var shared []string
	for _, a := range alerts.Alerts {
		if a.Scope == "shared" {
			for _, af := range a.Affected {
				shared = append(shared, af.Tenant)
			}
		}
	}
	got := strings.Join(shared, ",")
	for _, ten := range []string{"palm-beach", "pinellas", "lee", "seminole"} {
		if !strings.Contains(got, ten) {
			t.Errorf("the board's shared alert does not list %s: %q (%d alerts)", ten, got, len(alerts.Alerts))
		}
	}
	if strings.Contains(got, "miami-dade") {
		t.Errorf("the shared alert lists miami-dade, slow of its own before it: %q", got)
	}
	stop()
	log := out.String()
	page := regexp.MustCompile(`(\d\d:\d\d) E[SD]T\s+critical firing\s+miami-dade/roster-import: predicted to miss`).FindStringSubmatch(log)
	if page == nil {
		t.Fatalf("no predicted-breach page for miami-dade:\n%s", log)
	}
	// Its load slows at 03:00; the page must leave time to act.
	if page[1] >= "05:00" {
		t.Fatalf("the page came at %s, not well before 05:30:\n%s", page[0], log)
	}
	// One page for the shared cause, none for each district it slowed.
	mu.Lock()
	var sharedPages int
	for _, p := range pages {
		if strings.HasPrefix(p, "trigger ") && strings.Contains(p, "shared slowdown:") {
			sharedPages++
		}
		for _, ten := range []string{"palm-beach", "pinellas", "lee", "seminole"} {
			if strings.HasPrefix(p, "trigger "+ten+"/") {
				t.Errorf("%s was paged on its own, not under the shared cause: %q", ten, p)
			}
		}
	}
	mu.Unlock()
	if sharedPages != 1 {
		t.Errorf("PagerDuty got %d pages for the shared slowdown, want 1: %q", sharedPages, pages)
	}
	if !regexp.MustCompile(`E[SD]T\s+critical firing\s+shared slowdown: \d of \d+ loads in progress \(\d tenants: [^)]*lee, palm-beach, pinellas, seminole`).MatchString(log) {
		t.Errorf("the console does not show the shared slowdown naming its districts:\n%s", log)
	}
	for _, want := range []string{"warning  firing    broward/roster-import: run broward", "no heartbeat",
		"hillsborough/roster-import: files expected by", "duval: the importer retried failed calls and carried on: map[sftp:duval:",
		"orange's data-quality report"} {
		if !strings.Contains(log, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	// polk's night is the real importer's: its roster, uploaded over
	// embedded SFTP, is loaded whole and shown on the simulated clock.
	realRuns(t, log)
	// orange's report is the one the importer put on the district's server.
	rep := regexp.MustCompile(`orange's data-quality report, as the district gets it on its SFTP server: (\S+) \((\d+) errors`).FindStringSubmatch(log)
	if rep == nil || rep[2] == "0" {
		t.Fatalf("no data-quality report with errors for orange:\n%s", log)
	}
	if b, err := os.ReadFile(rep[1]); err != nil || !strings.Contains(string(b), "enrollments") {
		t.Errorf("orange's report %s: %v\n%s", rep[1], err, b)
	}
	if strings.Contains(log, "critical firing    polk") {
		t.Errorf("the ordinary night paged:\n%s", log)
	}
}

// playNight runs the demo fast until its night is over; stop ends it.
func playNight(t *testing.T, o DemoOptions) (out *syncBuf, stop func()) {
	out = &syncBuf{}
	o.Listen, o.Step, o.Out, o.Dir, o.LiveStudents = "127.0.0.1:0", time.Millisecond, out, t.TempDir(), 1000
	// The embedded servers under the race detector, on a busy machine,
	// import several times slower than the demo's 250ms a minute assumes;
	// a second a minute keeps polk's ordinary night ordinary.
	o.LiveStep = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Demo(ctx, o, slog.New(slog.DiscardHandler)) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(out.String(), "the night is over") {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the night did not end:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out, stop
}

// realRuns checks that polk's and orange's nights went through the real
// importer: uploaded over embedded SFTP, loaded whole, before the deadline.
func realRuns(t *testing.T, log string) {
	t.Helper()
	ny, _ := time.LoadLocation("America/New_York")
	night := time.Now().In(ny).Format("2006-01-02") // the demo's night, 02:00 New York today
	for _, tenant := range []string{"polk", "orange", "duval"} {
		live := regexp.MustCompile(`(\d\d):(\d\d) E[SD]T  ` + tenant + `: run ` + tenant + `/roster-import/(\S+)#\d+ succeeded by the real importer: (\d+) of (\d+) rows`).FindStringSubmatch(log)
		if live == nil || live[4] != live[5] || live[4] == "0" || live[1] >= "06" {
			t.Errorf("the real importer's run of %s is not in the output (or not complete before 06:00):\n%s", tenant, log)
			continue
		}
		if live[3] != night {
			t.Errorf("%s's run is dated %s, not the simulated night's %s: the demo shows one clock", tenant, live[3], night)
		}
	}
}

// TestDemoWithoutRedisServer: on a machine without redis-server the demo's
// importer runs on the in-process stand-in, and says so.
func TestDemoWithoutRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing to find
	out, stop := playNight(t, DemoOptions{})
	stop()
	log := out.String()
	if !strings.Contains(log, "in-process Redis stand-in (demo only") {
		t.Fatalf("the stand-in is not labelled:\n%s", log)
	}
	realRuns(t, log)
}
