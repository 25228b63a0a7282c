package notifier_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/notifier/pagerduty"
	"github.com/etlhub/etlhub/store"
)

// BenchmarkOutbox measures delivery from the SQLite outbox to a local
// PagerDuty Events API receiver: queue b.N notifications, then drain them.
//
//	go test -run '^$' -bench Outbox -benchtime 2000x ./notifier/
func BenchmarkOutbox(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(202)
		io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"x"}`)
	}))
	defer srv.Close()
	cfg := pagerduty.Config{RoutingKey: config.Secret("0123456789abcdef0123456789abcdef"), EventsURL: srv.URL}
	var p config.Problems
	cfg.Validate(&p, "pd")
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: b.TempDir() + "/hub.db"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	var notes []store.Notification
	for i := 0; i < b.N; i++ {
		a := model.Alert{Fingerprint: fmt.Sprintf("stalled|t%05d|job", i), Rule: "stalled", Severity: "critical", Summary: "x"}
		notes = append(notes, store.Notification{Receiver: "pd", Trans: model.Transition{At: now, Status: "firing", Alert: a}})
	}
	if err := st.SaveAlerts(context.Background(), nil, nil, notes); err != nil {
		b.Fatal(err)
	}
	w := notifier.NewWorker(st, []notifier.Receiver{{Name: "pd", Notifier: pagerduty.New(cfg)}}, notifier.WorkerOptions{
		Policy: retry.Default, Log: slog.New(slog.DiscardHandler)})
	b.ResetTimer()
	done := 0
	for done < b.N {
		n := w.RunOnce(context.Background())
		if n == 0 {
			b.Fatalf("stuck after %d", done)
		}
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
}
