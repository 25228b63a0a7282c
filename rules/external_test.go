package rules

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// TestExternalAlertsFollowTheirPoster: a posted alert fires on the next
// tick, stays while re-posted, resolves on the first tick after its endsAt,
// and survives a restart (stored form) without firing twice.
func TestExternalAlertsFollowTheirPoster(t *testing.T) {
	now := time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)
	e := NewEngine(nil, DefaultParams(), nil)
	x := External{Labels: map[string]string{"alertname": "RedisMemory", "tenant": "dade", "severity": "critical", "etl_job": "roster-import"},
		Annotations: map[string]string{"summary": "redis at 95%"}, StartsAt: now, EndsAt: now.Add(5 * time.Minute)}
	e.PostExternal([]External{x}, now)
	trans, _ := e.Tick(now)
	if len(trans) != 1 || trans[0].Status != "firing" {
		t.Fatalf("first tick: %+v", trans)
	}
	a := trans[0].Alert
	if a.Rule != "RedisMemory" || a.Tenant != "dade" || a.Job != "roster-import" || a.Severity != "critical" || a.Summary != "redis at 95%" ||
		a.Source != ExternalSource || Label(&a, "alertname") != "RedisMemory" || Label(&a, "rule") != "RedisMemory" {
		t.Fatalf("alert = %+v", a)
	}
	// Re-posted with a later end: still firing, no new transition.
	x.EndsAt = now.Add(10 * time.Minute)
	e.PostExternal([]External{x}, now.Add(4*time.Minute))
	if trans, _ := e.Tick(now.Add(6 * time.Minute)); len(trans) != 0 {
		t.Fatalf("re-posted alert changed: %+v", trans)
	}

	// A restart: the stored alert (JSON round trip) comes back with its end.
	b, _ := json.Marshal(e.Active())
	var stored []model.Alert
	json.Unmarshal(b, &stored)
	e2 := NewEngine(nil, DefaultParams(), nil)
	e2.Restore(stored)
	if trans, _ := e2.Tick(now.Add(7 * time.Minute)); len(trans) != 0 {
		t.Fatalf("after a restart: %+v", trans)
	}
	trans, _ = e2.Tick(now.Add(10 * time.Minute))
	if len(trans) != 1 || trans[0].Status != "resolved" {
		t.Fatalf("at endsAt: %+v", trans)
	}
	// A severity that is not ours becomes warning.
	y := External{Labels: map[string]string{"alertname": "X", "severity": "page"}, EndsAt: now.Add(time.Hour)}
	e2.PostExternal([]External{y}, now)
	trans, _ = e2.Tick(now.Add(11 * time.Minute))
	if len(trans) != 1 || trans[0].Alert.Severity != model.SeverityWarning {
		t.Fatalf("unknown severity: %+v", trans)
	}
}
