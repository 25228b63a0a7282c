package model

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// DependencyKind is what sort of dependency or queue a measurement is of.
type DependencyKind string

const (
	// KindRedis: a Redis server (PING, INFO).
	KindRedis DependencyKind = "redis"
	// KindMongoDB: a MongoDB server (ping, serverStatus).
	KindMongoDB DependencyKind = "mongodb"
	// KindSFTP: one SFTP endpoint (connect, login, list).
	KindSFTP DependencyKind = "sftp"
	// KindStore: the hub's own store (SQLite or PostgreSQL).
	KindStore DependencyKind = "store"
	// KindSQS: an SQS queue.
	KindSQS DependencyKind = "sqs"
	// KindLambda: a Lambda function.
	KindLambda DependencyKind = "lambda"
	// KindHTTP: an HTTP dependency (an ETL system's status API).
	KindHTTP DependencyKind = "http"
)

// DependencyKinds is every kind, the one list validation and display share.
var DependencyKinds = []DependencyKind{KindRedis, KindMongoDB, KindSFTP, KindStore, KindSQS, KindLambda, KindHTTP}

// Valid reports whether k is one of DependencyKinds.
func (k DependencyKind) Valid() bool {
	for _, x := range DependencyKinds {
		if k == x {
			return true
		}
	}
	return false
}

// The documented measurement values. A probe reports those it can; a
// missing name means "not measured", never zero. Other snake_case names are
// accepted (and shown), but the rules read only these.
const (
	// ValueLatencyMs: the probe's round trip (PING, ping, connect+login+list).
	ValueLatencyMs = "latency_ms"
	// ValueConnectMs, ValueLoginMs, ValueListMs: an SFTP probe's steps.
	ValueConnectMs = "connect_ms"
	ValueLoginMs   = "login_ms"
	ValueListMs    = "list_ms"
	// ValueMemoryUsedRatio: used memory over the configured limit (0..1+);
	// absent when the server has no limit.
	ValueMemoryUsedRatio = "memory_used_ratio"
	// ValueMemoryUsedBytes and ValueMemoryMaxBytes: the two sides of it.
	ValueMemoryUsedBytes = "memory_used_bytes"
	ValueMemoryMaxBytes  = "memory_max_bytes"
	// ValueConnectionsUsedRatio: open connections over the most the server
	// takes (Redis maxclients, MongoDB current/(current+available)).
	ValueConnectionsUsedRatio = "connections_used_ratio"
	// ValueConnections: open client connections now.
	ValueConnections = "connections"
	// ValueClientsBlocked: Redis clients blocked in BLPOP, XREAD BLOCK, ...
	ValueClientsBlocked = "clients_blocked"
	// ValueRejectedConnections: connections the server refused since the
	// previous probe of the subject (Redis maxclients; sshd MaxStartups as
	// seen by the probe: its own refused attempts).
	ValueRejectedConnections = "rejected_connections"
	// ValueEvictionsPerS: keys evicted per second since the previous probe.
	ValueEvictionsPerS = "evictions_per_s"
	// ValueOpsPerS: operations per second (Redis instantaneous_ops_per_sec,
	// MongoDB opcounters' rate since the previous probe).
	ValueOpsPerS = "ops_per_s"
	// ValueP50Ms and ValueP95Ms: call latency quantiles as the importer saw
	// its calls to the dependency over its recent window.
	ValueP50Ms = "p50_ms"
	ValueP95Ms = "p95_ms"
	// ValueErrorRate: failed calls over all calls in that window (0..1).
	ValueErrorRate = "error_rate"
	// ValueCalls: calls in that window.
	ValueCalls = "calls"
	// ValueBreakerOpen: 1 when the caller's circuit breaker refuses calls
	// (open), 0.5 half-open, 0 closed.
	ValueBreakerOpen = "breaker_open"
	// ValueInFlight: calls under way now.
	ValueInFlight = "in_flight"

	// An SQS queue (GetQueueAttributes, CloudWatch AWS/SQS):
	// ValueQueueDepth: messages waiting (ApproximateNumberOfMessages).
	ValueQueueDepth = "queue_depth"
	// ValueQueueInFlight: messages received and not yet deleted
	// (ApproximateNumberOfMessagesNotVisible).
	ValueQueueInFlight = "queue_in_flight"
	// ValueQueueDelayed: messages not yet visible (ApproximateNumberOfMessagesDelayed).
	ValueQueueDelayed = "queue_delayed"
	// ValueOldestAgeS: the age in seconds of the oldest message waiting
	// (CloudWatch ApproximateAgeOfOldestMessage, its latest minute).
	ValueOldestAgeS = "oldest_age_s"
	// ValueDLQDepth: messages in the queue's dead-letter queue.
	ValueDLQDepth = "dlq_depth"

	// A Lambda function (CloudWatch AWS/Lambda, over the probe's window):
	// ValueInvocations, ValueErrors and ValueThrottles are counts in the
	// window; ValueDurationAvgMs and ValueP95Ms its durations; the error
	// rate (ValueErrorRate, ValueCalls) is errors over invocations.
	ValueInvocations   = "invocations"
	ValueErrors        = "errors"
	ValueThrottles     = "throttles"
	ValueDurationAvgMs = "duration_avg_ms"
)

// Limits of a measurement.
const (
	MaxSubjectLen   = 256
	MaxValueNameLen = 64
	MaxValues       = 64
)

// Measurement is what a probe saw of one dependency or queue at one moment
// (the contract: docs/architecture.md). Subject names the thing measured,
// "KIND" or "KIND:NAME" ("redis:main", "mongodb:roster", "sftp:host:22",
// "store", "sqs:QUEUE", "lambda:FN"); one subject is one baseline. Up is
// false when the probe could not reach or use it (Error says why).
type Measurement struct {
	At      time.Time      `json:"at"`
	Source  string         `json:"source"`
	Subject string         `json:"subject"`
	Kind    DependencyKind `json:"kind"`
	// Tenant is set for a dependency of one tenant (its SFTP inbox); empty
	// for shared infrastructure. Job, optional, is the job it serves.
	Tenant string             `json:"tenant,omitempty"`
	Job    string             `json:"job,omitempty"`
	Up     bool               `json:"up"`
	Error  string             `json:"error,omitempty"`
	Values map[string]float64 `json:"values,omitempty"`
}

// Validate checks a measurement's fields; the error names the bad one.
func (m *Measurement) Validate() error {
	if m.At.IsZero() {
		return &FieldError{"at", "is required"}
	}
	if err := checkText([]textField{
		{"source", m.Source, MaxNameLen, true},
		{"subject", m.Subject, MaxSubjectLen, true},
		{"tenant", m.Tenant, MaxNameLen, false},
		{"job", m.Job, MaxNameLen, false},
		{"error", m.Error, MaxErrorLen, false},
	}); err != nil {
		return err
	}
	if !m.Kind.Valid() {
		ks := make([]string, len(DependencyKinds))
		for i, k := range DependencyKinds {
			ks[i] = string(k)
		}
		return &FieldError{"kind", fmt.Sprintf("%q is not one of %s", m.Kind, strings.Join(ks, ", "))}
	}
	if m.Subject != string(m.Kind) && !strings.HasPrefix(m.Subject, string(m.Kind)+":") {
		return &FieldError{"subject", fmt.Sprintf("%q does not start with its kind (%q or %q)", m.Subject, m.Kind, string(m.Kind)+":NAME")}
	}
	if strings.ContainsFunc(m.Subject, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return &FieldError{"subject", "contains a control character"}
	}
	if !m.Up && strings.TrimSpace(m.Error) == "" {
		return &FieldError{"error", "is required when up is false (say why)"}
	}
	if len(m.Values) > MaxValues {
		return &FieldError{"values", fmt.Sprintf("has %d entries, at most %d allowed", len(m.Values), MaxValues)}
	}
	for _, name := range m.ValueNames() {
		v := m.Values[name]
		if !validValueName(name) {
			return &FieldError{"values." + Clip(name, MaxValueNameLen), "is not a snake_case name of at most 64 bytes"}
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &FieldError{"values." + name, "is not a finite number"}
		}
		if v < 0 {
			return &FieldError{"values." + name, fmt.Sprintf("%v is negative", v)}
		}
	}
	m.At = m.At.UTC()
	return nil
}

func validValueName(s string) bool {
	if s == "" || len(s) > MaxValueNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// ValueNames lists the measurement's value names, sorted.
func (m *Measurement) ValueNames() []string {
	out := make([]string, 0, len(m.Values))
	for k := range m.Values {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Value returns a named value and whether it was measured.
func (m *Measurement) Value(name string) (float64, bool) {
	v, ok := m.Values[name]
	return v, ok
}
