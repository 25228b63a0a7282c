// Package model holds etlhub's one status model: observations as collectors
// and the push API deliver them, runs derived from them, and job specs.
package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// State is a run's state as a status source reports it.
type State string

const (
	// StateWaiting: the run exists but has not started work, e.g. awaiting files.
	// Left for running, or for failed when it gives up.
	StateWaiting State = "waiting"
	// StateRunning: the run is working (downloading, validating, loading, ...).
	// Left for succeeded or failed; a running run whose updated_at stops moving is hung.
	StateRunning State = "running"
	// StateSucceeded: terminal; the run finished and its result is published.
	StateSucceeded State = "succeeded"
	// StateFailed: terminal for this attempt; a retry is a new run_id.
	StateFailed State = "failed"
)

// Valid reports whether s is one of the four states.
func (s State) Valid() bool {
	switch s {
	case StateWaiting, StateRunning, StateSucceeded, StateFailed:
		return true
	}
	return false
}

// Terminal reports whether no further progress is expected for this run.
func (s State) Terminal() bool { return s == StateSucceeded || s == StateFailed }

// Limits on string fields; longer values are rejected, not truncated.
const (
	MaxNameLen  = 128
	MaxRunIDLen = 256
	MaxStageLen = 64
	MaxErrorLen = 4096
	MaxURLLen   = 2048
)

// Bounds on an observation's times. A job's times (started_at, updated_at,
// finished_at, files_arrived_at) may be at most MaxSkew after its "at" (the
// clocks of two machines differ a little) and at most MaxAge before it
// (MaxFilesAge for files_arrived_at: an upload's files may keep old
// modification times); "at" may be at most MaxSkew after the hub's clock.
const (
	MaxSkew     = 10 * time.Minute
	MaxAge      = 30 * 24 * time.Hour
	MaxFilesAge = 366 * 24 * time.Hour
)

// Quality is a run's data-quality summary.
type Quality struct {
	Errors   int64 `json:"errors"`
	Warnings int64 `json:"warnings"`
}

// Observation is what a collector saw of one run at one moment (the contract: docs/architecture.md).
type Observation struct {
	At time.Time `json:"at"`
	RunStatus
	FilesArrivedAt *time.Time `json:"files_arrived_at,omitempty"`
	Attempt        int        `json:"attempt,omitempty"`
	Quality        *Quality   `json:"quality,omitempty"`
	URL            string     `json:"url,omitempty"`
}

// wire is the JSON shape with times as strings, so that a bad time names its field.
type wire struct {
	At             *string  `json:"at"`
	Source         string   `json:"source"`
	Tenant         string   `json:"tenant"`
	Job            string   `json:"job"`
	RunID          string   `json:"run_id"`
	State          string   `json:"state"`
	Stage          Stage    `json:"stage"`
	StartedAt      *string  `json:"started_at"`
	UpdatedAt      *string  `json:"updated_at"`
	FinishedAt     *string  `json:"finished_at"`
	RowsDone       int64    `json:"rows_done"`
	RowsTotal      int64    `json:"rows_total"`
	Error          string   `json:"error"`
	FilesArrivedAt *string  `json:"files_arrived_at"`
	Attempt        int      `json:"attempt"`
	Quality        *Quality `json:"quality"`
	URL            string   `json:"url"`
}

// FieldError names the field of an observation that is wrong.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Msg) }

// DecodeOptions control how strict Decode is.
type DecodeOptions struct {
	// Strict rejects unknown fields (the push API); collectors are lenient.
	Strict bool
	// DefaultAt is used when "at" is absent; zero means "at" is required.
	DefaultAt time.Time
	// DefaultSource is used when "source" is absent.
	DefaultSource string
}

// Decode parses one JSON observation and validates it.
func Decode(data []byte, opt DecodeOptions) (Observation, error) {
	var w wire
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if opt.Strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&w); err != nil {
		return Observation{}, describeJSONError(err)
	}
	if dec.More() {
		return Observation{}, errors.New("trailing data after the observation")
	}
	o := Observation{
		RunStatus: RunStatus{
			Source: w.Source, Tenant: w.Tenant, Job: w.Job, RunID: w.RunID,
			State: State(w.State), Stage: w.Stage, RowsDone: w.RowsDone, RowsTotal: w.RowsTotal,
			Error: w.Error,
		}, Attempt: w.Attempt, Quality: w.Quality, URL: w.URL,
	}
	if o.Source == "" {
		o.Source = opt.DefaultSource
	}
	if w.At == nil {
		if opt.DefaultAt.IsZero() {
			return Observation{}, &FieldError{"at", "is required"}
		}
		o.At = opt.DefaultAt.UTC()
	} else {
		t, err := ParseTime("at", *w.At)
		if err != nil {
			return Observation{}, err
		}
		o.At = t
	}
	for _, f := range []struct {
		name string
		in   *string
		out  **time.Time
	}{
		{"started_at", w.StartedAt, &o.StartedAt},
		{"updated_at", w.UpdatedAt, &o.UpdatedAt},
		{"finished_at", w.FinishedAt, &o.FinishedAt},
		{"files_arrived_at", w.FilesArrivedAt, &o.FilesArrivedAt},
	} {
		if f.in == nil || *f.in == "" {
			continue
		}
		t, err := ParseTime(f.name, *f.in)
		if err != nil {
			return Observation{}, err
		}
		*f.out = &t
	}
	return o, o.Validate()
}

func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &FieldError{te.Field, fmt.Sprintf("expected %s, got %s", te.Type, te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return &FieldError{strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`), "unknown field"}
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// ParseTime parses an RFC 3339 time and returns it in UTC; field names the error.
func ParseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &FieldError{field, fmt.Sprintf("%q is not an RFC 3339 time", s)}
	}
	if t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}, &FieldError{field, fmt.Sprintf("%q is out of range", s)}
	}
	return t.UTC(), nil
}

// textField is a text field to check: its name (for the error), value,
// length limit and whether it is required.
type textField struct {
	name, v  string
	max      int
	required bool
}

// checkText checks text fields in order; the error names the first bad one.
func checkText(fields []textField) error {
	for _, f := range fields {
		if f.required && strings.TrimSpace(f.v) == "" {
			return &FieldError{f.name, "is required"}
		}
		if len(f.v) > f.max {
			return &FieldError{f.name, fmt.Sprintf("is %d bytes long, at most %d allowed", len(f.v), f.max)}
		}
		if strings.ContainsAny(f.v, "\x00") {
			return &FieldError{f.name, "contains a NUL byte"}
		}
	}
	return nil
}

// Validate checks an observation's fields.
func (o *Observation) Validate() error {
	if o.At.IsZero() {
		return &FieldError{"at", "is required"}
	}
	if err := checkText([]textField{
		{"source", o.Source, MaxNameLen, true},
		{"tenant", o.Tenant, MaxNameLen, true},
		{"job", o.Job, MaxNameLen, true},
		{"run_id", o.RunID, MaxRunIDLen, true},
		{"stage", string(o.Stage), MaxStageLen, false},
		{"error", o.Error, MaxErrorLen, false},
		{"url", o.URL, MaxURLLen, false},
	}); err != nil {
		return err
	}
	if !o.State.Valid() {
		return &FieldError{"state", fmt.Sprintf("%q is not one of waiting, running, succeeded, failed", o.State)}
	}
	if o.RowsDone < 0 {
		return &FieldError{"rows_done", fmt.Sprintf("%d is negative", o.RowsDone)}
	}
	if o.RowsTotal < 0 {
		return &FieldError{"rows_total", fmt.Sprintf("%d is negative", o.RowsTotal)}
	}
	if o.Attempt < 0 {
		return &FieldError{"attempt", fmt.Sprintf("%d is negative", o.Attempt)}
	}
	if q := o.Quality; q != nil && (q.Errors < 0 || q.Warnings < 0) {
		return &FieldError{"quality", "counts must not be negative"}
	}
	for _, f := range o.times() {
		if *f.t == nil {
			continue
		}
		t := **f.t
		if d := t.Sub(o.At); d > MaxSkew {
			return &FieldError{f.name, fmt.Sprintf("%s is %v after \"at\" (%s); at most %v is allowed",
				t.Format(time.RFC3339), d.Round(time.Second), o.At.Format(time.RFC3339), MaxSkew)}
		}
		if d := o.At.Sub(t); d > f.maxAge {
			return &FieldError{f.name, fmt.Sprintf("%s is %v before \"at\" (%s); at most %v is allowed",
				t.Format(time.RFC3339), d.Round(time.Second), o.At.Format(time.RFC3339), f.maxAge)}
		}
	}
	if o.StartedAt != nil && o.FinishedAt != nil && o.FinishedAt.Before(*o.StartedAt) {
		return &FieldError{"finished_at", "is before started_at"}
	}
	o.At = o.At.UTC()
	return nil
}

type timeField struct {
	name   string
	t      **time.Time
	maxAge time.Duration
}

func (o *Observation) times() [4]timeField {
	return [4]timeField{{"started_at", &o.StartedAt, MaxAge}, {"updated_at", &o.UpdatedAt, MaxAge},
		{"finished_at", &o.FinishedAt, MaxAge}, {"files_arrived_at", &o.FilesArrivedAt, MaxFilesAge}}
}

func plausible(t *time.Time, at time.Time, maxAge time.Duration) bool {
	return t == nil || (!t.After(at.Add(MaxSkew)) && !t.Before(at.Add(-maxAge)))
}

// TimesPlausible reports whether every time of o lies within the bounds
// around its "at" that Validate checks.
func TimesPlausible(o *Observation) bool {
	return plausible(o.StartedAt, o.At, MaxAge) && plausible(o.UpdatedAt, o.At, MaxAge) &&
		plausible(o.FinishedAt, o.At, MaxAge) && plausible(o.FilesArrivedAt, o.At, MaxFilesAge)
}

// DropImplausibleTimes clears the times of o that lie outside the bounds
// (the rules' defence against an observation stored before they were checked).
func DropImplausibleTimes(o *Observation) {
	for _, f := range o.times() {
		if !plausible(*f.t, o.At, f.maxAge) {
			*f.t = nil
		}
	}
}

// CheckClock refuses an observation from the future: "at" more than
// MaxSkew after now.
func (o *Observation) CheckClock(now time.Time) error {
	if o.At.After(now.Add(MaxSkew)) {
		return &FieldError{"at", fmt.Sprintf("%s is more than %v in the future", o.At.Format(time.RFC3339), MaxSkew)}
	}
	return nil
}

// Hash identifies an observation's content apart from when it was observed, so
// that an unchanged repeat is stored once.
func (o *Observation) Hash() string {
	h := sha256.New()
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	q := "-"
	if o.Quality != nil {
		q = fmt.Sprintf("%d/%d", o.Quality.Errors, o.Quality.Warnings)
	}
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%s\x00%s\x00%d\x00%s\x00%s",
		o.Source, o.Tenant, o.Job, o.RunID, o.State, o.Stage, ts(o.StartedAt), ts(o.UpdatedAt), ts(o.FinishedAt),
		o.RowsDone, o.RowsTotal, o.Error, ts(o.FilesArrivedAt), o.Attempt, q, o.URL)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Clip shortens s to at most n bytes on a rune boundary.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
