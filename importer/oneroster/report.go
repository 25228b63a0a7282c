package oneroster

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Report is the data-quality report of one upload: exact counts by code and
// file, with the first examples of each. Its size is bounded whatever the
// upload holds: at most MaxGroups groups (further files of a code are counted
// in one "(other files)" group), a few examples each, and every string in
// them cut to an excerpt.
type Report struct {
	Version   string                `json:"oneroster_version"`
	Files     map[string]*FileStats `json:"files"`
	Errors    int                   `json:"errors"`
	Warnings  int                   `json:"warnings"`
	Groups    []*Group              `json:"findings"`
	Truncated bool                  `json:"truncated,omitempty"` // some files' groups were merged
	index     map[groupKey]*Group
	examples  int
}

// MaxGroups bounds the groups of a report (code × file × severity).
const MaxGroups = 200

// OtherFiles is the File of the group that counts a code's findings in the
// files beyond MaxGroups.
const OtherFiles = "(other files)"

type groupKey struct {
	code, file string
	sev        Severity
}

// Group is every finding of one code and severity in one file, with what
// the code means and how to fix it.
type Group struct {
	Code     string    `json:"code"`
	Severity Severity  `json:"severity"`
	File     string    `json:"file"`
	Count    int       `json:"count"`
	Meaning  string    `json:"meaning"`
	Fix      string    `json:"fix"`
	Examples []Finding `json:"examples"`
}

// NewReport collects findings, keeping up to examples (at most 20) of each
// code and file.
func NewReport(examples int) *Report {
	if examples <= 0 {
		examples = 5
	}
	return &Report{index: map[groupKey]*Group{}, examples: min(examples, 20)}
}

// Add records one finding (use it as Validate's emit).
func (r *Report) Add(f Finding) {
	if f.Severity == SevError {
		r.Errors++
	} else {
		r.Warnings++
	}
	f.File, f.Column, f.Value, f.Message = excerpt(f.File, 200), excerpt(f.Column, 200), excerpt(f.Value, maxExcerpt), excerpt(f.Message, 600)
	k := groupKey{f.Code, f.File, f.Severity}
	g := r.index[k]
	if g == nil {
		if len(r.Groups) >= MaxGroups {
			r.Truncated = true
			k.file = OtherFiles
			if g = r.index[k]; g == nil {
				g = r.group(k)
			}
		} else {
			g = r.group(k)
		}
	}
	g.Count++
	if len(g.Examples) < r.examples {
		g.Examples = append(g.Examples, f)
	}
}

func (r *Report) group(k groupKey) *Group {
	info, _ := Explain(k.code)
	g := &Group{Code: k.code, Severity: k.sev, File: k.file, Meaning: info.Meaning, Fix: info.Fix}
	r.index[k] = g
	r.Groups = append(r.Groups, g)
	return g
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

// WriteCSV writes the report as a CSV a district can open in a spreadsheet:
// one line per example, with the count of its code in its file and what the
// code means. Every cell is quoted, and a cell that a spreadsheet would run
// as a formula (it starts with =, +, -, @, tab or CR) gets a leading
// apostrophe, as OWASP advises against CSV injection.
func (r *Report) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	row := func(cells ...string) {
		for i, c := range cells {
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(csvCell(c))
		}
		bw.WriteString("\r\n")
	}
	row("severity", "code", "file", "count", "line", "column", "value", "message", "meaning", "fix")
	for _, g := range r.Groups {
		for _, e := range g.Examples {
			line := ""
			if e.Line > 0 {
				line = strconv.Itoa(e.Line)
			}
			row(string(g.Severity), g.Code, g.File, strconv.Itoa(g.Count), line, e.Column, e.Value, e.Message, g.Meaning, g.Fix)
		}
	}
	return bw.Flush()
}

// csvCell quotes a cell and defuses a formula.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		s = "'" + s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
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
	// BulkLifecycle is the severity of row.bulk_lifecycle (a bulk row that
	// fills status or dateLastModified): "warning" (the default: SIS exports
	// commonly do it) or "error" (as the specification says).
	BulkLifecycle Severity `yaml:"bulk_lifecycle"`
	// MaxFieldBytes is the largest field validation keeps; a larger one is
	// row.field_too_large. 0 means 64 KiB.
	MaxFieldBytes int `yaml:"max_field_bytes"`
}

// DefaultPolicy refuses structural errors, more than 5% bad rows in a file,
// and bulk uploads that would delete more than 20% of a roster; bulk rows
// that fill status or dateLastModified are warnings.
var DefaultPolicy = Policy{RejectStructural: true, MaxRowErrorPercent: 5, MaxDeletePercent: 20, BulkLifecycle: SevWarning}

// Check says what is wrong with a policy from a config file.
func (p Policy) Check() error {
	if p.BulkLifecycle != "" && p.BulkLifecycle != SevWarning && p.BulkLifecycle != SevError {
		return fmt.Errorf("bulk_lifecycle is %q; it must be warning or error", p.BulkLifecycle)
	}
	if p.MaxFieldBytes < 0 || p.MaxFieldBytes > 64<<20 {
		return fmt.Errorf("max_field_bytes is %d; it must be between 0 (64 KiB) and 64 MiB", p.MaxFieldBytes)
	}
	return nil
}

// Options are the validation options the policy implies.
func (p Policy) Options() Options {
	o := Options{BulkLifecycle: p.BulkLifecycle, MaxFieldBytes: p.MaxFieldBytes}
	if o.BulkLifecycle == "" {
		o.BulkLifecycle = SevWarning
	}
	return o
}

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
			if g.Severity == SevError && (strings.HasPrefix(g.Code, "manifest.") || strings.HasPrefix(g.Code, "file.") || strings.HasPrefix(g.Code, "package.")) {
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
