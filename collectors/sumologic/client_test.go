package sumologic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
)

// fakeSumo follows the Search Job API: basic auth; a job's follow-up calls
// need the session cookie set when it was created (404 without); states move
// NOT STARTED -> GATHERING RESULTS -> DONE GATHERING RESULTS (or CANCELLED);
// messages and records are paged by offset and limit (at most 10,000).
type fakeSumo struct {
	mu          sync.Mutex
	messages    int
	records     int
	cancelAt    int // poll number at which the job is cancelled (0: never)
	limited     int // answer this many requests 429 rate.limit.exceeded
	garbage     bool
	polls       int
	deleted     []string
	maxLimitArg int
	requests    int
}

func (f *fakeSumo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	w.Header().Set("Content-Type", "application/json")
	if id, key, ok := r.BasicAuth(); !ok || id != "suABC" || key != "sumo-secret-key" {
		w.WriteHeader(401)
		io.WriteString(w, `{"status":401,"id":"X","code":"unauthorized","message":"Credential could not be verified."}`)
		return
	}
	if f.limited > 0 {
		f.limited--
		w.WriteHeader(429)
		io.WriteString(w, `{"status":429,"id":"X","code":"rate.limit.exceeded","message":"Rate limit exceeded."}`)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/api/v1/search/jobs")
	if r.Method == "POST" && path == "" {
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "s3ss10n", Path: "/"})
		w.WriteHeader(202)
		io.WriteString(w, `{"id":"J1","link":{"rel":"self","href":"/api/v1/search/jobs/J1"}}`)
		return
	}
	if c, err := r.Cookie("JSESSIONID"); err != nil || c.Value != "s3ss10n" {
		w.WriteHeader(404)
		io.WriteString(w, `{"status":404,"id":"X","code":"jobid.invalid","message":"Job ID is invalid."}`)
		return
	}
	switch {
	case r.Method == "DELETE" && path == "/J1":
		f.deleted = append(f.deleted, "J1")
		io.WriteString(w, `{"id":"J1"}`)
	case r.Method == "GET" && path == "/J1":
		f.polls++
		if f.garbage {
			io.WriteString(w, `<html>maintenance</html>`)
			return
		}
		state := map[int]string{1: "NOT STARTED", 2: "GATHERING RESULTS"}[f.polls]
		if state == "" {
			state = "DONE GATHERING RESULTS"
		}
		if f.cancelAt > 0 && f.polls >= f.cancelAt {
			state = "CANCELLED"
		}
		fmt.Fprintf(w, `{"state":%q,"messageCount":%d,"recordCount":%d,"pendingWarnings":[],"pendingErrors":[]}`, state, f.messages, f.records)
	case r.Method == "GET" && (path == "/J1/messages" || path == "/J1/records"):
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		lim, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if lim > f.maxLimitArg {
			f.maxLimitArg = lim
		}
		kind, total := "messages", f.messages
		if strings.HasSuffix(path, "records") {
			kind, total = "records", f.records
		}
		var items []map[string]any
		for i := off; i < min(off+lim, total); i++ {
			items = append(items, map[string]any{"map": map[string]string{"_raw": fmt.Sprintf("line %d", i), "tenant": "dade", "_count": "1"}})
		}
		b, _ := json.Marshal(map[string]any{"fields": []any{}, kind: items})
		w.Write(b)
	default:
		w.WriteHeader(404)
	}
}

func client(t *testing.T, f *fakeSumo) *Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := Config{BaseURL: srv.URL, AccessID: "suABC", AccessKey: "sumo-secret-key", PollInterval: time.Millisecond,
		RequestsPerSecond: 4, Timeout: 20 * time.Second}
	var p config.Problems
	c.Validate(&p, "sumo")
	if p.Len() != 0 {
		t.Fatal(p)
	}
	cl := New(c)
	cl.limiter.SetLimit(1000) // keep the test fast; the limit is tested on its own
	return cl
}

var q = Query{Query: `_sourceCategory=importer error`, From: time.Date(2026, 9, 1, 5, 0, 0, 0, time.UTC), To: time.Date(2026, 9, 1, 5, 15, 0, 0, time.UTC)}

func TestSearchFollowsTheJobToTheLastPage(t *testing.T) {
	f := &fakeSumo{messages: 25000, records: 3}
	res, err := client(t, f).Search(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 25000 || len(res.Records) != 3 || res.Messages[24999]["_raw"] != "line 24999" {
		t.Fatalf("%d messages, %d records", len(res.Messages), len(res.Records))
	}
	if f.polls != 3 || f.maxLimitArg != 10000 || len(f.deleted) != 1 {
		t.Fatalf("polls %d, page limit %d, deleted %v", f.polls, f.maxLimitArg, f.deleted)
	}
}

func TestRateLimitedRequestsAreRetried(t *testing.T) {
	f := &fakeSumo{messages: 1, limited: 2}
	c := client(t, f)
	c.backoff.Base = time.Millisecond
	if _, err := c.Search(context.Background(), q); err != nil {
		t.Fatalf("429s were not ridden out: %v", err)
	}
}

func TestCancelledJobIsAnErrorAndDeleted(t *testing.T) {
	f := &fakeSumo{messages: 1, cancelAt: 2}
	_, err := client(t, f).Search(context.Background(), q)
	if !errors.Is(err, ErrCancelled) || len(f.deleted) != 1 {
		t.Fatalf("err %v, deleted %v", err, f.deleted)
	}
}

func TestWithoutTheCookieTheJobIsNotFound(t *testing.T) {
	f := &fakeSumo{messages: 1}
	c := client(t, f)
	c.http.Jar = nil
	_, err := c.Search(context.Background(), q)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "jobid.invalid" {
		t.Fatalf("err = %v", err)
	}
}

func TestGarbageIsNamedAndTheJobStillDeleted(t *testing.T) {
	f := &fakeSumo{messages: 1, garbage: true}
	_, err := client(t, f).Search(context.Background(), q)
	if err == nil || !strings.Contains(err.Error(), "not JSON") || len(f.deleted) != 1 {
		t.Fatalf("err %v, deleted %v", err, f.deleted)
	}
	if strings.Contains(err.Error(), "sumo-secret-key") {
		t.Fatal("the access key leaked")
	}
}

func TestRequestRateStaysUnderTheLimit(t *testing.T) {
	f := &fakeSumo{messages: 1}
	c := client(t, f)
	c.limiter.SetLimit(4)
	start := time.Now()
	if _, err := c.Search(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	// At 4 a second with a burst of 1, n requests take at least (n-1)/4 s.
	if el := time.Since(start); f.requests < 5 || el < time.Duration(f.requests-1)*240*time.Millisecond {
		t.Fatalf("%d requests in %v: over 4 a second", f.requests, el)
	}
}
