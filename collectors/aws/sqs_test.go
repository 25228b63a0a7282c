package aws

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goaws "github.com/Admiral-Piett/goaws/app"
	goawsrouter "github.com/Admiral-Piett/goaws/app/router"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/sirupsen/logrus"
)

// goawsServer is a real SQS server (goaws, in this process) behind one
// endpoint that also answers CloudWatch. goaws speaks SQS's query protocol
// (Action=...&QueueUrl=..., XML answers), the SDK SQS's JSON 1.0
// (X-Amz-Target: AmazonSQS.*): the endpoint checks each call's SigV4
// signature and carries the SDK's JSON calls to goaws as the query
// protocol's form and its XML answer back as JSON. The queues, their
// counts, visibility and dead-lettering are goaws's own.
type goawsServer struct {
	t      *testing.T
	url    string // the endpoint the collector calls
	goaws  string // goaws itself, for the test's producers and consumers
	cw     *fakeCloudWatch
	mu     sync.Mutex
	calls  []string
	failOp string // an SQS operation answered 500 (a broken gateway)
}

// goawsOnce: goaws keeps its queues and settings in package variables, so
// one server serves the package's tests (each with its own queue names).
var goawsOnce struct {
	sync.Once
	url string
	err error
}

func startGoaws(t *testing.T) *goawsServer {
	t.Helper()
	goawsOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			goawsOnce.err = err
			return
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		goaws.CurrentEnvironment = goaws.Environment{Host: "127.0.0.1", Port: port, AccountID: "123456789012",
			QueueAttributeDefaults: goaws.EnvQueueAttributes{VisibilityTimeout: 30, MaximumMessageSize: 262144}}
		srv := &http.Server{Handler: goawsrouter.New(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(l)
		goawsOnce.url = "http://" + l.Addr().String()
	})
	if goawsOnce.err != nil {
		t.Fatalf("goaws did not start: %v", goawsOnce.err)
	}
	s := &goawsServer{t: t, goaws: goawsOnce.url, cw: newFakeCloudWatch(t)}
	front := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(front.Close)
	s.url = front.URL
	return s
}

// query calls goaws directly with the query protocol and returns its XML.
func (s *goawsServer) query(action string, params url.Values) (int, []byte) {
	s.t.Helper()
	if params == nil {
		params = url.Values{}
	}
	params.Set("Action", action)
	resp, err := http.PostForm(s.goaws+"/", params)
	if err != nil {
		s.t.Fatalf("goaws %s: %v", action, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (s *goawsServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if isCloudWatch(r) {
		if err := checkSigV4(r, body, "monitoring", testRegion); err != nil {
			s.t.Errorf("CloudWatch: %v", err)
			http.Error(w, "signature", 403)
			return
		}
		s.cw.serve(w, r, body)
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if !ok || r.Header.Get("Content-Type") != "application/x-amz-json-1.0" {
		s.t.Errorf("not an SQS JSON 1.0 call: %q %q", r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"))
	}
	if err := checkSigV4(r, body, "sqs", testRegion); err != nil {
		s.t.Errorf("%s: %v", op, err)
		http.Error(w, "signature", 403)
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, op)
	fail := s.failOp == op
	s.mu.Unlock()
	if fail {
		w.WriteHeader(502)
		io.WriteString(w, "<html>Bad Gateway</html>")
		return
	}
	var in struct {
		QueueName              string
		QueueOwnerAWSAccountId string
		QueueUrl               string
		AttributeNames         []string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		s.t.Errorf("%s: %v", op, err)
	}
	form := url.Values{}
	switch op {
	case "GetQueueUrl":
		form.Set("QueueName", in.QueueName)
	case "GetQueueAttributes":
		form.Set("QueueUrl", in.QueueUrl)
		for i, a := range in.AttributeNames {
			form.Set(fmt.Sprintf("AttributeName.%d", i+1), a)
		}
	default:
		s.t.Errorf("the collector called %s", op)
	}
	status, x := s.query(op, form)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if status != 200 {
		var e struct {
			Error struct{ Type, Code, Message string }
		}
		xml.Unmarshal(x, &e)
		w.Header().Set("X-Amzn-Query-Error", e.Error.Code+";Sender")
		w.WriteHeader(400)
		code := "QueueDoesNotExist"
		if !strings.Contains(e.Error.Code, "NonExistentQueue") {
			code = e.Error.Code
		}
		json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": e.Error.Message})
		return
	}
	switch op {
	case "GetQueueUrl":
		var v struct {
			URL string `xml:"GetQueueUrlResult>QueueUrl"`
		}
		xml.Unmarshal(x, &v)
		json.NewEncoder(w).Encode(map[string]string{"QueueUrl": v.URL})
	case "GetQueueAttributes":
		var v struct {
			Attrs []struct{ Name, Value string } `xml:"GetQueueAttributesResult>Attribute"`
		}
		xml.Unmarshal(x, &v)
		attrs := map[string]string{}
		for _, a := range v.Attrs {
			attrs[a.Name] = a.Value
		}
		json.NewEncoder(w).Encode(map[string]any{"Attributes": attrs})
	}
}

// createQueue makes a queue (with a dead-letter queue after maxReceive
// receives, when dlq is set) in goaws and returns its URL.
func (s *goawsServer) createQueue(name, dlq string, maxReceive int) string {
	s.t.Helper()
	p := url.Values{"QueueName": {name}}
	if dlq != "" {
		p.Set("Attribute.1.Name", "RedrivePolicy")
		p.Set("Attribute.1.Value", fmt.Sprintf(`{"maxReceiveCount": "%d", "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:%s"}`, maxReceive, dlq))
	}
	status, x := s.query("CreateQueue", p)
	var v struct {
		URL string `xml:"CreateQueueResult>QueueUrl"`
	}
	if xml.Unmarshal(x, &v); status != 200 || v.URL == "" {
		s.t.Fatalf("CreateQueue %s: %d %s", name, status, x)
	}
	return v.URL
}

func (s *goawsServer) send(queueURL string, n int) {
	s.t.Helper()
	for i := 0; i < n; i++ {
		if status, x := s.query("SendMessage", url.Values{"QueueUrl": {queueURL}, "MessageBody": {fmt.Sprintf(`{"student": %d}`, i)}}); status != 200 {
			s.t.Fatalf("SendMessage: %d %s", status, x)
		}
	}
}

// receive takes up to n messages (they become in flight) and returns their receipt handles.
func (s *goawsServer) receive(queueURL string, n int) []string {
	s.t.Helper()
	status, x := s.query("ReceiveMessage", url.Values{"QueueUrl": {queueURL}, "MaxNumberOfMessages": {fmt.Sprint(n)}})
	var v struct {
		Handles []string `xml:"ReceiveMessageResult>Message>ReceiptHandle"`
	}
	if xml.Unmarshal(x, &v); status != 200 {
		s.t.Fatalf("ReceiveMessage: %d %s", status, x)
	}
	return v.Handles
}

func (s *goawsServer) delete(queueURL string, handles []string) {
	s.t.Helper()
	for _, h := range handles {
		if status, x := s.query("DeleteMessage", url.Values{"QueueUrl": {queueURL}, "ReceiptHandle": {h}}); status != 200 {
			s.t.Fatalf("DeleteMessage: %d %s", status, x)
		}
	}
}

// giveBack makes received messages visible again at once, a failed
// attempt each: past the redrive policy's count they go to the DLQ.
func (s *goawsServer) giveBack(queueURL string, handles []string) {
	s.t.Helper()
	for _, h := range handles {
		if status, x := s.query("ChangeMessageVisibility", url.Values{"QueueUrl": {queueURL}, "ReceiptHandle": {h}, "VisibilityTimeout": {"0"}}); status != 200 {
			s.t.Fatalf("ChangeMessageVisibility: %d %s", status, x)
		}
	}
}

func sqsCollector(t *testing.T, endpoint string, c SQSConfig) *SQS {
	t.Helper()
	var p config.Problems
	c.Validate(&p, "sqs")
	if p.Len() > 0 {
		t.Fatal(p.Err("test"))
	}
	q, err := NewSQS(testSource(endpoint), c)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// queueSeq makes queue names unique across runs of a test (goaws keeps them).
var queueSeq atomic.Int64

func TestSQSAgainstGoaws(t *testing.T) {
	s := startGoaws(t)
	n := queueSeq.Add(1)
	inboxName, dlqName, exportsName := fmt.Sprintf("sis-sync-inbox-%d", n), fmt.Sprintf("sis-sync-dlq-%d", n), fmt.Sprintf("exports-%d", n)
	dlqURL := s.createQueue(dlqName, "", 0)
	inbox := s.createQueue(inboxName, dlqName, 1)
	s.createQueue(exportsName, "", 0)
	t0 := time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)
	// CloudWatch's age of the oldest message, minute by minute.
	s.cw.set("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", inboxName,
		cwPoint{t0.Add(-2 * time.Minute), 60}, cwPoint{t0.Add(-time.Minute), 120})
	s.cw.throttles = 1
	c := sqsCollector(t, s.url, SQSConfig{Queues: []SQSQueue{
		{Name: inboxName, Tenant: "miami-dade", Job: "sis-sync"},
		{URL: s.goaws + "/123456789012/" + exportsName},
	}, Map: nil})
	measure := func(at time.Time) (inbox, exports model.Measurement) {
		t.Helper()
		res, err := c.Collect(context.Background(), at)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Measurements) != 2 {
			t.Fatalf("%d measurements", len(res.Measurements))
		}
		for _, m := range res.Measurements {
			if err := m.Validate(); err != nil {
				t.Fatalf("%+v: %v", m, err)
			}
		}
		return res.Measurements[0], res.Measurements[1]
	}

	// Filled: 5 messages waiting.
	s.send(inbox, 5)
	m, ex := measure(t0)
	if m.Subject != "sqs:"+inboxName || m.Kind != model.KindSQS || !m.Up || m.Tenant != "miami-dade" || m.Job != "sis-sync" ||
		m.Values[model.ValueQueueDepth] != 5 || m.Values[model.ValueQueueInFlight] != 0 || m.Values[model.ValueDLQDepth] != 0 ||
		m.Values[model.ValueOldestAgeS] != 120 {
		t.Fatalf("filled: %+v", m)
	}
	if ex.Subject != "sqs:"+exportsName || ex.Tenant != "" || ex.Values[model.ValueQueueDepth] != 0 {
		t.Fatalf("a queue by URL, serving no one job: %+v", ex)
	}
	if _, ok := ex.Values[model.ValueDLQDepth]; ok {
		t.Errorf("a queue without a redrive policy has a DLQ depth: %+v", ex)
	}
	// A consumer takes 3: in flight (goaws counts them in the depth too).
	got := s.receive(inbox, 3)
	m, _ = measure(t0.Add(time.Minute))
	if m.Values[model.ValueQueueInFlight] != 3 {
		t.Fatalf("in flight: %+v", m.Values)
	}
	// Drained: it deletes them.
	s.delete(inbox, got)
	m, _ = measure(t0.Add(2 * time.Minute))
	if m.Values[model.ValueQueueDepth] != 2 || m.Values[model.ValueQueueInFlight] != 0 {
		t.Fatalf("drained: %+v", m.Values)
	}
	// Failing: both left are taken and given back twice; past one receive
	// they are dead letters.
	for i := 0; i < 2; i++ {
		s.giveBack(inbox, s.receive(inbox, 2))
	}
	m, _ = measure(t0.Add(3 * time.Minute))
	if m.Values[model.ValueDLQDepth] != 2 || m.Values[model.ValueQueueDepth] != 0 {
		t.Fatalf("dead letters: %+v (DLQ at %s)", m.Values, dlqURL)
	}
	// GetQueueUrl once per queue, the DLQ's included; the throttled
	// CloudWatch call retried.
	urls := 0
	for _, op := range s.calls {
		if op == "GetQueueUrl" {
			urls++
		}
	}
	if urls != 2 || s.cw.throttles != 0 {
		t.Errorf("GetQueueUrl %d times (want 2: the inbox and its DLQ), throttles left %d", urls, s.cw.throttles)
	}
}

// A queue that does not exist is measured down with why and fails the
// attempt; the other queues are still measured.
func TestSQSMissingQueueAndGarbage(t *testing.T) {
	s := startGoaws(t)
	present := fmt.Sprintf("present-%d", queueSeq.Add(1))
	s.createQueue(present, "", 0)
	c := sqsCollector(t, s.url, SQSConfig{Queues: []SQSQueue{{Name: "missing"}, {Name: present}}, OldestAge: new(false)})
	res, err := c.Collect(context.Background(), sfnNow)
	if err == nil || !strings.Contains(err.Error(), `sqs source "aws-test": GetQueueUrl of queue missing`) || !strings.Contains(err.Error(), "NonExistentQueue") {
		t.Fatalf("%v", err)
	}
	if len(res.Measurements) != 2 || res.Measurements[0].Up || !strings.Contains(res.Measurements[0].Error, "NonExistentQueue") || !res.Measurements[1].Up {
		t.Fatalf("%+v", res.Measurements)
	}
	for _, m := range res.Measurements {
		if err := m.Validate(); err != nil {
			t.Errorf("%+v: %v", m, err)
		}
	}
	assertNoSecret(t, "error", err.Error())
	// A gateway's HTML instead of SQS's JSON: a clear error, the queue down.
	s.failOp = "GetQueueAttributes"
	res, err = c.Collect(context.Background(), sfnNow)
	if err == nil || !strings.Contains(err.Error(), "GetQueueAttributes of queue "+present) || res.Measurements[1].Up {
		t.Fatalf("%v %+v", err, res.Measurements)
	}
	assertNoSecret(t, "error", err.Error())
}

// The rules on what goaws really held: a queue that drains is fine, one
// whose consumer stopped is not draining (queue-backlog, on the job it
// serves), messages failed twice are dead letters (dead-letters), and a
// consumer back at work clears the backlog.
func TestSQSSignalsFromGoaws(t *testing.T) {
	s := startGoaws(t)
	n := queueSeq.Add(1)
	inboxName, dlqName := fmt.Sprintf("roster-inbox-%d", n), fmt.Sprintf("roster-dlq-%d", n)
	s.createQueue(dlqName, "", 0)
	inbox := s.createQueue(inboxName, dlqName, 1)
	c := sqsCollector(t, s.url, SQSConfig{Queues: []SQSQueue{{Name: inboxName, Tenant: "broward", Job: "roster-sync"}}, OldestAge: new(false)})
	t0 := time.Date(2026, 9, 1, 3, 0, 0, 0, time.UTC)
	var hist []model.Measurement
	probe := func(minute int) []rules.Signal {
		t.Helper()
		at := t0.Add(time.Duration(minute) * time.Minute)
		res, err := c.Collect(context.Background(), at)
		if err != nil {
			t.Fatal(err)
		}
		hist = append(hist, res.Measurements...)
		return rules.QueueSignals(hist, rules.DefaultDependencyParams(), nil, at.Add(time.Second))
	}
	level := func(sig []rules.Signal, rule string) rules.Level {
		for _, x := range sig {
			if x.Rule == rule {
				if x.Tenant != "broward" || x.Job != "roster-sync" {
					t.Errorf("%s not keyed to the job the queue serves: %+v", rule, x)
				}
				return x.Level
			}
		}
		return 0
	}
	minute := 0
	// Filled and drained, ten minutes.
	for ; minute < 10; minute++ {
		s.send(inbox, 3)
		if sig := probe(minute); len(sig) > 0 {
			t.Fatalf("minute %d, a draining queue: %+v", minute, sig)
		}
		s.delete(inbox, s.receive(inbox, 10))
	}
	// The consumer stops; the producer does not.
	for ; minute < 26; minute++ {
		s.send(inbox, 2)
		sig := probe(minute)
		if want := map[bool]rules.Level{true: rules.Trigger, false: 0}[minute >= 10+15]; level(sig, rules.RuleQueueBacklog) < want ||
			minute < 10+5 && level(sig, rules.RuleQueueBacklog) != 0 {
			t.Fatalf("minute %d (stopped at 10): %+v", minute, sig)
		}
	}
	if got := hist[len(hist)-1].Values[model.ValueQueueDepth]; got != 32 {
		t.Fatalf("depth %v after 16 minutes of 2 a minute", got)
	}
	// It comes back and fails two messages twice: dead letters.
	for i := 0; i < 2; i++ {
		s.giveBack(inbox, s.receive(inbox, 2))
	}
	sig := probe(minute)
	if level(sig, rules.RuleDeadLetters) != rules.Trigger || hist[len(hist)-1].Values[model.ValueDLQDepth] != 2 {
		t.Fatalf("dead letters: %+v %v", sig, hist[len(hist)-1].Values)
	}
	minute++
	// Then it works the backlog off: no backlog; the dead letters still wait.
	for len(s.receive(inbox, 10)) > 0 {
	}
	s.delete(inbox, nil)
	for {
		h := s.receive(inbox, 10)
		if len(h) == 0 {
			break
		}
		s.delete(inbox, h)
	}
	sig = probe(minute)
	if level(sig, rules.RuleQueueBacklog) != 0 || level(sig, rules.RuleDeadLetters) != rules.Hold {
		t.Fatalf("worked off: %+v %v", sig, hist[len(hist)-1].Values)
	}
}
