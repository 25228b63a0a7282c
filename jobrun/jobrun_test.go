package jobrun

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/etlhub/etlhub/model"
)

// The tail is bounded in bytes and lines, whatever the command writes, and
// safe to show: a cut in the middle of a character or an escape sequence
// leaves neither half.
func TestTailIsBoundedAndClean(t *testing.T) {
	r := &ring{max: ringBytes}
	line := "\x1b[1;31mé ERROR\x1b[0m " + strings.Repeat("x", 90) + "\n"
	for range 3000 { // about 300 KiB, written in odd pieces
		for i := 0; i < len(line); i += 7 {
			r.Write([]byte(line[i:min(i+7, len(line))]))
		}
	}
	r.Write([]byte("progress 10%\rprogress 100%\nbad \xff byte\n"))
	if len(r.buf) > ringBytes {
		t.Fatalf("the ring holds %d bytes", len(r.buf))
	}
	got := r.tail(3, TailBytes)
	want := "…\né ERROR " + strings.Repeat("x", 90) + "\nprogress 100%\nbad \uFFFD byte"
	if got != want {
		t.Fatalf("tail = %q, want %q", got, want)
	}
	all := r.tail(0, TailBytes)
	if len(all) > TailBytes || !utf8.ValidString(all) || strings.ContainsRune(all, 0x1b) || !strings.HasPrefix(all, "…\n") ||
		!strings.HasSuffix(all, "bad \uFFFD byte") {
		t.Fatalf("tail of all lines: %d bytes, %.60q … %.30q", len(all), all, all[max(0, len(all)-30):])
	}
	if got := (&ring{max: 16}).tail(5, TailBytes); got != "" {
		t.Fatalf("no output gave %q", got)
	}
}

type hubStub struct {
	mu    sync.Mutex
	paths []string
	codes []int // answers in order, then 200
}

func (h *hubStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.paths = append(h.paths, r.URL.Path+"?"+r.URL.RawQuery)
	code := 200
	if len(h.codes) > 0 {
		code, h.codes = h.codes[0], h.codes[1:]
	}
	if code == 404 {
		w.WriteHeader(404)
		w.Write([]byte(`{"error":{"code":"not_found","message":"no such ping key"}}`))
		return
	}
	if code == 429 {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	w.Write([]byte(`{"run_id":"x","state":"running","duplicate":false}`))
}

const key = "test-ping-key-0123456789"

func reporterFor(t *testing.T, h *hubStub, stderr *bytes.Buffer) *reporter {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{Hub: srv.URL + "/", Key: key, Job: model.JobKey{Tenant: "dade", Job: "export"}, Stderr: stderr}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return newReporter(cfg)
}

// A 5xx and a 429 are tried again (after Retry-After); an unknown key is
// not, and is said once, without the key.
func TestReporterRetries(t *testing.T) {
	var stderr bytes.Buffer
	h := &hubStub{codes: []int{503, 429}}
	r := reporterFor(t, h, &stderr)
	began := time.Now()
	if !r.send(t.Context(), "start", "") {
		t.Fatalf("start not taken after a 503 and a 429; stderr: %s", stderr.String())
	}
	if len(h.paths) != 3 || time.Since(began) < time.Second {
		t.Fatalf("calls %v in %v, want 3 and Retry-After honoured", h.paths, time.Since(began))
	}
	if p := h.paths[0]; !strings.HasPrefix(p, "/ping/"+key+"/start?rid=") {
		t.Fatalf("path %q", p)
	}
	if stderr.Len() != 0 {
		t.Fatalf("warned for a call that was taken: %s", stderr.String())
	}

	h = &hubStub{codes: []int{404, 404, 404, 404}}
	r = reporterFor(t, h, &stderr)
	if r.send(t.Context(), "heartbeat", "") || r.send(t.Context(), "3", "out", "duration", "1.5") {
		t.Fatal("a ping to an unknown key was taken")
	}
	if len(h.paths) != 2 {
		t.Fatalf("calls %v: a 404 was tried again", h.paths)
	}
	msg := stderr.String()
	if strings.Count(msg, "etlhub run:") != 1 || !strings.Contains(msg, "it does not know this ping key") || strings.Contains(msg, key) {
		t.Fatalf("stderr = %q", msg)
	}
}

func TestConfigErrorsNeverShowTheKey(t *testing.T) {
	for _, c := range []Config{
		{Hub: "http://h", Key: "short", Job: model.JobKey{Tenant: "a", Job: "b"}},
		{Hub: "http://h", Key: "has/a/slash/in/it/0123", Job: model.JobKey{Tenant: "a", Job: "b"}},
		{Hub: "ftp://user:hunter2hunter2@h", Key: key, Job: model.JobKey{Tenant: "a", Job: "b"}},
		{Hub: "http://h", Key: key, Job: model.JobKey{Tenant: "a", Job: "b"}, Heartbeat: time.Millisecond},
		{Hub: "http://h", Key: key},
	} {
		err := c.Validate()
		if err == nil {
			t.Fatalf("%+v passed", c)
		}
		if strings.Contains(err.Error(), c.Key) || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error shows a secret: %v", err)
		}
	}
}
