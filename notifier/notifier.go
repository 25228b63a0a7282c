// Package notifier delivers alert transitions to receivers (PagerDuty, Slack)
// through a durable outbox: each notification is a row written with the
// transition, delivered by a worker with backoff and jitter, in order per
// alert and receiver, with the receiver's rate limit respected.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/model"
)

// Message is one transition to deliver.
type Message struct {
	Event        model.TransitionKind
	Alert        model.Alert
	Ref          string // for a resolve: the receiver's ref of the firing (a Slack message)
	DashboardURL string
	// GroupKey is set for a grouped notification; Group lists the alerts it
	// carries (at least Alert).
	GroupKey string
	Group    []model.Alert
}

// Grouped reports whether the message stands for a group of alerts.
func (m *Message) Grouped() bool { return m.GroupKey != "" }

// GroupSummary is one line for a group: how many, the group, which jobs.
func (m *Message) GroupSummary() string {
	if len(m.Group) <= 1 {
		return m.Alert.Summary
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d alerts (%s): ", len(m.Group), m.GroupKey)
	for i, a := range m.Group {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Tenant + "/" + a.Job)
	}
	return b.String()
}

// Notifier delivers messages to one receiver. It returns the receiver's ref
// for the message (a Slack ts) or an error; wrap errors in *Error to say
// whether a retry could help.
type Notifier interface {
	Notify(ctx context.Context, m Message) (ref string, err error)
}

// Error is a failed delivery with its verdict.
type Error struct {
	Retry      bool          // worth trying again
	RetryAfter time.Duration // the receiver asked to wait this long (429)
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Classify turns an HTTP answer into a verdict: 429 and 5xx are retried (429
// after Retry-After), other 4xx are not.
func Classify(status int, retryAfter string, err error) *Error {
	e := &Error{Err: err}
	switch {
	case status == http.StatusTooManyRequests:
		e.Retry = true
		e.RetryAfter = ParseRetryAfter(retryAfter, time.Now())
	case status >= 500, status == http.StatusRequestTimeout:
		e.Retry = true
	}
	return e
}

// Transport classifies an error that never got an HTTP answer: network
// failures and timeouts are retried.
func Transport(err error) *Error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Retry: true, Err: fmt.Errorf("timeout: %w", err)}
	}
	// Refused and dropped connections (url.Error wrapping io.EOF, ECONNRESET).
	return &Error{Retry: true, Err: err}
}

// ParseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Clip shortens s to n bytes, marking the cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return model.Clip(s, n)
	}
	return model.Clip(s, n-3) + "..."
}

// Details are the alert's facts for a receiver's custom fields.
func Details(a model.Alert) map[string]any {
	d := map[string]any{"rule": a.Rule, "tenant": a.Tenant, "job": a.Job, "severity": a.Severity}
	if a.RunID != "" {
		d["run_id"] = a.RunID
	}
	if !a.Night.IsZero() {
		d["night"] = a.Night.Format(time.RFC3339)
	}
	for k, v := range a.Details {
		d[k] = v
	}
	return d
}

// Scrub removes secrets from an error text: each secret, its encoded forms
// and any 8-character part of it (internal/redact), keeping the verdict.
func Scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var all []string
	for _, s := range secrets {
		all = append(all, redact.SecretURL(s)...) // a webhook URL: its path, not its host
	}
	red := redact.New(all...)
	msg := err.Error()
	out := red.String(msg)
	if out == msg {
		return err
	}
	var ne *Error
	if errors.As(err, &ne) {
		return &Error{Retry: ne.Retry, RetryAfter: ne.RetryAfter, Err: errors.New(out)}
	}
	return errors.New(out)
}
