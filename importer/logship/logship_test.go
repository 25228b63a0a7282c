package logship

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
)

// fakeSource is a Sumo Logic HTTP Source: gzip bodies of lines; faults queued.
type fakeSource struct {
	mu      sync.Mutex
	lines   []map[string]any
	headers http.Header
	faults  []int
	block   chan struct{}
	arrived chan struct{} // when set, told of each request before it blocks
}

func (f *fakeSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.arrived != nil {
		select {
		case f.arrived <- struct{}{}:
		default:
		}
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.faults) > 0 {
		code := f.faults[0]
		f.faults = f.faults[1:]
		w.WriteHeader(code)
		return
	}
	f.headers = r.Header.Clone()
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		w.WriteHeader(400)
		return
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			f.lines = append(f.lines, m)
		}
	}
}

func TestShipsBatchesWithHeadersAndRetries(t *testing.T) {
	src := &fakeSource{faults: []int{503, 429}}
	srv := httptest.NewServer(src)
	defer srv.Close()
	s := New(Config{URL: config.Secret(srv.URL + "/receiver/v1/http/SECRETTOKEN"), Category: "etl/importer", Name: "importer",
		Host: "worker-1", FlushEvery: 20 * time.Millisecond})
	s.policy.Base, s.policy.Max = time.Millisecond, time.Millisecond
	log := slog.New(slog.NewJSONHandler(s, nil))
	for i := 0; i < 250; i++ {
		log.Info("loading", "tenant", "dade", "run_id", "r1", "stage", "loading", "attempt", 1, "i", i)
	}
	s.Close()
	if st := s.Stats(); st.Shipped != 250 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	if len(src.lines) != 250 || src.lines[0]["tenant"] != "dade" || src.lines[249]["i"] != 249.0 {
		t.Fatalf("%d lines arrived", len(src.lines))
	}
	h := src.headers
	if h.Get("Content-Encoding") != "gzip" || h.Get("X-Sumo-Category") != "etl/importer" || h.Get("X-Sumo-Name") != "importer" || h.Get("X-Sumo-Host") != "worker-1" {
		t.Fatalf("headers %v", h)
	}
}

func TestNeverBlocksTheImport(t *testing.T) {
	src := &fakeSource{block: make(chan struct{})}
	srv := httptest.NewServer(src)
	defer srv.Close()
	defer close(src.block)
	s := New(Config{URL: config.Secret(srv.URL), Buffer: 100, BatchLines: 10, FlushEvery: time.Millisecond, Timeout: 100 * time.Millisecond, Attempts: 1})
	defer s.Close()
	start := time.Now()
	for i := 0; i < 100000; i++ {
		fmt.Fprintf(s, `{"msg":"line %d"}`+"\n", i)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("writing 100k lines with the source hung took %v", el)
	}
	if st := s.Stats(); st.Dropped < 90000 {
		t.Fatalf("a full buffer did not drop: %+v", st)
	}
}

// Close while a batch is on the wire waits for it instead of cancelling it.
func TestCloseDeliversTheBatchInFlight(t *testing.T) {
	src := &fakeSource{block: make(chan struct{}), arrived: make(chan struct{}, 1)}
	srv := httptest.NewServer(src)
	defer srv.Close()
	s := New(Config{URL: config.Secret(srv.URL), FlushEvery: time.Millisecond, Timeout: 5 * time.Second})
	for i := 0; i < 10; i++ {
		fmt.Fprintf(s, `{"i":%d}`+"\n", i)
	}
	<-src.arrived // the batch is on the wire and the source holds it
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		close(src.block)
		t.Fatal("Close returned while the batch was still on the wire")
	case <-time.After(50 * time.Millisecond):
	}
	close(src.block)
	<-closed
	if st := s.Stats(); st.Shipped != 10 || st.Dropped != 0 {
		t.Fatalf("closing during a send lost the batch: %+v", st)
	}
}
