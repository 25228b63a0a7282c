package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier/slack"
	"github.com/etlhub/etlhub/store"
)

// TestDigestFromTheStoreToSlack builds a digest from stored runs and posts it
// to a local Slack Web API.
func TestDigestFromTheStoreToSlack(t *testing.T) {
	var posted string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		posted = r.PostForm.Get("blocks")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true,"channel":"C1","ts":"1.2"}`)
	}))
	defer srv.Close()
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "h.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	spec := model.JobSpec{Tenant: "dade", Job: "roster-import", Timezone: "UTC", Schedule: "0 2 * * *", Deadline: "05:00",
		StaleAfter: model.Duration(20 * time.Minute)}
	spec.Compile()
	start := time.Date(2026, 9, 1, 2, 0, 0, 0, time.UTC)
	fin := time.Date(2026, 9, 1, 5, 40, 0, 0, time.UTC)
	if _, err := st.Ingest(context.Background(), []model.Observation{{At: fin, RunStatus: model.RunStatus{
		Source: "importer", Tenant: "dade",
		Job: "roster-import", RunID: "r1", State: model.StateSucceeded, StartedAt: &start, FinishedAt: &fin,
	}}}); err != nil {
		t.Fatal(err)
	}
	sc := slack.Config{Token: "xoxb-1-2-3", Channel: "#po", APIURL: srv.URL + "/api/"}
	cfg := &Config{Jobs: []model.JobSpec{spec}, PublicURL: "https://hub.example/"}
	var p config.Problems
	sc.Validate(&p, "s")
	d := &digests{cfg: cfg.digests(), st: st, log: slog.New(slog.DiscardHandler)}
	dc := DigestConfig{Name: "Florida", Window: 24 * time.Hour}
	if err := d.send(context.Background(), dc, slack.New(sc), time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Florida", "1 nights*, 0 on time", "dade/roster-import 40 min late", "hub.example"} {
		if !strings.Contains(posted, want) {
			t.Errorf("the digest lacks %q: %s", want, posted)
		}
	}
}
