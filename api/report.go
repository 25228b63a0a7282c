package api

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/prometheus/client_golang/prometheus"
)

// Reports reads a run's data-quality report from the source the run came
// from (the importer's GET /api/v1/report); ErrNoReport when that source
// keeps none, or has none for the run.
type Reports interface {
	KeepsReports(source string) bool
	Report(ctx context.Context, source, runID string) ([]byte, error)
}

// ErrNoReport is what a Reports returns for a run without a report.
var ErrNoReport = errors.New("no data-quality report")

// QualityReport is a run's data-quality report on the district's page:
// each finding (one code in one file) with what it means, how to fix it and
// examples with their line, column and value. Every string in it comes
// from the files the district uploaded: shown as text only.
type QualityReport struct {
	Version   string         `json:"oneroster_version,omitempty"`
	Errors    int64          `json:"errors"`
	Warnings  int64          `json:"warnings"`
	Truncated bool           `json:"truncated,omitempty"`
	Findings  []QualityGroup `json:"findings"`
}

// QualityGroup is every finding of one code and severity in one file.
type QualityGroup struct {
	Code     string           `json:"code"`
	Severity string           `json:"severity"` // error | warning
	File     string           `json:"file"`
	Count    int64            `json:"count"`
	Meaning  string           `json:"meaning"`
	Fix      string           `json:"fix"`
	Examples []QualityExample `json:"examples"`
}

// QualityExample is one finding: where it is and what was wrong.
type QualityExample struct {
	Line    int    `json:"line,omitempty"`
	Column  string `json:"column,omitempty"`
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
}

// Bounds of a report on the page: a report with more findings is cut
// (Truncated), each string to an excerpt.
const (
	maxReportGroups   = 200
	maxReportExamples = 5
)

// parseReport reads the importer's answer, {"run_id", "report": {...}}.
func parseReport(body []byte) (*QualityReport, error) {
	var in struct {
		Report *QualityReport `json:"report"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, errors.New("the report is not JSON the hub can read: " + model.Clip(err.Error(), 200))
	}
	r := in.Report
	if r == nil {
		return nil, errors.New("the answer holds no report")
	}
	if len(r.Findings) > maxReportGroups {
		r.Findings, r.Truncated = r.Findings[:maxReportGroups], true
	}
	if r.Findings == nil {
		r.Findings = []QualityGroup{}
	}
	r.Version = model.Clip(r.Version, 16)
	for i := range r.Findings {
		g := &r.Findings[i]
		g.Code, g.File, g.Meaning, g.Fix = model.Clip(g.Code, 100), model.Clip(g.File, 200), model.Clip(g.Meaning, 600), model.Clip(g.Fix, 600)
		if g.Severity != "error" {
			g.Severity = "warning"
		}
		if len(g.Examples) > maxReportExamples {
			g.Examples = g.Examples[:maxReportExamples]
		}
		if g.Examples == nil {
			g.Examples = []QualityExample{}
		}
		for j := range g.Examples {
			e := &g.Examples[j]
			e.Column, e.Value, e.Message = model.Clip(e.Column, 200), model.Clip(e.Value, 200), model.Clip(e.Message, 600)
		}
	}
	return r, nil
}

// reportCache keeps what was read of each run's report: a report for ten
// minutes (the importer writes it once), a missing one or a failure for 15
// s, so that pages that refresh every 30 s and on every change do not each
// call the importer.
type reportCache struct {
	mu      sync.Mutex
	entries map[string]reportEntry
	reads   *prometheus.CounterVec
}

type reportEntry struct {
	report *QualityReport
	note   string
	until  time.Time
}

func newReportCache(reg prometheus.Registerer) *reportCache {
	c := &reportCache{entries: map[string]reportEntry{},
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "etlhub_quality_report_reads_total",
			Help: "Reads of runs' data-quality reports from their sources for the district's page, by result (ok, none, failed)."}, []string{"result"})}
	reg.MustRegister(c.reads)
	return c
}

// report is the run's report, or a note for the district saying why there
// is none to show.
func (s *server) report(ctx context.Context, r *model.Run) (*QualityReport, string) {
	if s.o.Reports == nil || r.Source == "" || !s.o.Reports.KeepsReports(r.Source) {
		src := "its source"
		if r.Source != "" {
			src = r.Source
		}
		return nil, "no finding-by-finding report for this run: " + src + " is not one of this hub's importer sources, which keep one; the counts are what it sent"
	}
	key := r.Source + "\x00" + r.RunID
	now := time.Now()
	c := s.reports
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now.Before(e.until) {
		c.mu.Unlock()
		return e.report, e.note
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	body, err := s.o.Reports.Report(ctx, r.Source, r.RunID)
	var e reportEntry
	switch {
	case errors.Is(err, ErrNoReport):
		c.reads.WithLabelValues("none").Inc()
		e = reportEntry{note: "no detailed report from " + r.Source + " for this run (yet)", until: now.Add(15 * time.Second)}
	case err != nil:
		c.reads.WithLabelValues("failed").Inc()
		s.o.Log.Warn("reading a run's data-quality report failed", "source", r.Source, "tenant", r.Tenant, "job", r.Job, "run_id", r.RunID, "error", err)
		e = reportEntry{note: "the detailed report could not be read from " + r.Source + ": " + model.Clip(err.Error(), 300), until: now.Add(15 * time.Second)}
	default:
		rep, perr := parseReport(body)
		if perr != nil {
			c.reads.WithLabelValues("failed").Inc()
			s.o.Log.Warn("a run's data-quality report is unreadable", "source", r.Source, "run_id", r.RunID, "error", perr)
			e = reportEntry{note: "the detailed report from " + r.Source + " is unreadable: " + perr.Error(), until: now.Add(15 * time.Second)}
		} else {
			c.reads.WithLabelValues("ok").Inc()
			e = reportEntry{report: rep, until: now.Add(10 * time.Minute)}
		}
	}
	c.mu.Lock()
	if len(c.entries) >= 1000 {
		for k, x := range c.entries {
			if !now.Before(x.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= 1000 {
			c.entries = map[string]reportEntry{}
		}
	}
	c.entries[key] = e
	c.mu.Unlock()
	return e.report, e.note
}
