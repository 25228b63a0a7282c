package jobrun

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/internal/retry"
	"github.com/etlhub/etlhub/internal/termtext"
)

// backoff is the wait between the tries of one call to the hub.
var backoff = retry.Policy{Base: 500 * time.Millisecond, Max: 5 * time.Second, Factor: 2, Jitter: 0.5}

// maxRetryAfter caps what a 429's Retry-After may make a call wait.
const maxRetryAfter = 10 * time.Second

// reporter sends one run's pings: every one under the same run id, so that
// a start that never arrived is no harm to the heartbeats and the finish.
type reporter struct {
	ping   string // the hub's /ping/KEY (a secret: never shown)
	hub    string // the hub's address as it may be shown
	rid    string
	job    string
	agent  string
	client *http.Client
	tries  int
	scrub  *redact.Scrubber
	stderr io.Writer
	warned sync.Once
}

func hubURL(hub string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(hub, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--hub %q is not an http:// or https:// URL of the hub", redactedURL(hub))
	}
	return u, nil
}

// redactedURL hides a password in a URL given by the user.
func redactedURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

func newReporter(cfg Config) *reporter {
	u, _ := hubURL(cfg.Hub)
	var b [4]byte
	crand.Read(b[:])
	return &reporter{
		ping:   u.String() + "/ping/" + cfg.Key,
		hub:    u.Redacted(),
		rid:    time.Now().UTC().Format("2006-01-02T15:04:05.000Z") + "-" + hex.EncodeToString(b[:]),
		job:    cfg.Job.Tenant + "/" + cfg.Job.Job,
		agent:  "etlhub-run/" + cfg.Version,
		client: &http.Client{Timeout: cfg.Timeout},
		tries:  cfg.Attempts,
		scrub:  redact.New(cfg.Key),
		stderr: cfg.Stderr,
	}
}

// hubError is a call the hub answered with an error.
type hubError struct {
	status int
	msg    string
	wait   time.Duration // Retry-After of a 429
}

func (e *hubError) Error() string { return e.msg }

// send makes one call (action start, heartbeat, or an exit code), trying
// again on a network error, a 5xx or a 429; it warns on stderr once, for
// the first call that fails, and returns whether the hub took it.
func (r *reporter) send(ctx context.Context, action, body string, query ...string) bool {
	q := url.Values{"rid": {r.rid}}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	u := r.ping + "/" + action + "?" + q.Encode()
	var last error
	for a := 1; a <= r.tries; a++ {
		err := r.call(ctx, u, body)
		if err == nil {
			return true
		}
		last = err
		var he *hubError
		if errors.As(err, &he) && he.status != http.StatusTooManyRequests && he.status < 500 {
			break // the hub refused it: trying again gives the same answer
		}
		if a == r.tries || ctx.Err() != nil {
			break
		}
		d := backoff.Delay(a, rand.Float64())
		if he != nil && he.wait > d {
			d = min(he.wait, maxRetryAfter)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		return false // the run moved on (it finished): not a failure of the hub's
	}
	r.warned.Do(func() {
		what := "the " + action + " ping"
		if _, err := strconv.Atoi(action); err == nil {
			what = "the finish (exit code " + action + ")"
		}
		fmt.Fprintf(r.stderr, "etlhub run: %s: the hub at %s did not take %s: %s; the command is not affected (further hub errors are not shown)\n",
			r.job, r.hub, what, r.scrub.String(last.Error()))
	})
	return false
}

func (r *reporter) call(ctx context.Context, u, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return errors.New("could not make the request")
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", r.agent)
	resp, err := r.client.Do(req)
	if err != nil {
		// A url.Error names the URL, and the URL holds the key: keep only why.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	he := &hubError{status: resp.StatusCode, msg: resp.Status}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
		he.msg += ": " + termtext.Tail(termtext.Clean([]byte(e.Error.Message)), 300)
	}
	if resp.StatusCode == http.StatusNotFound && e.Error.Message == "no such ping key" {
		he.msg = "it does not know this ping key (auth.ping_keys)"
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		he.wait = time.Duration(s) * time.Second
	}
	return he
}
