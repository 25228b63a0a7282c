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

const smARN = "arn:aws:states:us-east-1:123456789012:stateMachine:sis-sync"

var sfnNow = time.Date(2026, 9, 1, 6, 0, 0, 0, time.UTC)

type fakeExecution struct {
	Name, Status, Input, Error, Cause string
	Start, Stop                       time.Time
	State                             string // the state it last entered (history)
}

func (e fakeExecution) arn() string {
	return "arn:aws:states:us-east-1:123456789012:execution:sis-sync:" + e.Name
}

func epoch(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return float64(t.UnixMilli()) / 1000
}

// fakeSFN follows the Step Functions API (JSON 1.0, X-Amz-Target
// AWSStepFunctions.*): newest executions first, pages of maxResults with
// nextToken, and it can answer ThrottlingException or garbage first.
type fakeSFN struct {
	*fakeAWS
	mu        sync.Mutex
	execs     []fakeExecution // newest first
	throttles map[string]int  // operation: throttling answers still to give
	garbage   bool
	tags      map[string]string
}

func newFakeSFN(t *testing.T, execs ...fakeExecution) *fakeSFN {
	f := &fakeSFN{execs: execs, throttles: map[string]int{}}
	f.fakeAWS = newFakeAWS(t, "states", func(r *http.Request) string {
		return strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	}, f.serve)
	return f
}

func (f *fakeSFN) serve(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != "POST" || r.URL.Path != "/" || r.Header.Get("Content-Type") != "application/x-amz-json-1.0" ||
		!strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AWSStepFunctions.") {
		f.t.Errorf("not a JSON 1.0 Step Functions call: %s %s %q %q", r.Method, r.URL, r.Header.Get("Content-Type"), r.Header.Get("X-Amz-Target"))
	}
	if f.throttles[op] > 0 {
		f.throttles[op]--
		awsError(w, 400, "ThrottlingException", "Rate exceeded")
		return
	}
	if f.garbage {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		io.WriteString(w, "<html>502 Bad Gateway from the proxy</html>")
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		awsError(w, 400, "SerializationException", err.Error())
		return
	}
	out := map[string]any{}
	switch op {
	case "ListExecutions":
		if in["stateMachineArn"] != smARN {
			awsError(w, 400, "StateMachineDoesNotExist", "no such state machine")
			return
		}
		size := 100
		if n, ok := in["maxResults"].(float64); ok && n > 0 {
			size = int(n)
		}
		size = min(size, 4) // fewer than asked, as the API may: the client follows nextToken
		from := 0
		if tok, ok := in["nextToken"].(string); ok {
			from, _ = strconv.Atoi(strings.TrimPrefix(tok, "page-"))
		}
		var items []map[string]any
		for _, e := range f.execs[from:min(from+size, len(f.execs))] {
			items = append(items, map[string]any{"executionArn": e.arn(), "stateMachineArn": smARN, "name": e.Name,
				"status": e.Status, "startDate": epoch(e.Start), "stopDate": epoch(e.Stop)})
		}
		out["executions"] = items
		if from+size < len(f.execs) {
			out["nextToken"] = fmt.Sprintf("page-%d", from+size)
		}
	case "DescribeExecution":
		for _, e := range f.execs {
			if e.arn() == in["executionArn"] {
				out = map[string]any{"executionArn": e.arn(), "stateMachineArn": smARN, "name": e.Name, "status": e.Status,
					"startDate": epoch(e.Start), "stopDate": epoch(e.Stop), "input": e.Input}
				if e.Error != "" {
					out["error"], out["cause"] = e.Error, e.Cause
				}
			}
		}
		if len(out) == 0 {
			awsError(w, 400, "ExecutionDoesNotExist", "no such execution")
			return
		}
	case "GetExecutionHistory":
		if in["reverseOrder"] != true {
			f.t.Errorf("history read oldest first: %s", body)
		}
		for _, e := range f.execs {
			if e.arn() == in["executionArn"] {
				at := e.Start.Add(10 * time.Minute)
				out["events"] = []map[string]any{
					{"id": 9, "type": "TaskScheduled", "timestamp": epoch(at.Add(time.Second))},
					{"id": 8, "type": "TaskStateEntered", "timestamp": epoch(at), "stateEnteredEventDetails": map[string]any{"name": e.State}},
				}
			}
		}
	case "ListTagsForResource":
		var tags []map[string]string
		for k, v := range f.tags {
			tags = append(tags, map[string]string{"key": k, "value": v})
		}
		out["tags"] = tags
	default:
		awsError(w, 400, "UnknownOperationException", op)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	json.NewEncoder(w).Encode(out)
}

func sfnConfig(t *testing.T, rules ...Rule) StepFunctionsConfig {
	t.Helper()
	c := StepFunctionsConfig{StateMachines: []string{smARN}, History: true, MaxExecutions: 50, Map: rules}
	var p config.Problems
	c.Validate(&p, "stepfunctions")
	if p.Len() > 0 {
		t.Fatal(p.Err("test"))
	}
	return c
}

func TestStepFunctionsExecutionsAreRuns(t *testing.T) {
	start := sfnNow.Add(-2 * time.Hour)
	var execs []fakeExecution
	// 7 more executions than a page holds, so that the listing pages.
	for i := 0; i < 7; i++ {
		execs = append(execs, fakeExecution{Name: fmt.Sprintf("broward-%d", i), Status: "SUCCEEDED", Input: `{"district":"broward"}`,
			Start: start.Add(-time.Duration(i) * time.Minute), Stop: start.Add(-time.Duration(i)*time.Minute + 30*time.Minute)})
	}
	execs = append([]fakeExecution{
		{Name: "dade-run", Status: "RUNNING", Input: `{"district":"miami-dade","n":1}`, Start: start, State: "LoadRoster"},
		{Name: "palm-failed", Status: "FAILED", Input: `{"district":"palm-beach"}`, Start: start, Stop: start.Add(time.Hour),
			Error: "States.TaskFailed", Cause: "Lambda roster-load: district file missing"},
		{Name: "orange-timeout", Status: "TIMED_OUT", Input: `{"district":"orange"}`, Start: start, Stop: start.Add(90 * time.Minute)},
		{Name: "lee-aborted", Status: "ABORTED", Input: `{"district":"lee"}`, Start: start, Stop: start.Add(time.Minute)},
		{Name: "no-tenant", Status: "SUCCEEDED", Input: `{"other":1}`, Start: start, Stop: start.Add(time.Minute)},
	}, execs...)
	// Older than the lookback: not read.
	execs = append(execs, fakeExecution{Name: "ancient", Status: "SUCCEEDED", Input: `{"district":"x"}`,
		Start: sfnNow.Add(-72 * time.Hour), Stop: sfnNow.Add(-71 * time.Hour)})
	f := newFakeSFN(t, execs...)
	f.throttles["ListExecutions"] = 1
	f.throttles["DescribeExecution"] = 1
	cfg := sfnConfig(t, Rule{TenantFromInput: "district"}, Rule{Match: `^(?P<job>[a-z-]+)$`, Over: "state_machine"})
	cfg.MaxExecutions = 5 // the newest 5: two pages of 4
	c, err := NewStepFunctions(testSource(f.srv.URL), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Collect(context.Background(), sfnNow)
	if err != nil {
		t.Fatal(err)
	}
	// max_executions bounds the listing: the first 5.
	if len(res.Observations) != 4 || len(res.Rejected) != 1 {
		t.Fatalf("%d observations, %d rejected: %v", len(res.Observations), len(res.Rejected), res.Rejected)
	}
	if !strings.Contains(res.Rejected[0].Error(), "no-tenant") || !strings.Contains(res.Rejected[0].Error(), "the input has nothing at district") {
		t.Errorf("the rejection does not say which and why: %v", res.Rejected[0])
	}
	byTenant := map[string]model.Observation{}
	for _, o := range res.Observations {
		byTenant[o.Tenant] = o
		if o.Job != "sis-sync" || o.Source != "aws-test" || !o.At.Equal(sfnNow) || o.RunID != execs[indexOf(execs, o)].arn() {
			t.Errorf("%+v", o)
		}
	}
	run := byTenant["miami-dade"]
	if run.State != model.StateRunning || run.Stage != "LoadRoster" || !run.StartedAt.Equal(start) ||
		run.UpdatedAt == nil || !run.UpdatedAt.Equal(start.Add(10*time.Minute+time.Second)) || run.FinishedAt != nil {
		t.Errorf("running: %+v", run)
	}
	if !strings.Contains(run.URL, "console.aws.amazon.com/states") {
		t.Errorf("url %q", run.URL)
	}
	failed := byTenant["palm-beach"]
	if failed.State != model.StateFailed || failed.Error != "FAILED: States.TaskFailed: Lambda roster-load: district file missing" ||
		!failed.FinishedAt.Equal(start.Add(time.Hour)) {
		t.Errorf("failed: %+v", failed)
	}
	if o := byTenant["orange"]; o.State != model.StateFailed || o.Error != "TIMED_OUT" {
		t.Errorf("timed out: %+v", o)
	}
	if o := byTenant["lee"]; o.State != model.StateFailed || o.Error != "ABORTED" {
		t.Errorf("aborted: %+v", o)
	}
	// Throttled once each, then answered: the SDK retried.
	if n := f.count("ListExecutions"); n < 3 || f.throttles["ListExecutions"] != 0 {
		t.Errorf("ListExecutions called %d times (a throttle and two pages), calls %v", n, f.Calls())
	}
	if n := f.count("GetExecutionHistory"); n != 1 {
		t.Errorf("history read %d times: only the running execution's", n)
	}

	// Again, with everything listed: ended executions are not described
	// twice, the listing pages to the lookback, and the succeeded ones are in.
	c.cfg.MaxExecutions = 100
	before, lists := f.count("DescribeExecution"), f.count("ListExecutions")
	res, err = c.Collect(context.Background(), sfnNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Observations) != 11 || len(res.Rejected) != 1 {
		t.Fatalf("all: %d observations, %d rejected", len(res.Observations), len(res.Rejected))
	}
	if n := f.count("ListExecutions") - lists; n < 4 {
		t.Errorf("%d pages listed; want 4 (13 executions by 4, the last reaching past the lookback)", n)
	}
	if n := f.count("DescribeExecution") - before; n < 1+7 || n > 1+7+2 {
		t.Errorf("the second collection described %d executions; want the running one and the 7 not seen before", n)
	}
}

func indexOf(execs []fakeExecution, o model.Observation) int {
	for i, e := range execs {
		if e.arn() == o.RunID {
			return i
		}
	}
	return 0
}

// Tags of the state machine map the job when a rule asks for them.
func TestStepFunctionsTags(t *testing.T) {
	f := newFakeSFN(t, fakeExecution{Name: "dade--x", Status: "RUNNING", Start: sfnNow.Add(-time.Minute), State: "A"})
	f.tags = map[string]string{"etlhub-job": "roster-sync"}
	cfg := sfnConfig(t, Rule{Match: `^(?P<tenant>[a-z]+)--`}, Rule{JobFromTag: "etlhub-job"})
	c, err := NewStepFunctions(testSource(f.srv.URL), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Collect(context.Background(), sfnNow)
	if err != nil || len(res.Observations) != 1 || res.Observations[0].Tenant != "dade" || res.Observations[0].Job != "roster-sync" {
		t.Fatalf("%v %+v", err, res)
	}
}

// An answer that is not JSON fails the collection with an error that says
// which source, call and state machine, and shows no key.
func TestStepFunctionsGarbage(t *testing.T) {
	f := newFakeSFN(t)
	f.garbage = true
	c, err := NewStepFunctions(testSource(f.srv.URL), sfnConfig(t, Rule{Tenant: "a", Job: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Collect(context.Background(), sfnNow)
	if err == nil {
		t.Fatal("garbage accepted")
	}
	for _, want := range []string{`stepfunctions source "aws-test"`, "ListExecutions", smARN, "deserialization failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	assertNoSecret(t, "error", err.Error())
}

// Throttled on every attempt: the SDK gives up after max_attempts and says so.
func TestStepFunctionsThrottledThroughout(t *testing.T) {
	f := newFakeSFN(t)
	f.throttles["ListExecutions"] = 100
	c, err := NewStepFunctions(testSource(f.srv.URL), sfnConfig(t, Rule{Tenant: "a", Job: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Collect(context.Background(), sfnNow)
	if err == nil || !strings.Contains(err.Error(), "ThrottlingException") || f.count("ListExecutions") != 3 {
		t.Fatalf("after %d calls: %v", f.count("ListExecutions"), err)
	}
}

// The runner's timeout bounds a call that never answers.
func TestStepFunctionsTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	f := newFakeAWS(t, "states", func(*http.Request) string { return "any" }, func(w http.ResponseWriter, r *http.Request, _ string, _ []byte) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	c, err := NewStepFunctions(testSource(f.srv.URL), sfnConfig(t, Rule{Tenant: "a", Job: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err = c.Collect(ctx, sfnNow)
	if err == nil || time.Since(t0) > 3*time.Second {
		t.Fatalf("after %v: %v", time.Since(t0), err)
	}
}
