package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
)

const batchQueue = "reporting"

// fakeBatch follows the AWS Batch API (REST-JSON: POST /v1/listjobs and
// /v1/describejobs): jobs listed by status in pages of nextToken, at most
// 100 described a call, ThrottlingException and garbage on demand.
type fakeBatch struct {
	*fakeAWS
	mu        sync.Mutex
	jobs      []map[string]any // JobDetail documents
	throttles map[string]int
	garbage   bool
	described []int // jobs asked for per DescribeJobs call
}

func newFakeBatch(t *testing.T) *fakeBatch {
	f := &fakeBatch{throttles: map[string]int{}}
	f.fakeAWS = newFakeAWS(t, "batch", func(r *http.Request) string { return r.URL.Path }, f.serve)
	return f
}

func (f *fakeBatch) serve(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != "POST" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		f.t.Errorf("not a REST-JSON call: %s %s %q", r.Method, r.URL, r.Header.Get("Content-Type"))
	}
	if f.throttles[op] > 0 {
		f.throttles[op]--
		awsError(w, 400, "ThrottlingException", "Too many requests")
		return
	}
	if f.garbage {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jobSummaryList": [{"jobId": 17, `)
		return
	}
	var in map[string]any
	json.Unmarshal(body, &in)
	out := map[string]any{}
	switch op {
	case "/v1/listjobs":
		if in["jobQueue"] != batchQueue {
			awsError(w, 400, "ClientException", "no such queue")
			return
		}
		var match []map[string]any
		for _, j := range f.jobs {
			if j["status"] == in["jobStatus"] {
				match = append(match, j)
			}
		}
		size := 100
		if n, ok := in["maxResults"].(float64); ok {
			size = int(n)
		}
		size = min(size, 30) // fewer than asked: the client follows nextToken
		from := 0
		if tok, ok := in["nextToken"].(string); ok {
			from, _ = strconv.Atoi(tok)
		}
		list := []map[string]any{}
		for _, j := range match[from:min(from+size, len(match))] {
			list = append(list, map[string]any{"jobId": j["jobId"], "jobArn": j["jobArn"], "jobName": j["jobName"], "status": j["status"]})
		}
		out["jobSummaryList"] = list
		if from+size < len(match) {
			out["nextToken"] = strconv.Itoa(from + size)
		}
	case "/v1/describejobs":
		ids, _ := in["jobs"].([]any)
		if len(ids) > 100 {
			awsError(w, 400, "ClientException", "jobs: at most 100")
			return
		}
		f.described = append(f.described, len(ids))
		list := []map[string]any{}
		for _, id := range ids {
			for _, j := range f.jobs {
				if j["jobId"] == id {
					list = append(list, j)
				}
			}
		}
		out["jobs"] = list
	default:
		awsError(w, 404, "UnknownOperationException", op)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (f *fakeBatch) add(name, status string, created, started, stopped time.Time, extra map[string]any) {
	id := fmt.Sprintf("job-%04d", len(f.jobs))
	j := map[string]any{"jobId": id, "jobArn": "arn:aws:batch:us-east-1:123456789012:job/" + id, "jobName": name,
		"jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/" + batchQueue, "status": status,
		"jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/nightly-report:3",
		"createdAt":     created.UnixMilli()}
	if !started.IsZero() {
		j["startedAt"] = started.UnixMilli()
	}
	if !stopped.IsZero() {
		j["stoppedAt"] = stopped.UnixMilli()
	}
	for k, v := range extra {
		j[k] = v
	}
	f.jobs = append(f.jobs, j)
}

func batchConfig(t *testing.T, rules ...Rule) BatchConfig {
	t.Helper()
	c := BatchConfig{JobQueues: []string{batchQueue}, Map: rules}
	var p config.Problems
	c.Validate(&p, "batch")
	if p.Len() > 0 {
		t.Fatal(p.Err("test"))
	}
	return c
}

func TestBatchJobsAreRuns(t *testing.T) {
	now := sfnNow
	t0 := now.Add(-time.Hour)
	f := newFakeBatch(t)
	// 150 succeeded jobs: listed in pages of 30, described 100 and 50.
	for i := 0; i < 150; i++ {
		f.add(fmt.Sprintf("tenant%03d-nightly-report", i), "SUCCEEDED", t0, t0.Add(time.Minute), t0.Add(20*time.Minute),
			map[string]any{"attempts": []any{map[string]any{"startedAt": t0.Add(time.Minute).UnixMilli()}}})
	}
	f.add("dade-nightly-report", "RUNNABLE", t0, time.Time{}, time.Time{}, nil)
	f.add("broward-nightly-report", "RUNNING", t0, t0.Add(5*time.Minute), time.Time{},
		map[string]any{"attempts": []any{map[string]any{"statusReason": "Host EC2 terminated"}}})
	f.add("palm-nightly-report", "FAILED", t0, t0.Add(2*time.Minute), t0.Add(30*time.Minute), map[string]any{
		"statusReason": "Essential container in task exited",
		"attempts": []any{map[string]any{"container": map[string]any{"exitCode": 3, "reason": "OutOfMemoryError: Container killed"}},
			map[string]any{"container": map[string]any{"exitCode": 3, "reason": "OutOfMemoryError: Container killed"}}}})
	f.add("orphan", "STARTING", t0, time.Time{}, time.Time{}, nil)
	f.add("tagged", "SUBMITTED", t0, time.Time{}, time.Time{}, map[string]any{"tags": map[string]string{"tenant": "lee"},
		"parameters": map[string]string{"report": "attendance"}})
	f.throttles["/v1/listjobs"] = 1
	f.throttles["/v1/describejobs"] = 1
	cfg := batchConfig(t,
		Rule{Match: `^(?P<tenant>[a-z0-9]+)-(?P<job>nightly-report)$`},
		Rule{TenantFromTag: "tenant", JobFromInput: "report"})
	cfg.MaxJobs = 1000
	c, err := NewBatch(testSource(f.srv.URL), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Collect(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Observations) != 150+4 || len(res.Rejected) != 1 {
		t.Fatalf("%d observations, %d rejected: %v", len(res.Observations), len(res.Rejected), res.Rejected)
	}
	if r := res.Rejected[0].Error(); !strings.Contains(r, "job orphan") || !strings.Contains(r, `job "orphan" does not match`) {
		t.Errorf("the rejection does not say which and why: %s", r)
	}
	by := map[string]model.Observation{}
	for _, o := range res.Observations {
		by[o.Tenant] = o
	}
	if o := by["dade"]; o.State != model.StateWaiting || o.Stage != "runnable" || !o.StartedAt.Equal(t0) || o.Attempt != 1 || o.Job != "nightly-report" {
		t.Errorf("runnable: %+v", o)
	}
	if o := by["broward"]; o.State != model.StateRunning || !o.StartedAt.Equal(t0.Add(5*time.Minute)) || o.Attempt != 2 || o.FinishedAt != nil {
		t.Errorf("running after a failed attempt: %+v", o)
	}
	if o := by["palm"]; o.State != model.StateFailed || o.Attempt != 2 || !o.FinishedAt.Equal(t0.Add(30*time.Minute)) ||
		o.Error != "Essential container in task exited; attempt 2: OutOfMemoryError: Container killed, exit code 3" {
		t.Errorf("failed: %+v", o)
	}
	if o := by["tenant007"]; o.State != model.StateSucceeded || o.Attempt != 1 || o.RunID != "arn:aws:batch:us-east-1:123456789012:job/job-0007" {
		t.Errorf("succeeded: %+v", o)
	}
	if o := by["lee"]; o.Job != "attendance" || o.Stage != "submitted" {
		t.Errorf("tags and parameters: %+v", o)
	}
	// 7 statuses, SUCCEEDED in 5 pages of 30, one throttled call: 12
	// listings at least (the SDK may retry a read that broke off, too).
	if n := f.count("/v1/listjobs"); n < 7+4+1 || f.throttles["/v1/listjobs"] != 0 {
		t.Errorf("%d ListJobs calls: %v", n, f.Calls())
	}
	if len(f.described) < 2 || f.described[0] != 100 || f.described[len(f.described)-1] != 55 {
		t.Errorf("DescribeJobs batches %v, want 100 then 55 (the throttled call not counted)", f.described)
	}
}

// max_jobs bounds each status's listing.
func TestBatchMaxJobs(t *testing.T) {
	f := newFakeBatch(t)
	for i := 0; i < 70; i++ {
		f.add(fmt.Sprintf("t%d-nightly-report", i), "FAILED", sfnNow.Add(-time.Hour), time.Time{}, sfnNow.Add(-time.Minute), nil)
	}
	cfg := batchConfig(t, Rule{Match: `^(?P<tenant>[a-z0-9]+)-(?P<job>nightly-report)$`})
	cfg.MaxJobs = 40
	c, err := NewBatch(testSource(f.srv.URL), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Collect(context.Background(), sfnNow)
	if err != nil || len(res.Observations) != 40 || res.Observations[0].Error != "FAILED" {
		t.Fatalf("%v: %d observations", err, len(res.Observations))
	}
}

func TestBatchGarbage(t *testing.T) {
	f := newFakeBatch(t)
	f.garbage = true
	c, err := NewBatch(testSource(f.srv.URL), batchConfig(t, Rule{Tenant: "a", Job: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Collect(context.Background(), sfnNow)
	if err == nil {
		t.Fatal("garbage accepted")
	}
	for _, want := range []string{`batch source "aws-test"`, "ListJobs SUBMITTED of queue reporting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	assertNoSecret(t, "error", err.Error())
}
