package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
	"golang.org/x/time/rate"
)

// scripted is a receiver whose answers are queued; it records what it got.
type scripted struct {
	mu      sync.Mutex
	answers []error
	got     []Message
}

func (s *scripted) Notify(_ context.Context, m Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if len(s.answers) > 0 {
		err, s.answers = s.answers[0], s.answers[1:]
	}
	if err != nil {
		return "", err
	}
	s.got = append(s.got, m)
	return "ref-" + m.Alert.Fingerprint + "-" + string(m.Event), nil
}

func openStore(t *testing.T) *store.Store {
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "hub.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var base = time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)

func queue(t *testing.T, st *store.Store, receiver, fp, event string, at time.Time) {
	t.Helper()
	a := model.Alert{Fingerprint: fp, Rule: "stalled", Severity: "critical", Tenant: "dade", Job: "j", State: model.AlertFiring}
	tr := model.Transition{At: at, Status: model.TransitionKind(event), Alert: a}
	if err := st.SaveAlerts(context.Background(), []model.Alert{a}, []model.Transition{tr},
		[]store.Notification{{Receiver: receiver, Trans: tr}}); err != nil {
		t.Fatal(err)
	}
}

func newTestWorker(st *store.Store, clock *time.Time, recv ...Receiver) *Worker {
	return NewWorker(st, recv, WorkerOptions{
		Policy: retry.Policy{Base: 10 * time.Second, Max: time.Minute, Factor: 2}, MaxAge: time.Hour,
		Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return *clock },
	})
}

func TestAResolveNeverOvertakesItsTrigger(t *testing.T) {
	st := openStore(t)
	clock := base
	pd := &scripted{answers: []error{&Error{Retry: true, Err: errors.New("HTTP 500")}}}
	w := newTestWorker(st, &clock, Receiver{Name: "pd", Notifier: pd})
	queue(t, st, "pd", "a", "firing", base)
	queue(t, st, "pd", "a", "resolved", base.Add(time.Second))
	w.RunOnce(context.Background()) // the trigger fails; the resolve must wait
	if len(pd.got) != 0 {
		t.Fatalf("delivered %+v while the trigger was failing", pd.got)
	}
	clock = base.Add(5 * time.Second) // inside the backoff: nothing goes
	if w.RunOnce(context.Background()) != 0 {
		t.Fatal("retried inside the backoff")
	}
	clock = base.Add(11 * time.Second)
	w.RunOnce(context.Background())
	w.RunOnce(context.Background())
	if len(pd.got) != 2 || pd.got[0].Event != "firing" || pd.got[1].Event != "resolved" {
		t.Fatalf("delivered %+v, want firing then resolved", pd.got)
	}
	if pd.got[1].Ref != "ref-a-firing" {
		t.Fatalf("the resolve did not carry the firing's ref: %q", pd.got[1].Ref)
	}
	items, _ := st.ListOutbox(context.Background(), "", 10)
	for _, it := range items {
		if it.Status != store.OutboxDelivered {
			t.Fatalf("outbox item %+v not delivered", it)
		}
	}
}

func TestRetryAfterIsHonouredAndRefusalsRecorded(t *testing.T) {
	st := openStore(t)
	clock := base
	r := &scripted{answers: []error{
		&Error{Retry: true, RetryAfter: 90 * time.Second, Err: errors.New("HTTP 429")},
		&Error{Retry: false, Err: errors.New("slack: channel_not_found")},
	}}
	w := newTestWorker(st, &clock, Receiver{Name: "slack", Notifier: r})
	queue(t, st, "slack", "a", "firing", base)
	queue(t, st, "slack", "b", "firing", base)
	w.RunOnce(context.Background())
	items, _ := st.ListOutbox(context.Background(), "", 10)
	byFP := map[string]store.OutboxItem{}
	for _, it := range items {
		byFP[it.Fingerprint] = it
	}
	if a := byFP["a"]; a.Status != store.OutboxPending || a.NextAt.Before(base.Add(90*time.Second)) || a.Attempts != 1 {
		t.Fatalf("after a 429 with Retry-After 90: %+v", a)
	}
	if b := byFP["b"]; b.Status != store.OutboxFailed || b.LastError != "slack: channel_not_found" {
		t.Fatalf("after a refusal: %+v", b)
	}
	clock = base.Add(60 * time.Second) // past the backoff, not past Retry-After
	if w.RunOnce(context.Background()) != 0 {
		t.Fatal("retried before Retry-After")
	}
	clock = base.Add(91 * time.Second)
	w.RunOnce(context.Background())
	if len(r.got) != 1 || r.got[0].Alert.Fingerprint != "a" {
		t.Fatalf("delivered %+v", r.got)
	}
}

func TestRateLimitPerReceiver(t *testing.T) {
	st := openStore(t)
	clock := time.Now()
	r := &scripted{}
	w := newTestWorker(st, &clock, Receiver{Name: "pd", Notifier: r, Limit: rate.Every(time.Minute), Burst: 2})
	for _, fp := range []string{"a", "b", "c", "d"} {
		queue(t, st, "pd", fp, "firing", clock.Add(-time.Second))
	}
	w.RunOnce(context.Background())
	if len(r.got) != 2 {
		t.Fatalf("%d delivered in one pass with a burst of 2", len(r.got))
	}
}

func TestRouting(t *testing.T) {
	rt := &Router{Default: "slack", Routes: []Route{
		{Match: map[string]string{"severity": "critical"}, Receiver: "pd", Continue: true},
		{MatchRE: map[string]string{"tenant": "miami-.*"}, Receiver: "dade-slack"},
	}}
	for i := range rt.Routes {
		var p config.Problems
		rt.Routes[i].Validate(&p, "r", map[string]bool{"pd": true, "dade-slack": true, "slack": true})
		if p.Len() != 0 {
			t.Fatal(p)
		}
	}
	for _, tc := range []struct {
		a    model.Alert
		want string
	}{
		{model.Alert{Severity: "critical", Tenant: "miami-dade"}, "[pd dade-slack]"},
		{model.Alert{Severity: "critical", Tenant: "broward"}, "[pd]"},
		{model.Alert{Severity: "warning", Tenant: "miami-dade"}, "[dade-slack]"},
		{model.Alert{Severity: "warning", Tenant: "broward"}, "[slack]"},
	} {
		if got := fmt.Sprint(rt.Receivers(&tc.a, base)); got != tc.want {
			t.Errorf("%+v routed to %s, want %s", tc.a, got, tc.want)
		}
	}
}

func TestGroupedAlertsMakeOnePage(t *testing.T) {
	st := openStore(t)
	clock := base
	pd := &scripted{}
	w := newTestWorker(st, &clock, Receiver{Name: "pd", Notifier: pd})
	rt := &Router{Routes: []Route{{Match: map[string]string{"severity": "critical"}, Receiver: "pd", GroupBy: []string{"rule"}}}}
	var p config.Problems
	rt.Routes[0].Validate(&p, "r", map[string]bool{"pd": true})
	save := func(fp, tenant, event string, state model.AlertState, at time.Time) {
		a := model.Alert{Fingerprint: fp, Rule: "predicted-breach", Severity: "critical", Tenant: tenant, Job: "roster-import", State: state,
			Summary: tenant + " will be late"}
		tr := model.Transition{At: at, Status: model.TransitionKind(event), Alert: a}
		tg := rt.Targets(&a, at)[0]
		n := store.Notification{Receiver: tg.Receiver, Trans: tr, GroupKey: tg.GroupKey}
		if event == "firing" {
			n.Wait = tg.GroupWait
		}
		if err := st.SaveAlerts(context.Background(), []model.Alert{a}, []model.Transition{tr}, []store.Notification{n}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		save(fmt.Sprintf("pb|t%02d", i), fmt.Sprintf("t%02d", i), "firing", model.AlertFiring, base.Add(time.Duration(i)*time.Second))
	}
	w.RunOnce(context.Background())
	if len(pd.got) != 0 {
		t.Fatal("paged before group_wait")
	}
	clock = base.Add(31 * time.Second)
	for w.RunOnce(context.Background()) > 0 {
	}
	if len(pd.got) != 1 || len(pd.got[0].Group) != 20 || pd.got[0].GroupKey != "rule=predicted-breach" {
		t.Fatalf("%d notifications, first with %d alerts; want one with 20", len(pd.got), len(pd.got[0].Group))
	}
	if s := pd.got[0].GroupSummary(); !strings.HasPrefix(s, "20 alerts (rule=predicted-breach): t00/roster-import, t01/roster-import") {
		t.Fatalf("group summary %q", s)
	}
	for i := 0; i < 19; i++ {
		save(fmt.Sprintf("pb|t%02d", i), fmt.Sprintf("t%02d", i), "resolved", model.AlertResolved, clock)
	}
	for w.RunOnce(context.Background()) > 0 {
	}
	if len(pd.got) != 1 {
		t.Fatalf("a group resolved while one of its alerts still fires: %+v", pd.got[1:])
	}
	save("pb|t19", "t19", "resolved", model.AlertResolved, clock)
	for w.RunOnce(context.Background()) > 0 {
	}
	if len(pd.got) != 2 || pd.got[1].Event != "resolved" || !pd.got[1].Grouped() {
		t.Fatalf("the group did not resolve with its last alert: %+v", pd.got)
	}
}
