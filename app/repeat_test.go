package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

func treeLoop(t *testing.T, notify string) *testLoop {
	t.Helper()
	cfg, probs := parse(t, base+receiversDoc+notify)
	if len(probs) != 0 {
		t.Fatalf("%+v", probs)
	}
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "h.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newRuleLoop(cfg, st, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
}

// post keeps a Prometheus alert firing (it fires at once) until far ahead.
func post(l *testLoop, now time.Time, labels map[string]string) {
	l.engine.PostExternal([]rules.External{{Labels: labels, StartsAt: now, EndsAt: now.Add(24 * time.Hour)}}, now)
}

// firings are the firing notifications queued, oldest first.
func firings(t *testing.T, l *testLoop) []store.OutboxItem {
	t.Helper()
	items, err := l.st.ListOutbox(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.OutboxItem
	for i := len(items) - 1; i >= 0; i-- {
		if items[i].Event == "firing" {
			out = append(out, items[i])
		}
	}
	return out
}

func deliverAll(t *testing.T, l *testLoop, at time.Time) {
	t.Helper()
	for _, it := range firings(t, l) {
		if it.Status == store.OutboxPending {
			if err := l.st.OutboxDelivered(context.Background(), it.ID, at, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A still-firing alert is notified again after repeat_interval; one that
// fired while its route was muted is notified when the mute ends.
func TestRepeatInterval(t *testing.T) {
	l := treeLoop(t, `  time_intervals:
    - name: morning
      time_intervals: [{times: [{start_time: "06:00", end_time: "07:00"}]}]
  route:
    receiver: slack
    group_by: ['...']
    group_wait: 0s
    repeat_interval: 1h
    routes:
      - matchers: [team=sis]
        receiver: dade
        mute_time_intervals: [morning]
`)
	ctx := context.Background()
	t0 := time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC)
	disk := map[string]string{"alertname": "DiskFull", "instance": "sftp-1"}
	post(l, t0, disk)
	l.tick(ctx, t0)
	if f := firings(t, l); len(f) != 1 || f[0].Receiver != "slack" {
		t.Fatalf("after firing: %+v", f)
	}
	deliverAll(t, l, t0)
	for _, m := range []int{1, 30, 59} {
		post(l, t0.Add(time.Duration(m)*time.Minute), disk)
		l.tick(ctx, t0.Add(time.Duration(m)*time.Minute))
	}
	if f := firings(t, l); len(f) != 1 {
		t.Fatalf("re-notified before repeat_interval: %d firings", len(f))
	}
	post(l, t0.Add(61*time.Minute), disk)
	l.tick(ctx, t0.Add(61*time.Minute))
	l.tick(ctx, t0.Add(62*time.Minute)) // the repeat is still pending: not queued twice
	f := firings(t, l)
	if len(f) != 2 || f[1].Receiver != "slack" || !f[1].CreatedAt.Equal(t0.Add(61*time.Minute)) {
		t.Fatalf("after repeat_interval: %+v", f)
	}

	// Muted from 06:00 to 07:00: nothing then, the notification when the mute ends.
	sis := map[string]string{"alertname": "SISDown", "team": "sis"}
	at := time.Date(2026, 9, 1, 6, 10, 0, 0, time.UTC)
	post(l, at, sis)
	l.tick(ctx, at)
	l.tick(ctx, at.Add(30*time.Minute))
	for _, x := range firings(t, l) {
		if x.Receiver == "dade" {
			t.Fatalf("notified while muted: %+v", x)
		}
	}
	l.tick(ctx, time.Date(2026, 9, 1, 7, 0, 0, 0, time.UTC))
	n := 0
	for _, x := range firings(t, l) {
		if x.Receiver == "dade" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d notifications to dade after the mute ended, want 1", n)
	}

	// An acknowledged alert is not repeated.
	deliverAll(t, l, t0.Add(2*time.Hour))
	var id string
	for _, a := range l.engine.Active() {
		if rules.ExternalLabels(&a)["alertname"] == "DiskFull" {
			id = a.ID
		}
	}
	if _, err := l.engine.Ack(id, "jane", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := len(firings(t, l))
	l.tick(ctx, t0.Add(5*time.Hour))
	for _, x := range firings(t, l)[before:] {
		if x.Alert.ID == id {
			t.Fatalf("an acknowledged alert was notified again: %+v", x)
		}
	}
}

// A new alert of a group notified less than group_interval ago waits for
// the group's next turn instead of paging after group_wait.
func TestGroupInterval(t *testing.T) {
	l := treeLoop(t, `  route:
    receiver: pd
    group_by: [alertname]
    group_wait: 10s
    group_interval: 5m
`)
	ctx := context.Background()
	t0 := time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC)
	post(l, t0, map[string]string{"alertname": "DiskFull", "instance": "a"})
	l.tick(ctx, t0)
	f := firings(t, l)
	if len(f) != 1 || !f[0].NextAt.Equal(t0.Add(10*time.Second)) || f[0].GroupKey != "alertname=DiskFull" {
		t.Fatalf("first of the group waits group_wait: %+v", f)
	}
	deliverAll(t, l, t0.Add(10*time.Second))
	post(l, t0.Add(time.Minute), map[string]string{"alertname": "DiskFull", "instance": "b"})
	post(l, t0.Add(time.Minute), map[string]string{"alertname": "RedisMemory"})
	l.tick(ctx, t0.Add(time.Minute))
	for _, x := range firings(t, l)[1:] {
		want := t0.Add(time.Minute + 10*time.Second) // a new group: group_wait
		if x.GroupKey == "alertname=DiskFull" {
			want = t0.Add(10*time.Second + 5*time.Minute) // the group went out at 05:00:10
		}
		if !x.NextAt.Equal(want) {
			t.Errorf("%s due %s, want %s", x.GroupKey, x.NextAt.Format(time.TimeOnly), want.Format(time.TimeOnly))
		}
	}
}
