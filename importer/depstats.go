package importer

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/internal/breaker"
)

// depWindow is how far back the per-dependency call figures look.
const depWindow = 5 * time.Minute

// maxDepCalls bounds the calls kept per dependency (the newest).
const maxDepCalls = 2048

// depStats is what the importer sees of each dependency it calls (redis,
// mongo, sftp:TENANT): the recent calls' durations and outcomes, and the
// calls under way. The zero value is ready.
type depStats struct {
	mu   sync.Mutex
	deps map[string]*depCalls
}

type depCalls struct {
	calls    []depCall // in time order, bounded
	inFlight int
}

type depCall struct {
	at     time.Time
	d      time.Duration
	failed bool
}

// begin counts a call under way to dep; end records its outcome (answered
// or failed), abandon forgets it (cancelled: it says nothing of dep).
func (s *depStats) begin(dep string) (end func(failed bool), abandon func()) {
	s.mu.Lock()
	if s.deps == nil {
		s.deps = map[string]*depCalls{}
	}
	c := s.deps[dep]
	if c == nil {
		c = &depCalls{}
		s.deps[dep] = c
	}
	c.inFlight++
	s.mu.Unlock()
	start := time.Now()
	var once sync.Once
	end = func(failed bool) {
		once.Do(func() {
			now := time.Now()
			s.mu.Lock()
			defer s.mu.Unlock()
			c.inFlight--
			c.calls = append(c.calls, depCall{at: now, d: now.Sub(start), failed: failed})
			if len(c.calls) > maxDepCalls {
				c.calls = append(c.calls[:0:0], c.calls[len(c.calls)-maxDepCalls:]...)
			}
		})
	}
	abandon = func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			c.inFlight--
		})
	}
	return end, abandon
}

// DependencyStat is one dependency as GET /api/v1/dependencies serves it:
// the calls of the last window_s seconds (latency quantiles and the share
// that failed), the calls under way and the breaker's state.
type DependencyStat struct {
	Name      string        `json:"name"`
	Calls     int           `json:"calls"`
	Errors    int           `json:"errors"`
	ErrorRate *float64      `json:"error_rate,omitempty"`
	P50Ms     *float64      `json:"p50_ms,omitempty"`
	P95Ms     *float64      `json:"p95_ms,omitempty"`
	InFlight  int           `json:"in_flight"`
	Breaker   breaker.State `json:"breaker"`
	LastError string        `json:"last_error,omitempty"`
	WindowS   int           `json:"window_s"`
}

// Dependencies is what the importer sees of each dependency now: every
// dependency with a breaker, sorted by name.
func (im *Importer) Dependencies(now time.Time) []DependencyStat {
	im.guard.deps.mu.Lock()
	defer im.guard.deps.mu.Unlock()
	names := make([]string, 0, len(im.guard.breakers))
	for n := range im.guard.breakers {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]DependencyStat, 0, len(names))
	cut := now.Add(-depWindow)
	for _, n := range names {
		b := im.guard.breakers[n].Snapshot()
		st := DependencyStat{Name: n, Breaker: b.State, WindowS: int(depWindow / time.Second)}
		if b.State != breaker.Closed {
			st.LastError = b.LastError
		}
		if c := im.guard.deps.deps[n]; c != nil {
			st.InFlight = c.inFlight
			i := sort.Search(len(c.calls), func(i int) bool { return !c.calls[i].at.Before(cut) })
			recent := c.calls[i:]
			ds := make([]float64, 0, len(recent))
			for _, x := range recent {
				ds = append(ds, float64(x.d.Microseconds())/1000)
				if x.failed {
					st.Errors++
				}
			}
			st.Calls = len(recent)
			if st.Calls > 0 {
				sort.Float64s(ds)
				p50, p95 := ds[(len(ds)-1)*50/100], ds[(len(ds)-1)*95/100]
				rate := float64(st.Errors) / float64(st.Calls)
				st.P50Ms, st.P95Ms, st.ErrorRate = &p50, &p95, &rate
			}
		}
		out = append(out, st)
	}
	return out
}

func (im *Importer) serveDependencies(w http.ResponseWriter, r *http.Request) {
	if !im.authorized(w, r) {
		return
	}
	deps := im.Dependencies(time.Now())
	if t := r.URL.Query().Get("tenant"); t != "" {
		kept := deps[:0]
		for _, d := range deps {
			if !strings.HasPrefix(d.Name, "sftp:") || d.Name == "sftp:"+t {
				kept = append(kept, d)
			}
		}
		deps = kept
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"dependencies": deps, "at": time.Now().UTC()})
}
