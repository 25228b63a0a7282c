package oneroster

import (
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Report is the data-quality report of one upload: counts by code and file,
// with the first examples of each.
type Report struct {
	Version  string                `json:"oneroster_version"`
	Files    map[string]*FileStats `json:"files"`
	Errors   int                   `json:"errors"`
	Warnings int                   `json:"warnings"`
	Groups   []*Group              `json:"findings"`
	index    map[[2]string]*Group
	examples int
}

// Group is every finding of one code in one file.
type Group struct {
	Code     string    `json:"code"`
	Severity Severity  `json:"severity"`
	File     string    `json:"file"`
	Count    int       `json:"count"`
	Examples []Finding `json:"examples"`
}

// NewReport collects findings, keeping up to examples of each code and file.
func NewReport(examples int) *Report {
	if examples <= 0 {
		examples = 5
	}
	return &Report{index: map[[2]string]*Group{}, examples: examples}
}

// Add records one finding (use it as Validate's emit).
func (r *Report) Add(f Finding) {
	k := [2]string{f.Code, f.File}
	g := r.index[k]
	if g == nil {
		g = &Group{Code: f.Code, Severity: f.Severity, File: f.File}
		r.index[k] = g
		r.Groups = append(r.Groups, g)
	}
	g.Count++
	if len(g.Examples) < r.examples {
		g.Examples = append(g.Examples, f)
	}
	if f.Severity == SevError {
		r.Errors++
	} else {
		r.Warnings++
	}
}

// Finish attaches the validation result and sorts the groups (errors first,
// then by count).
func (r *Report) Finish(res Result) *Report {
	r.Version, r.Files = res.Version, res.Files
	sort.SliceStable(r.Groups, func(i, j int) bool {
		a, b := r.Groups[i], r.Groups[j]
		if a.Severity != b.Severity {
			return a.Severity == SevError
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Code+a.File < b.Code+b.File
	})
	return r
}

// Count is how many findings of code the report holds (all files).
func (r *Report) Count(code string) int {
	n := 0
	for _, g := range r.Groups {
		if g.Code == code {
			n += g.Count
		}
	}
	return n
}

// WriteCSV writes the report as a CSV a district can open: one line per
// example, with the count of its code in its file.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"severity", "code", "file", "count", "line", "column", "value", "message"})
	for _, g := range r.Groups {
		for _, e := range g.Examples {
			cw.Write([]string{string(g.Severity), g.Code, g.File, strconv.Itoa(g.Count), strconv.Itoa(e.Line), e.Column, e.Value, e.Message})
		}
	}
	cw.Flush()
	return cw.Error()
}

// Policy decides whether an upload loads.
type Policy struct {
	// RejectStructural refuses an upload with any manifest, file or header error.
	RejectStructural bool `yaml:"reject_structural"`
	// MaxRowErrorPercent refuses it when a file's rows with errors exceed this share.
	MaxRowErrorPercent float64 `yaml:"max_row_error_percent"`
	// MaxDeletePercent refuses a bulk upload that would remove more than this
	// share of an entity's current records (the mass-deletion guard).
	MaxDeletePercent float64 `yaml:"max_delete_percent"`
}

// DefaultPolicy refuses structural errors, more than 5% bad rows in a file,
// and bulk uploads that would delete more than 20% of a roster.
var DefaultPolicy = Policy{RejectStructural: true, MaxRowErrorPercent: 5, MaxDeletePercent: 20}

// Decision is whether to load, and why not.
type Decision struct {
	Load    bool     `json:"load"`
	Reasons []string `json:"reasons,omitempty"`
}

// Decide applies the policy to a report; current is the published roster's
// record count per entity (nil when there is none yet).
func (p Policy) Decide(r *Report, current map[string]int) Decision {
	d := Decision{Load: true}
	no := func(format string, args ...any) {
		d.Load = false
		d.Reasons = append(d.Reasons, fmt.Sprintf(format, args...))
	}
	if p.RejectStructural {
		for _, g := range r.Groups {
			if g.Severity == SevError && (strings.HasPrefix(g.Code, "manifest.") || strings.HasPrefix(g.Code, "file.")) {
				no("%s: %d× %s", g.File, g.Count, g.Code)
			}
		}
	}
	names := make([]string, 0, len(r.Files))
	for n := range r.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := r.Files[n]
		if st.Rows > 0 && p.MaxRowErrorPercent >= 0 {
			if pct := 100 * float64(st.RowsBad) / float64(st.Rows); pct > p.MaxRowErrorPercent {
				no("%s.csv: %.1f%% of rows have errors (%d of %d; at most %.1f%% allowed)", n, pct, st.RowsBad, st.Rows, p.MaxRowErrorPercent)
			}
		}
		cur := current[n]
		if cur == 0 || p.MaxDeletePercent <= 0 {
			continue
		}
		removed := st.ToDelete
		if st.Mode == Bulk && st.Rows < cur {
			removed = cur - st.Rows
		}
		if pct := 100 * float64(removed) / float64(cur); pct > p.MaxDeletePercent {
			no("%s: the upload would remove %d of %d current records (%.1f%%; at most %.1f%% allowed)", n, removed, cur, pct, p.MaxDeletePercent)
		}
	}
	return d
}

// ListedFiles reads a manifest and returns the files it lists as bulk or
// delta (e.g. "users.csv"), for upload detection.
func ListedFiles(r io.Reader) ([]string, error) {
	cr := newCSVReader(r, 0)
	var out []string
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest.csv: %w", err)
		}
		if line == 1 || len(rec) != 2 || !strings.HasPrefix(rec[0], "file.") {
			continue
		}
		if m := Mode(rec[1]); m == Bulk || m == Delta {
			out = append(out, strings.TrimPrefix(rec[0], "file.")+".csv")
		}
	}
}
