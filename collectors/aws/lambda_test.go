package aws

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
)

func lambdaCollector(t *testing.T, endpoint string, c LambdaConfig) *Lambda {
	t.Helper()
	var p config.Problems
	c.Validate(&p, "lambda")
	if p.Len() > 0 {
		t.Fatal(p.Err("test"))
	}
	l, err := NewLambda(testSource(endpoint), c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newCWServer(t *testing.T) (*fakeCloudWatch, *fakeAWS) {
	cw := newFakeCloudWatch(t)
	srv := newFakeAWS(t, "monitoring", func(r *http.Request) string { return r.URL.Path },
		func(w http.ResponseWriter, r *http.Request, _ string, body []byte) { cw.serve(w, r, body) })
	return cw, srv
}

func TestLambdaMetrics(t *testing.T) {
	cw, srv := newCWServer(t)
	now := time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)
	at := now.Add(-3 * time.Minute)
	cw.set("AWS/Lambda", "Invocations", "Sum", "sis-sync-load", cwPoint{at.Add(-time.Minute), 60}, cwPoint{at, 40})
	cw.set("AWS/Lambda", "Errors", "Sum", "sis-sync-load", cwPoint{at, 25})
	cw.set("AWS/Lambda", "Throttles", "Sum", "sis-sync-load", cwPoint{at, 3})
	cw.set("AWS/Lambda", "Duration", "Average", "sis-sync-load", cwPoint{at.Add(-time.Minute), 900}, cwPoint{at, 1200})
	cw.set("AWS/Lambda", "Duration", "p95", "sis-sync-load", cwPoint{at, 2900})
	// Older than the window: not counted.
	cw.set("AWS/Lambda", "Invocations", "Sum", "idle-fn", cwPoint{now.Add(-time.Hour), 99})
	cw.throttles = 1
	c := lambdaCollector(t, srv.srv.URL, LambdaConfig{Functions: []LambdaFunction{
		{Name: "sis-sync-load", Tenant: "miami-dade", Job: "sis-sync"}, {Name: "idle-fn"}}})
	res, err := c.Collect(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Measurements) != 2 {
		t.Fatalf("%+v", res)
	}
	m, idle := res.Measurements[0], res.Measurements[1]
	for _, x := range res.Measurements {
		if err := x.Validate(); err != nil {
			t.Fatalf("%+v: %v", x, err)
		}
	}
	want := map[string]float64{model.ValueInvocations: 100, model.ValueErrors: 25, model.ValueThrottles: 3,
		model.ValueDurationAvgMs: 1200, model.ValueP95Ms: 2900, model.ValueCalls: 100, model.ValueErrorRate: 0.25}
	for k, v := range want {
		if m.Values[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, m.Values[k], v, m.Values)
		}
	}
	if m.Subject != "lambda:sis-sync-load" || m.Kind != model.KindLambda || m.Tenant != "miami-dade" || m.Job != "sis-sync" || !m.Up {
		t.Errorf("%+v", m)
	}
	if idle.Values[model.ValueInvocations] != 0 || len(idle.Values) != 3 || idle.Tenant != "" {
		t.Errorf("a function not invoked in the window: %+v", idle)
	}
	// 10 queries, 2 results a page: the paginator followed NextToken; one
	// throttled call retried.
	if cw.queries != 10 || srv.count("/service/GraniteServiceVersion20100801/operation/GetMetricData") < 6 {
		t.Errorf("%d queries, calls %v", cw.queries, srv.Calls())
	}
}

func TestLambdaGarbage(t *testing.T) {
	cw, srv := newCWServer(t)
	cw.garbage = true
	c := lambdaCollector(t, srv.srv.URL, LambdaConfig{Functions: []LambdaFunction{{Name: "f"}}})
	_, err := c.Collect(context.Background(), sfnNow)
	if err == nil || !strings.Contains(err.Error(), `lambda source "aws-test": GetMetricData of AWS/Lambda`) {
		t.Fatalf("%v", err)
	}
	assertNoSecret(t, "error", err.Error())
}
