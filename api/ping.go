package api

// The ping API, as healthchecks.io and Cronitor users know it: a job that
// can run curl reports its runs to /ping/KEY/start, /ping/KEY (success),
// /ping/KEY/fail, /ping/KEY/EXIT-CODE and, while it runs, /ping/KEY/heartbeat.
// A key belongs to exactly one tenant and job (auth.ping_keys); each ping
// becomes one observation through the same ingest path as a push.

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/termtext"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// PingKeyConfig is one ping key: a secret in the URL that lets a job report
// its runs without a bearer token, for one tenant and job only.
type PingKeyConfig struct {
	// Name names the key in logs and as the observations' source (ping:NAME).
	Name string `yaml:"name"`
	// Key is the secret (16 to 128 of A-Z a-z 0-9 - . _ ~), usually "${ENV}".
	Key    config.Secret `yaml:"key"`
	Tenant string        `yaml:"tenant"`
	Job    string        `yaml:"job"`
}

// Limits of the ping API.
const (
	// MaxPingBody bounds a ping's body (the last lines of the job's
	// output); larger bodies are refused with 413 (ingest.max_body_bytes
	// when it is smaller).
	MaxPingBody = 100 << 10
	// PingRate and PingBurst bound the pings of one key (429 beyond).
	PingRate  = 10 // per second
	PingBurst = 100
	// maxRID bounds a client's run id (?rid=).
	maxRID = 128
	// maxPingDuration bounds ?duration= (a run's time before its first ping).
	maxPingDuration = 30 * 24 * time.Hour
)

// validatePingKeys checks auth.ping_keys; a key's value is never shown.
func (a *AuthConfig) validatePingKeys(p *config.Problems, key string) {
	names := map[string]bool{}
	values := map[string]bool{}
	tokens := map[string]bool{}
	for _, t := range a.Tokens {
		tokens[t.Token.Value()] = true
	}
	for i := range a.PingKeys {
		pk := &a.PingKeys[i]
		k := fmt.Sprintf("%s.ping_keys[%d]", key, i)
		if pk.Name == "" {
			p.Add(k+".name", "is required (it names the key in logs and the observations' source)")
		} else if names[pk.Name] {
			p.Add(k+".name", "%q is used twice", pk.Name)
		} else if len(pk.Name) > model.MaxNameLen-len("ping:") {
			p.Add(k+".name", "is longer than %d bytes", model.MaxNameLen-len("ping:"))
		}
		names[pk.Name] = true
		v := pk.Key.Value()
		switch {
		case len(v) < 16 || len(v) > 128:
			p.Add(k+".key", "must be 16 to 128 characters long")
		case !pingKeyChars(v):
			p.Add(k+".key", "may hold only A-Z, a-z, 0-9 and - . _ ~ (it goes in a URL path as it is)")
		case values[v]:
			p.Add(k+".key", "is the same as another ping key's")
		case tokens[v]:
			p.Add(k+".key", "is the same as a bearer token's; a ping key travels in URLs (and proxies' logs): give it its own value")
		}
		values[v] = true
		for _, f := range []struct{ name, v string }{{"tenant", pk.Tenant}, {"job", pk.Job}} {
			switch {
			case strings.TrimSpace(f.v) == "":
				p.Add(k+"."+f.name, "is required: a ping key reports for exactly one tenant and job")
			case len(f.v) > model.MaxNameLen:
				p.Add(k+"."+f.name, "is longer than %d bytes", model.MaxNameLen)
			case strings.IndexFunc(f.v, unicode.IsControl) >= 0:
				p.Add(k+"."+f.name, "holds a control character")
			}
		}
	}
}

func pingKeyChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

type pingKey struct {
	sum         [32]byte
	name        string
	tenant, job string
	limit       *rate.Limiter
}

// pinger holds the keys and serialises the pings of each job, so that a
// start and a finish that race are folded in order.
type pinger struct {
	keys  []pingKey
	rate  float64 // pings a second per key
	locks [64]sync.Mutex
	mu    sync.Mutex
	last  time.Time // the last derived run id's time: ids never repeat
}

func newPinger(keys []PingKeyConfig, perSecond float64, burst int) *pinger {
	if perSecond <= 0 {
		perSecond = PingRate
	}
	if burst <= 0 {
		burst = PingBurst
	}
	p := &pinger{rate: perSecond}
	for _, k := range keys {
		p.keys = append(p.keys, pingKey{sum: sha256.Sum256([]byte(k.Key.Value())), name: k.Name, tenant: k.Tenant, job: k.Job,
			limit: rate.NewLimiter(rate.Limit(perSecond), burst)})
	}
	return p
}

// lookup compares the presented key with every configured one in constant
// time (hashes make the lengths equal; every entry is compared).
func (p *pinger) lookup(key string) *pingKey {
	sum := sha256.Sum256([]byte(key))
	var found *pingKey
	for i := range p.keys {
		if subtle.ConstantTimeCompare(sum[:], p.keys[i].sum[:]) == 1 {
			found = &p.keys[i]
		}
	}
	return found
}

func (p *pinger) lock(k model.JobKey) func() {
	h := fnv.New32a()
	h.Write([]byte(k.Tenant + "\x00" + k.Job))
	m := &p.locks[h.Sum32()%uint32(len(p.locks))]
	m.Lock()
	return m.Unlock
}

// startTime is now, or just after the last derived start, so that two
// starts of one job never derive the same run id.
func (p *pinger) startTime(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !now.After(p.last) {
		now = p.last.Add(time.Nanosecond)
	}
	p.last = now
	return now
}

// PingResult answers a ping.
type PingResult struct {
	// RunID is the run the ping opened, kept alive or closed.
	RunID string      `json:"run_id"`
	State model.State `json:"state"`
	// Duplicate: the run was already in this state; nothing was stored.
	Duplicate bool `json:"duplicate"`
}

// pingKind is what a ping says.
type pingKind int

const (
	pingStart pingKind = iota
	pingHeartbeat
	pingSuccess
	pingFail
)

// parsePingAction reads the last path segment: "" (success), start, fail,
// heartbeat, or an exit code (0 success, 1..255 failure).
func parsePingAction(a string) (kind pingKind, code int, ok bool) {
	switch a {
	case "":
		return pingSuccess, 0, true
	case "start":
		return pingStart, -1, true
	case "heartbeat":
		return pingHeartbeat, -1, true
	case "fail":
		return pingFail, -1, true
	}
	if len(a) > 3 || a == "" || a[0] == '+' || a[0] == '-' {
		return 0, 0, false
	}
	n, err := strconv.Atoi(a)
	if err != nil || n < 0 || n > 255 {
		return 0, 0, false
	}
	if n == 0 {
		return pingSuccess, 0, true
	}
	return pingFail, n, true
}

func (s *server) pingRoutes(r *gin.Engine) {
	for _, path := range []string{"/ping/:key", "/ping/:key/:action"} {
		r.GET(path, s.ping)
		r.POST(path, s.ping)
	}
}

// ping takes one ping. Unknown keys answer 404 and say nothing of the keys
// that exist; the key itself is never logged or answered.
func (s *server) ping(c *gin.Context) {
	k := s.pings.lookup(c.Param("key"))
	if k == nil {
		abort(c, 404, "not_found", "no such ping key")
		return
	}
	// Requests log the key's name, never the key.
	c.Set(principalKey, &principal{name: "ping:" + k.name, tenants: []string{k.tenant}})
	kind, exit, ok := parsePingAction(c.Param("action"))
	if !ok {
		abort(c, 404, "not_found", "a ping is /ping/KEY, /ping/KEY/start, /ping/KEY/heartbeat, /ping/KEY/fail or /ping/KEY/EXIT-CODE (0 to 255)")
		return
	}
	if !k.limit.Allow() {
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(1/s.pings.rate))))
		abort(c, 429, "rate_limited", fmt.Sprintf("more than %g pings a second with this key; slow down", s.pings.rate))
		return
	}
	q, err := readPingQuery(c, kind)
	if err != nil {
		abort(c, 400, "bad_request", err.Error())
		return
	}
	limit := min(s.o.MaxBodyBytes, MaxPingBody)
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		abort(c, 413, "body_too_large", fmt.Sprintf("the body exceeds %d bytes; send the last lines of output only", limit))
		return
	}
	if err != nil {
		abort(c, 400, "bad_request", "could not read the body")
		return
	}

	ctx := c.Request.Context()
	jk := model.JobKey{Tenant: k.tenant, Job: k.job}
	unlock := s.pings.lock(jk)
	defer unlock()
	now := s.o.Now().UTC()
	if err := s.jobs.refresh(ctx, s.o.Store, now); err != nil {
		s.storeError(c, err)
		return
	}
	cur, err := s.pingRun(c, jk, q.rid, kind)
	if err != nil {
		s.storeError(c, err)
		return
	}
	o := model.Observation{At: now, RunStatus: model.RunStatus{Source: "ping:" + k.name, Tenant: k.tenant, Job: k.job}}
	res := PingResult{}
	switch kind {
	case pingStart:
		if cur != nil && cur.State.Terminal() {
			abort(c, 409, "run_finished", fmt.Sprintf("run %q has finished (%s); a new run needs a new rid", cur.RunID, cur.State))
			return
		}
		start := now
		if cur != nil && cur.StartedAt != nil {
			// A repeated start (a retry) keeps the run's start.
			o.RunID, start = cur.RunID, *cur.StartedAt
		} else if q.rid != "" {
			o.RunID = q.rid
		} else {
			start = s.pings.startTime(now)
			o.At = start
			o.RunID = start.Format("2006-01-02T15:04:05.000000000Z")
		}
		o.State, o.StartedAt, o.UpdatedAt = model.StateRunning, &start, &now
		if start.After(now) {
			o.UpdatedAt = &start
		}
	case pingHeartbeat:
		if cur != nil && cur.State.Terminal() {
			abort(c, 409, "run_finished", fmt.Sprintf("run %q has finished (%s); heartbeats keep running runs alive", cur.RunID, cur.State))
			return
		}
		upd := now
		if q.updated != nil {
			upd = *q.updated
		}
		start := now
		switch {
		case cur != nil:
			o.RunID = cur.RunID
			start = startOf(cur)
		case q.rid != "":
			o.RunID = q.rid
		default:
			start = s.pings.startTime(now)
			o.At = start
			o.RunID = start.Format("2006-01-02T15:04:05.000000000Z")
		}
		if upd.Before(start) {
			upd = start
		}
		o.State, o.StartedAt, o.UpdatedAt = model.StateRunning, &start, &upd
	case pingSuccess, pingFail:
		state := model.StateSucceeded
		if kind == pingFail {
			state = model.StateFailed
		}
		start := now
		if q.duration > 0 {
			start = now.Add(-q.duration)
		}
		switch {
		case cur != nil:
			o.RunID, start = cur.RunID, startOf(cur)
			if cur.State == state {
				// A retried finish: the run is closed already.
				c.JSON(200, PingResult{RunID: cur.RunID, State: cur.State, Duplicate: true})
				return
			}
		case q.rid != "":
			o.RunID = q.rid
		default:
			o.RunID = start.Format("2006-01-02T15:04:05.000000000Z")
		}
		end := now
		if start.After(end) {
			// A run started a moment ago by a derived id just after now.
			end = start
			o.At = end
		}
		o.State, o.StartedAt, o.UpdatedAt, o.FinishedAt = state, &start, &end, &end
		if state == model.StateFailed {
			o.Error = failureText(exit, end.Sub(start), termtext.Clean(body))
		}
	}
	if err := o.Validate(); err != nil {
		abort(c, 422, "invalid_observation", err.Error())
		return
	}
	if err := o.CheckClock(now); err != nil {
		abort(c, 422, "invalid_observation", err.Error())
		return
	}
	if why := s.jobs.admit(jk); why != "" {
		abort(c, 422, "invalid_observation", why)
		return
	}
	ir, err := s.o.Ingest.Ingest(ctx, "ping", []model.Observation{o})
	if err != nil {
		s.storeError(c, err)
		return
	}
	res.RunID, res.State, res.Duplicate = o.RunID, o.State, ir.Inserted == 0 && ir.Duplicates > 0
	c.JSON(200, res)
}

// startOf is a run's start, or when the hub first heard of it.
func startOf(r *model.Run) time.Time {
	if r.StartedAt != nil {
		return *r.StartedAt
	}
	return r.FirstSeenAt
}

type pingQuery struct {
	rid      string
	updated  *time.Time
	duration time.Duration
}

// readPingQuery reads rid (a run id of the client's, as healthchecks has),
// updated_at (a heartbeat's last sign of progress) and duration (seconds a
// finished run took, for a run whose start the hub never heard of).
func readPingQuery(c *gin.Context, kind pingKind) (pingQuery, error) {
	var q pingQuery
	if v, ok := c.GetQuery("rid"); ok {
		if v == "" || len(v) > maxRID {
			return q, fmt.Errorf("rid must be 1 to %d characters", maxRID)
		}
		if !pingKeyChars(strings.Map(func(r rune) rune {
			if strings.ContainsRune(":#@+", r) {
				return '-'
			}
			return r
		}, v)) {
			return q, errors.New("rid may hold only A-Z, a-z, 0-9 and - . _ ~ : # @ +")
		}
		q.rid = v
	}
	if v, ok := c.GetQuery("updated_at"); ok {
		if kind != pingHeartbeat {
			return q, errors.New("updated_at belongs to heartbeats")
		}
		t, err := model.ParseTime("updated_at", v)
		if err != nil {
			return q, err
		}
		q.updated = &t
	}
	if v, ok := c.GetQuery("duration"); ok {
		if kind != pingSuccess && kind != pingFail {
			return q, errors.New("duration belongs to success and failure pings")
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > maxPingDuration.Seconds() || f != f {
			return q, fmt.Errorf("duration must be seconds from 0 to %.0f", maxPingDuration.Seconds())
		}
		q.duration = time.Duration(f * float64(time.Second))
	}
	return q, nil
}

// pingRun finds the run a ping is about: the run of rid when given (nil
// when the hub has none), else for a finish or a heartbeat the most recent
// open run of the job (nil when there is none), else nil (a start without
// rid opens a new run).
func (s *server) pingRun(c *gin.Context, k model.JobKey, rid string, kind pingKind) (*model.Run, error) {
	ctx := c.Request.Context()
	if rid != "" {
		runs, err := s.o.Store.RunsByID(ctx, rid, store.Filter{Tenants: []string{k.Tenant}})
		if err != nil {
			return nil, err
		}
		for i := range runs {
			if runs[i].Job == k.Job {
				return &runs[i], nil
			}
		}
		return nil, nil
	}
	if kind == pingStart {
		return nil, nil
	}
	runs, _, err := s.o.Store.Runs(ctx, k, store.Page{Limit: 50})
	if err != nil {
		return nil, err
	}
	oldest := s.o.Now().UTC().Add(-model.MaxAge)
	for i := range runs {
		if !runs[i].State.Terminal() && startOf(&runs[i]).After(oldest) {
			return &runs[i], nil
		}
	}
	return nil, nil
}

// failureText is a failed run's error: what failed, after how long, and the
// end of its output, within model.MaxErrorLen.
func failureText(exit int, took time.Duration, output string) string {
	head := "failed"
	if exit > 0 {
		head = fmt.Sprintf("exit code %d", exit)
	}
	if took > 0 {
		head += " after " + took.Round(time.Millisecond).String()
	}
	if output == "" {
		return head
	}
	return head + "\n" + termtext.Tail(output, model.MaxErrorLen-len(head)-1)
}
