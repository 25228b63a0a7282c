package oneroster

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Severity of a finding: errors count against the load; warnings do not.
type Severity string

const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Finding is one problem in an upload, with a stable code (see Codes). Value
// is a bounded excerpt of what the upload holds, never a whole cell.
type Finding struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line,omitempty"`
	Column   string   `json:"column,omitempty"`
	Value    string   `json:"value,omitempty"`
	Message  string   `json:"message"`
}

// Mode is how the manifest lists a file.
type Mode string

const (
	Bulk   Mode = "bulk"
	Delta  Mode = "delta"
	Absent Mode = "absent"
)

// FileStats is what validation counted in one file.
type FileStats struct {
	Mode       Mode `json:"mode"`
	Rows       int  `json:"rows"`
	RowsBad    int  `json:"rows_with_errors"`
	ToDelete   int  `json:"tobedeleted"`
	Structural bool `json:"structural_error"` // the file could not be read as OneRoster
}

// Result is the outcome of validating an upload. Version is empty when the
// manifest names no version this package knows (no data file is checked).
type Result struct {
	Version string                `json:"oneroster_version"`
	Files   map[string]*FileStats `json:"files"`
}

// Options tune validation. The zero value judges as the specification does.
type Options struct {
	// BulkLifecycle is the severity of a bulk row that fills status or
	// dateLastModified (code row.bulk_lifecycle). The specification forbids
	// it, so the zero value is SevError; the importer's default policy
	// makes it a warning because SIS exports commonly do it.
	BulkLifecycle Severity
	// MaxFieldBytes is the largest field kept (row.field_too_large beyond
	// it); 0 means 64 KiB.
	MaxFieldBytes int
}

// idset holds ids as 64-bit hashes: memory grows with the number of ids, not
// with their length.
type idset struct {
	seed maphash.Seed
	m    map[uint64]struct{}
}

func newIDSet(seed maphash.Seed) *idset { return &idset{seed: seed, m: map[uint64]struct{}{}} }

func (s *idset) add(id string) bool {
	h := maphash.String(s.seed, id)
	if _, ok := s.m[h]; ok {
		return false
	}
	s.m[h] = struct{}{}
	return true
}

func (s *idset) has(id string) bool {
	_, ok := s.m[maphash.String(s.seed, id)]
	return ok
}

type selfRef struct {
	line   int
	column string
	id     string
}

type validator struct {
	o      Options
	emit   func(Finding)
	res    Result
	spec   Spec
	v12    bool
	ids    map[string]*idset // tables read, by name
	broken map[string]bool   // tables whose rows could not all be read
	modes  map[string]Mode   // from the manifest
	rows   map[string]bool   // tables with a file.* row
	seed   maphash.Seed
	skip   []bool
}

var (
	reDate     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	reYear     = regexp.MustCompile(`^\d{4}$`)
	reDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
	reFloat    = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`)
	reInteger  = regexp.MustCompile(`^[+-]?\d+$`)
	rePair     = regexp.MustCompile(`^\{[^{}:,]+:[^{},]+\}$`)
	reUUIDURN  = regexp.MustCompile(`^(?i:urn:uuid:)[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// Validate reads an upload (a directory or a zip, as an fs.FS) as the
// specification judges it: see ValidateWith.
func Validate(fsys fs.FS, emit func(Finding)) (Result, error) {
	return ValidateWith(fsys, Options{}, emit)
}

// ValidateWith reads the manifest, chooses the tables of its
// oneroster.version, checks the upload's entries against the manifest and
// then every data file it lists as bulk or delta (referenced tables first),
// reporting each finding to emit. The error is an I/O failure, not a
// finding.
func ValidateWith(fsys fs.FS, o Options, emit func(Finding)) (Result, error) {
	if o.BulkLifecycle == "" {
		o.BulkLifecycle = SevError
	}
	if o.MaxFieldBytes <= 0 {
		o.MaxFieldBytes = defaultMaxField
	}
	v := &validator{o: o, emit: emit, res: Result{Files: map[string]*FileStats{}}, ids: map[string]*idset{},
		broken: map[string]bool{}, modes: map[string]Mode{}, rows: map[string]bool{}, seed: maphash.MakeSeed()}
	ok, err := v.manifest(fsys)
	if err != nil || !ok {
		return v.res, err
	}
	v.entries(fsys)
	for _, t := range v.spec.Tables {
		mode := v.modes[t.Name]
		if mode != Bulk && mode != Delta {
			continue
		}
		st := &FileStats{Mode: mode}
		v.res.Files[t.Name] = st
		if err := v.file(fsys, t, mode, st); err != nil {
			return v.res, err
		}
	}
	return v.res, nil
}

// find reports a finding with its strings bounded.
func (v *validator) find(f Finding) {
	f.File, f.Column, f.Value = excerpt(f.File, 200), excerpt(f.Column, 200), excerpt(f.Value, maxExcerpt)
	f.Message = excerpt(f.Message, 600)
	v.emit(f)
}

const maxExcerpt = 120

// excerpt cuts s to at most n bytes on a character boundary and says how long
// it was.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes)", len(s))
}

// q quotes an outside value for a message, bounded and escaped.
func q(s string) string { return strconv.Quote(excerpt(s, maxExcerpt)) }

type prop struct {
	val  string
	line int
}

// manifest reads manifest.csv (propertyName,value rows), chooses the tables
// and the mode of every file. ok is false when the data files cannot be
// checked.
func (v *validator) manifest(fsys fs.FS) (bool, error) {
	const name = "manifest.csv"
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		v.find(Finding{Code: "manifest.missing", Severity: SevError, File: name, Message: "the upload has no manifest.csv at its root" + v.nestedHint(fsys)})
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	r := newCSVReader(f, v.o.MaxFieldBytes)
	props := map[string]prop{}
	var order []string
	header := false
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		var se *syntaxError
		if errors.As(err, &se) {
			v.find(Finding{Code: "file.csv_syntax", Severity: SevError, File: name, Line: se.Line, Message: "not RFC 4180 CSV: " + se.Msg})
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if len(r.CR) > 0 {
			v.find(Finding{Code: "row.cr_in_field", Severity: SevError, File: name, Line: r.Line, Message: "a carriage return (CR) inside a field"})
		}
		if !header {
			header = true
			if r.UTF16 {
				v.find(Finding{Code: "file.encoding", Severity: SevError, File: name, Line: 1, Message: "the file is UTF-16; save it as UTF-8"})
				return false, nil
			}
			if r.NFields != 2 || rec[0] != "propertyName" || rec[1] != "value" {
				v.find(Finding{Code: "manifest.invalid_header", Severity: SevError, File: name, Line: 1,
					Value: strings.Join(rec, ","), Message: `the header must be "propertyName,value" (case-sensitive)`})
				return false, nil
			}
			continue
		}
		if r.NFields != 2 {
			v.find(Finding{Code: "row.field_count", Severity: SevError, File: name, Line: r.Line,
				Message: fmt.Sprintf("%d fields, want 2 (propertyName,value)", r.NFields)})
			continue
		}
		if !utf8.ValidString(rec[0]) || !utf8.ValidString(rec[1]) {
			v.find(Finding{Code: "file.encoding", Severity: SevError, File: name, Line: r.Line, Message: "not UTF-8"})
			continue
		}
		p := rec[0]
		if prev, dup := props[p]; dup {
			v.find(Finding{Code: "manifest.duplicate_property", Severity: SevError, File: name, Line: r.Line, Column: "propertyName", Value: p,
				Message: fmt.Sprintf("%s appears again (first on line %d)", q(p), prev.line)})
			continue
		}
		if len(props) >= 1000 {
			continue // a manifest has about 25 rows; the rest is not kept
		}
		props[p] = prop{val: rec[1], line: r.Line}
		order = append(order, p)
	}
	if !header {
		v.find(Finding{Code: "manifest.invalid_header", Severity: SevError, File: name, Message: "manifest.csv is empty"})
		return false, nil
	}
	ver, ok := props["oneroster.version"]
	if !ok {
		v.find(Finding{Code: "manifest.invalid_version", Severity: SevError, File: name, Column: "propertyName", Value: "oneroster.version",
			Message: "oneroster.version is missing, so it is not known whether the files follow OneRoster 1.1 or 1.2"})
		return false, nil
	}
	spec, known := SpecFor(Version(ver.val))
	if !known {
		v.find(Finding{Code: "manifest.invalid_version", Severity: SevError, File: name, Line: ver.line, Column: "value", Value: ver.val,
			Message: fmt.Sprintf("oneroster.version is %s; it must be 1.1 or 1.2", q(ver.val))})
		return false, nil
	}
	v.spec, v.v12 = spec, spec.Version == V1p2
	v.res.Version = string(spec.Version)
	if mv, ok := props["manifest.version"]; !ok {
		v.find(Finding{Code: "manifest.missing_property", Severity: SevError, File: name, Column: "propertyName", Value: "manifest.version",
			Message: "manifest.version is required (it must be 1.0)"})
	} else if mv.val != "1.0" {
		v.find(Finding{Code: "manifest.invalid_value", Severity: SevError, File: name, Line: mv.line, Column: "value", Value: mv.val,
			Message: fmt.Sprintf("manifest.version is %s; it must be 1.0", q(mv.val))})
	}
	for _, t := range spec.Tables {
		p := "file." + t.Name
		row, ok := props[p]
		if !ok {
			v.find(Finding{Code: "manifest.missing_property", Severity: SevError, File: name, Column: "propertyName", Value: p,
				Message: fmt.Sprintf("%s is required in a OneRoster %s manifest (absent, bulk or delta)", p, spec.Version)})
			continue
		}
		v.rows[t.Name] = true
		m := Mode(row.val)
		if m != Bulk && m != Delta && m != Absent {
			msg := fmt.Sprintf("%s is %s; it must be bulk, delta or absent", p, q(row.val))
			if lm := Mode(strings.ToLower(row.val)); lm == Bulk || lm == Delta || lm == Absent {
				msg += fmt.Sprintf(" (values are case-sensitive: %q)", lm)
			}
			v.find(Finding{Code: "manifest.invalid_value", Severity: SevError, File: name, Line: row.line, Column: "value", Value: row.val, Message: msg})
			v.broken[t.Name] = true // unknown whether it is supplied: references to it are not judged
			continue
		}
		v.modes[t.Name] = m
		if m != Absent {
			if st, err := fs.Stat(fsys, t.FileName()); err != nil || st.IsDir() {
				v.find(Finding{Code: "manifest.missing_file", Severity: SevError, File: name, Line: row.line, Column: "value", Value: t.FileName(),
					Message: fmt.Sprintf("the manifest lists %s as %s but the upload does not have it", t.FileName(), m)})
				delete(v.modes, t.Name)
				v.broken[t.Name] = true
			}
		}
	}
	required, optional := spec.ManifestProperties()
	for _, p := range order {
		if slices.Contains(required, p) || slices.Contains(optional, p) {
			continue
		}
		row := props[p]
		v.find(Finding{Code: "manifest.unknown_property", Severity: SevError, File: name, Line: row.line, Column: "propertyName", Value: p,
			Message: v.unknownPropertyMsg(p, required, optional)})
	}
	return true, nil
}

func (v *validator) unknownPropertyMsg(p string, required, optional []string) string {
	msg := fmt.Sprintf("%s is not a OneRoster %s manifest property", q(p), v.spec.Version)
	for _, k := range append(required, optional...) {
		if strings.EqualFold(k, p) {
			return msg + fmt.Sprintf(" (names are case-sensitive: %q)", k)
		}
	}
	if t, ok := strings.CutPrefix(p, "file."); ok {
		for _, other := range Versions() {
			s, _ := SpecFor(other)
			if _, in := s.Table(t); in && other != v.spec.Version {
				return msg + fmt.Sprintf(" (%s.csv is a OneRoster %s file)", t, other)
			}
		}
	}
	if i := strings.IndexByte(p, '.'); i > 0 {
		for _, k := range required {
			if k[strings.IndexByte(k, '.'):] == p[i:] {
				return msg + fmt.Sprintf(" (did you mean %q?)", k)
			}
		}
	}
	return msg
}

// nestedHint names a manifest.csv found inside a folder.
func (v *validator) nestedHint(fsys fs.FS) string {
	hint := ""
	n := 0
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if n++; err != nil || n > 10000 || hint != "" {
			return fs.SkipAll
		}
		if !d.IsDir() && path.Base(p) == "manifest.csv" && !osMetadata(p) {
			hint = fmt.Sprintf(" (there is %s: the files must be at the root, not inside a folder)", q(p))
		}
		return nil
	})
	return hint
}

// osMetadata is what operating systems add to folders and zips.
func osMetadata(p string) bool {
	base := path.Base(p)
	return strings.HasPrefix(p, "__MACOSX/") || strings.HasPrefix(base, "._") || base == ".DS_Store" ||
		base == "Thumbs.db" || base == "desktop.ini"
}

// entries checks the upload's files against the manifest.
func (v *validator) entries(fsys fs.FS) {
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if p == "__MACOSX" {
				return fs.SkipDir
			}
			return nil
		}
		if p == "manifest.csv" || osMetadata(p) {
			return nil
		}
		isCSV := strings.HasSuffix(strings.ToLower(p), ".csv")
		if t, ok := strings.CutSuffix(p, ".csv"); ok && !strings.Contains(p, "/") {
			if _, known := v.spec.Table(t); known {
				switch {
				case v.modes[t] == Absent:
					v.find(Finding{Code: "manifest.file_declared_absent", Severity: SevError, File: p,
						Message: fmt.Sprintf("the upload has %s but the manifest says file.%s is absent", p, t)})
				case !v.rows[t]:
					v.find(Finding{Code: "manifest.unlisted_file", Severity: SevWarning, File: p,
						Message: "the manifest has no file." + t + " row; the file is ignored"})
				}
				return nil
			}
		}
		if !isCSV {
			v.find(Finding{Code: "package.extra_file", Severity: SevWarning, File: p, Message: "not a CSV file; it is ignored"})
			return nil
		}
		v.find(Finding{Code: "package.unknown_file", Severity: SevError, File: p, Message: v.unknownFileMsg(p)})
		return nil
	})
}

func (v *validator) unknownFileMsg(p string) string {
	base := strings.TrimSuffix(path.Base(p), path.Ext(p))
	if strings.Contains(p, "/") {
		if _, ok := v.spec.Table(base); ok {
			return fmt.Sprintf("%s is inside a folder; OneRoster files must be at the root of the upload", q(p))
		}
	}
	for _, t := range v.spec.Tables {
		if strings.EqualFold(t.Name, base) {
			return fmt.Sprintf("%s is not a OneRoster file name (names are case-sensitive: %q)", q(p), t.FileName())
		}
	}
	for _, other := range Versions() {
		s, _ := SpecFor(other)
		if _, in := s.Table(base); in && other != v.spec.Version {
			return fmt.Sprintf("%s is a OneRoster %s file; the manifest says %s", q(p), other, v.spec.Version)
		}
	}
	return fmt.Sprintf("%s is not a file of OneRoster %s", q(p), v.spec.Version)
}

// file validates one data file, streaming.
func (v *validator) file(fsys fs.FS, t Table, mode Mode, st *FileStats) error {
	name := t.FileName()
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	r := newCSVReader(f, v.o.MaxFieldBytes)
	own := newIDSet(v.seed)
	v.ids[t.Name] = own
	var self []selfRef
	var idx []int      // header position of each column, -1 when omitted
	var names []string // header names
	headerSeen := false
	width := 0
	statusAt, ranges, loAt := -1, rangeRule{}, [2]int{-1, -1}
	broken := func() {
		st.Structural = true
		v.broken[t.Name] = true
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		var se *syntaxError
		if errors.As(err, &se) {
			broken()
			v.find(Finding{Code: "file.csv_syntax", Severity: SevError, File: name, Line: se.Line, Message: "not RFC 4180 CSV: " + se.Msg})
			return nil
		}
		if err != nil {
			return err
		}
		if !headerSeen {
			headerSeen = true
			if r.UTF16 {
				broken()
				v.find(Finding{Code: "file.encoding", Severity: SevError, File: name, Line: 1, Message: "the file is UTF-16; save it as UTF-8"})
				return nil
			}
			if idx = v.header(name, t, rec, r); idx == nil {
				broken()
				return nil
			}
			names = slices.Clone(rec)
			width = r.NFields
			if c, j, ok := t.Column("status"); ok && c.Lifecycle() {
				statusAt = idx[j]
			}
			ranges = rangeFor(t, idx)
			if _, j, ok := t.Column("source"); ok && strings.HasSuffix(t.Name, "LearningObjectiveIds") {
				_, k, _ := t.Column("learningObjectiveId")
				loAt = [2]int{idx[j], idx[k]}
			}
			continue
		}
		st.Rows++
		line := r.Line
		bad := false
		report := func(f Finding) {
			f.File, f.Line = name, line
			if f.Severity == "" {
				f.Severity = SevError
			}
			if f.Severity == SevError {
				bad = true
			}
			v.find(f)
		}
		if r.NFields != width {
			report(Finding{Code: "row.field_count", Message: fmt.Sprintf("%d fields, the header has %d", r.NFields, width)})
			st.RowsBad++
			continue
		}
		v.skip = slices.Grow(v.skip[:0], width)[:width]
		clear(v.skip)
		for k, i := range r.Oversize {
			v.skip[i] = true
			report(Finding{Code: "row.field_too_large", Column: names[i], Value: rec[i],
				Message: fmt.Sprintf("the field has %d bytes; the limit is %d", r.Sizes[k], v.o.MaxFieldBytes)})
		}
		for _, i := range r.CR {
			v.skip[i] = true
			report(Finding{Code: "row.cr_in_field", Column: names[i], Value: rec[i], Message: "a carriage return (CR) inside the field"})
		}
		for i, val := range rec {
			if v.skip[i] {
				continue
			}
			if !utf8.ValidString(val) {
				v.skip[i] = true
				report(Finding{Code: "file.encoding", Column: names[i], Message: "not UTF-8 (save the file as UTF-8)"})
			} else if strings.Contains(val, "\ufeff") {
				v.skip[i] = true
				report(Finding{Code: "row.misplaced_bom", Column: names[i], Value: val, Message: "a byte order mark (U+FEFF) inside the field"})
			}
		}
		for j, c := range t.Columns {
			if i := idx[j]; i >= 0 && !v.skip[i] {
				v.checkField(t, c, rec[i], mode, own, &self, report, line)
			}
		}
		v.rowRules(rec, ranges, loAt, report)
		if mode == Delta && statusAt >= 0 && rec[statusAt] == "tobedeleted" {
			st.ToDelete++
		}
		if bad {
			st.RowsBad++
		}
	}
	switch {
	case !headerSeen:
		broken()
		v.find(Finding{Code: "file.zero_bytes", Severity: SevError, File: name, Message: "the file is empty: no header row"})
	case st.Rows == 0:
		v.find(Finding{Code: "file.empty", Severity: SevError, File: name, Line: 1, Message: "the file has a header and no rows; files without rows are not permitted (mark it absent)"})
	}
	for _, s := range self {
		if !own.has(s.id) {
			v.find(Finding{Code: "reference.missing_target_record", Severity: refSeverity(mode, mode), File: name, Line: s.line,
				Column: s.column, Value: s.id, Message: fmt.Sprintf("%s %s is not in %s", s.column, q(s.id), name)})
		}
	}
	return nil
}

// header checks exact, case-sensitive names in the specification's order,
// with metadata.* extensions only at the end; it returns the header position
// of each column, or nil when the rows cannot be read.
func (v *validator) header(name string, t Table, rec []string, r *csvReader) []int {
	mismatch := func(column, value, msg string) []int {
		v.find(Finding{Code: "file.header_mismatch", Severity: SevError, File: name, Line: 1, Column: column, Value: value, Message: msg})
		return nil
	}
	if r.NFields > len(rec) || len(r.Oversize) > 0 {
		return mismatch("", "", fmt.Sprintf("the header has %d columns or a column name too long to be one", r.NFields))
	}
	for _, i := range r.CR {
		return mismatch(rec[i], rec[i], fmt.Sprintf("column %d holds a carriage return", i+1))
	}
	seen := make(map[string]int, len(rec))
	dup := false
	for i, h := range rec {
		if first, ok := seen[h]; ok {
			dup = true
			v.find(Finding{Code: "file.duplicate_header", Severity: SevError, File: name, Line: 1, Column: h, Value: h,
				Message: fmt.Sprintf("columns %d and %d are both named %s", first+1, i+1, q(h))})
			continue
		}
		seen[h] = i
	}
	idx := make([]int, len(t.Columns))
	i := 0
	for j := 0; j < len(t.Columns); j++ {
		c := t.Columns[j]
		if i < len(rec) && rec[i] == c.Name {
			idx[j] = i
			i++
			continue
		}
		if c.Omittable {
			idx[j] = -1
			continue
		}
		if i >= len(rec) {
			return mismatch(c.Name, "", fmt.Sprintf("the header ends after column %d; %q should come next", i, c.Name))
		}
		return mismatch(c.Name, rec[i], v.headerMsg(t, j, i, rec[i]))
	}
	for ; i < len(rec); i++ {
		if !strings.HasPrefix(rec[i], "metadata.") || rec[i] == "metadata." {
			msg := fmt.Sprintf("extra column %s: extensions must be named metadata.* and come last", q(rec[i]))
			if _, _, ok := t.Column(rec[i]); ok {
				msg = fmt.Sprintf("column %s appears again after the specification's columns", q(rec[i]))
			}
			return mismatch(rec[i], rec[i], msg)
		}
	}
	_ = dup // a repeated extension column: the rows can still be read
	return idx
}

func (v *validator) headerMsg(t Table, j, i int, got string) string {
	want := t.Columns[j].Name
	switch {
	case t.Name == "users" && v.v12 && (got == "orgSourcedIds" || got == "role"):
		return fmt.Sprintf("column %d is %q: this is the OneRoster 1.1 layout of users.csv; 1.2 moved orgSourcedIds and role to roles.csv (%q should come here)", i+1, got, want)
	case t.Name == "users" && !v.v12 && (got == "username" || got == "userMasterIdentifier" || got == "primaryOrgSourcedId"):
		return fmt.Sprintf("column %d is %q: this looks like the OneRoster 1.2 layout of users.csv, but the manifest says 1.1 (%q should come here)", i+1, got, want)
	case strings.EqualFold(got, want):
		return fmt.Sprintf("column %d is %q, should be %q (headers are case-sensitive)", i+1, got, want)
	case strings.HasPrefix(got, "\ufeff"):
		return fmt.Sprintf("column %d starts with a byte order mark (U+FEFF) that is not at the start of the file", i+1)
	case strings.HasPrefix(got, "metadata."):
		return fmt.Sprintf("column %d is the extension %q; metadata.* columns must come after the specification's last column (%q should come here)", i+1, got, want)
	}
	if _, k, ok := t.Column(got); ok && k > j {
		return fmt.Sprintf("column %d is %q, but %q comes first: the columns must be in the specification's order", i+1, got, want)
	}
	return fmt.Sprintf("column %d is %s, should be %q", i+1, q(got), want)
}

// refSeverity: a bulk set must hold what it references; a delta row may
// reference records loaded before.
func refSeverity(mode, target Mode) Severity {
	if mode == Bulk && target == Bulk {
		return SevError
	}
	return SevWarning
}

func (v *validator) checkField(t Table, c Column, val string, mode Mode, own *idset, self *[]selfRef, report func(Finding), line int) {
	if c.Lifecycle() {
		v.lifecycle(c, val, mode, report)
		return
	}
	if val == "" {
		if c.Required {
			report(Finding{Code: "row.missing_required", Column: c.Name, Message: c.Name + " is required"})
		}
		return
	}
	switch c.Format {
	case GUID, GUIDRef:
		if !v.validID(val) {
			report(Finding{Code: "row.invalid_sourcedid", Column: c.Name, Value: val, Message: v.idMsg(val)})
			return
		}
		if c.Name == "sourcedId" && !own.add(val) {
			report(Finding{Code: "row.duplicate_sourcedid", Column: c.Name, Value: val, Message: fmt.Sprintf("sourcedId %s appears more than once in %s", q(val), t.FileName())})
		}
		if c.Ref != "" {
			v.reference(t, c, val, mode, self, report, line)
		}
	case GUIDRefList:
		for _, id := range strings.Split(val, ",") {
			if !v.validID(id) {
				report(Finding{Code: "row.invalid_sourcedid", Column: c.Name, Value: id, Message: v.idMsg(id)})
				continue
			}
			v.reference(t, c, id, mode, self, report, line)
		}
	case Date:
		if !validDate(val) {
			report(Finding{Code: "row.invalid_date", Column: c.Name, Value: val, Message: fmt.Sprintf("%s is not a date YYYY-MM-DD", q(val))})
		}
	case DateTime:
		v.dateTime(c, val, report)
	case Year:
		if !reYear.MatchString(val) {
			report(Finding{Code: "row.invalid_year", Column: c.Name, Value: val, Message: fmt.Sprintf("%s is not a year YYYY", q(val))})
		}
	case Boolean:
		if val != "true" && val != "false" {
			report(Finding{Code: "row.invalid_boolean", Column: c.Name, Value: val, Message: fmt.Sprintf("%s: booleans are true or false (lower case)", q(val))})
		}
	case Enum:
		if msg, ok := v.term(c, val); !ok {
			report(Finding{Code: "row.invalid_enum", Column: c.Name, Value: val, Message: msg})
		}
	case EnumList:
		for _, e := range strings.Split(val, ",") {
			if msg, ok := v.term(c, e); !ok {
				report(Finding{Code: "row.invalid_enum", Column: c.Name, Value: e, Message: msg})
				break
			}
		}
	case Grades:
		for _, g := range strings.Split(val, ",") {
			if !grades11[strings.TrimSpace(g)] {
				report(Finding{Code: "row.invalid_grade", Column: c.Name, Value: g, Message: fmt.Sprintf("%s is not a CEDS grade (KG, 01..13, PK, ...)", q(g))})
				break
			}
		}
	case Float:
		if !reFloat.MatchString(val) {
			report(Finding{Code: "row.invalid_number", Column: c.Name, Value: val, Message: fmt.Sprintf("%s is not a decimal number", q(val))})
		}
	case Integer:
		if !reInteger.MatchString(val) {
			report(Finding{Code: "row.invalid_number", Column: c.Name, Value: val, Message: fmt.Sprintf("%s is not a whole number", q(val))})
		}
	case UserIDs:
		for _, e := range strings.Split(val, ",") {
			if !rePair.MatchString(e) {
				report(Finding{Code: "row.invalid_user_ids", Column: c.Name, Value: e, Message: fmt.Sprintf("%s is not {Type:Id}, e.g. {LDAP:jdoe}", q(e))})
				break
			}
		}
	case ScoreScale:
		for _, e := range strings.Split(val, ",") {
			if !rePair.MatchString(e) {
				report(Finding{Code: "row.invalid_score_scale", Column: c.Name, Value: e, Message: fmt.Sprintf("%s is not {value:mapping}, e.g. {A:94}", q(e))})
				break
			}
		}
	}
}

// term checks one vocabulary value.
func (v *validator) term(c Column, val string) (string, bool) {
	if slices.Contains(c.Values, val) {
		return "", true
	}
	if rest, ok := strings.CutPrefix(val, "ext:"); ok {
		if c.Extensible && v.v12 && rest != "" && strings.TrimSpace(rest) == rest {
			return "", true
		}
		switch {
		case !v.v12:
			return fmt.Sprintf("%s: OneRoster 1.1 vocabularies cannot be extended (ext: terms are 1.2)", q(val)), false
		case !c.Extensible:
			return fmt.Sprintf("%s: the %s vocabulary cannot be extended; use one of %s", q(val), c.Name, strings.Join(c.Values, ", ")), false
		}
		return fmt.Sprintf("%s: an ext: term needs a name after ext:", q(val)), false
	}
	for _, e := range c.Values {
		if strings.EqualFold(e, val) {
			return fmt.Sprintf("%s is not one of %s (values are case-sensitive: %q)", q(val), strings.Join(c.Values, ", "), e), false
		}
	}
	msg := fmt.Sprintf("%s is not one of %s", q(val), strings.Join(c.Values, ", "))
	if c.Extensible && v.v12 {
		msg += " (or an ext: term)"
	}
	return msg, false
}

func (v *validator) lifecycle(c Column, val string, mode Mode, report func(Finding)) {
	if c.Name == "status" {
		switch {
		case mode == Bulk && val == "tobedeleted":
			report(Finding{Code: "row.bulk_tobedeleted", Column: "status", Value: val, Message: "a bulk file cannot delete; status must be empty in bulk mode"})
		case mode == Bulk && val == "active":
			report(Finding{Code: "row.bulk_lifecycle", Severity: v.o.BulkLifecycle, Column: "status", Value: val, Message: "status must be empty in bulk mode"})
		case mode == Delta && val == "":
			report(Finding{Code: "row.delta_missing_status", Column: "status", Message: "delta rows need status active or tobedeleted"})
		case val != "" && val != "active" && val != "tobedeleted":
			msg, _ := v.term(colStatus, val)
			report(Finding{Code: "row.invalid_enum", Column: "status", Value: val, Message: msg})
		}
		return
	}
	if val == "" {
		if mode == Delta {
			report(Finding{Code: "row.delta_missing_date_last_modified", Column: c.Name, Message: "delta rows need dateLastModified"})
		}
		return
	}
	if mode == Bulk {
		report(Finding{Code: "row.bulk_lifecycle", Severity: v.o.BulkLifecycle, Column: c.Name, Value: val, Message: "dateLastModified must be empty in bulk mode"})
	}
	v.dateTime(c, val, report)
}

func (v *validator) dateTime(c Column, val string, report func(Finding)) {
	ok, utc := validDateTime(val)
	switch {
	case !ok:
		report(Finding{Code: "row.invalid_datetime", Column: c.Name, Value: val, Message: fmt.Sprintf("%s is not an ISO 8601 date and time like 2026-09-01T04:15:00.000Z", q(val))})
	case !utc:
		report(Finding{Code: "row.datetime_not_utc", Column: c.Name, Value: val, Message: fmt.Sprintf("%s is not in UTC; write it in UTC ending with Z", q(val))})
	}
}

func (v *validator) reference(t Table, c Column, id string, mode Mode, self *[]selfRef, report func(Finding), line int) {
	if c.Ref == t.Name {
		*self = append(*self, selfRef{line: line, column: c.Name, id: id})
		return
	}
	if v.broken[c.Ref] {
		return // its rows were not all read: the header_mismatch says why
	}
	target := v.ids[c.Ref]
	if target == nil {
		if mode == Bulk {
			report(Finding{Code: "reference.missing_target_file", Column: c.Name, Value: id,
				Message: fmt.Sprintf("%s references %s.csv, which the upload does not supply in bulk or delta", c.Name, c.Ref)})
		}
		return
	}
	if !target.has(id) {
		report(Finding{Code: "reference.missing_target_record", Severity: refSeverity(mode, v.modes[c.Ref]), Column: c.Name, Value: id,
			Message: fmt.Sprintf("%s %s is not in %s.csv", c.Name, q(id), c.Ref)})
	}
}

// rangeRule is a pair of columns that must not be reversed.
type rangeRule struct {
	lo, hi int // header positions; -1 when absent
	kind   Format
	names  [2]string
}

func rangeFor(t Table, idx []int) rangeRule {
	pairs := map[string][2]string{"academicSessions": {"startDate", "endDate"}, "enrollments": {"beginDate", "endDate"},
		"roles": {"beginDate", "endDate"}, "lineItems": {"resultValueMin", "resultValueMax"}}
	p, ok := pairs[t.Name]
	if !ok {
		return rangeRule{lo: -1, hi: -1}
	}
	a, i, _ := t.Column(p[0])
	_, k, _ := t.Column(p[1])
	return rangeRule{lo: idx[i], hi: idx[k], kind: a.Format, names: p}
}

func (v *validator) rowRules(rec []string, rr rangeRule, loAt [2]int, report func(Finding)) {
	if rr.lo >= 0 && rr.hi >= 0 && !v.skip[rr.lo] && !v.skip[rr.hi] {
		a, b := rec[rr.lo], rec[rr.hi]
		reversed := false
		switch rr.kind {
		case Date:
			reversed = validDate(a) && validDate(b) && b < a
		case Float:
			if reFloat.MatchString(a) && reFloat.MatchString(b) {
				x, _ := strconv.ParseFloat(a, 64)
				y, _ := strconv.ParseFloat(b, 64)
				reversed = y < x
			}
		}
		if reversed {
			report(Finding{Code: "row.invalid_range", Column: rr.names[1], Value: b,
				Message: fmt.Sprintf("%s %s is before %s %s", rr.names[1], q(b), rr.names[0], q(a))})
		}
	}
	if loAt[0] >= 0 && loAt[1] >= 0 && !v.skip[loAt[1]] && rec[loAt[0]] == "case" {
		if id := rec[loAt[1]]; id != "" && !reUUIDURN.MatchString(id) {
			report(Finding{Code: "row.invalid_uuid_urn", Column: "learningObjectiveId", Value: id,
				Message: fmt.Sprintf("%s: a CASE learning objective id must be a UUID URN (urn:uuid:...)", q(id))})
		}
	}
}

func (v *validator) idMsg(id string) string {
	if v.v12 {
		return fmt.Sprintf("%s is not a OneRoster 1.2 sourcedId: only 0-9 a-z A-Z . - _ / @, at most 255 characters", q(id))
	}
	return fmt.Sprintf("%s is not a sourcedId: no spaces at the ends, no control characters, at most 255 bytes", q(id))
}

func (v *validator) validID(s string) bool {
	if v.v12 {
		return validID12(s)
	}
	return validID11(s)
}

func validID11(s string) bool {
	if s == "" || len(s) > 255 || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// validID12 is the 1.2 GUID: 0-9 a-z A-Z . - _ / @, fewer than 256.
func validID12(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || b == '.' || b == '-' || b == '_' || b == '/' || b == '@') {
			return false
		}
	}
	return true
}

func validDate(s string) bool {
	if !reDate.MatchString(s) {
		return false
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

// validDateTime: ok is the ISO 8601 form; utc is a Z (or +00:00) zone.
func validDateTime(s string) (ok, utc bool) {
	if !reDateTime.MatchString(s) {
		return false, false
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return false, false
	}
	return true, strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "+00:00")
}
