package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestCollectedRunsReachTheEventStream: what a collector stores (not only
// what is pushed) is announced on GET /api/v1/events, so an open board
// changes when an ETL's run does, within seconds.
func TestCollectedRunsReachTheEventStream(t *testing.T) {
	etl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UTC()
		fmt.Fprintf(w, `{"items": [{"id": "sync-%d", "org": "broward", "status": "RUNNING", "started": %q, "beat": %q}]}`,
			now.Unix(), now.Add(-time.Minute).Format(time.RFC3339), now.Format(time.RFC3339))
	}))
	defer etl.Close()
	sources := fmt.Sprintf(`  - name: legacy
    kind: httpjson
    url: %s
    schedule: "@every 1s"
    httpjson:
      runs_path: items
      fields: {run_id: id, tenant: org, state: status, started_at: started, updated_at: beat}
      state_map: {RUNNING: running}
      defaults: {job: sis-sync}`, etl.URL)
	h := startHub(t, sources, jobsYAML)
	h.eventually("the hub answers", 20*time.Second, func() bool {
		code, _ := h.call("GET", "/api/v1/status", viewTok, nil)
		return code == 200
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+viewTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "event: ") {
			event = strings.TrimPrefix(line, "event: ")
		}
		if event == "change" && strings.HasPrefix(line, "data: ") && strings.Contains(line, `"broward"`) {
			return
		}
	}
	t.Fatalf("no change of broward on the event stream while its collector stored runs every second (%v)", ctx.Err())
}
