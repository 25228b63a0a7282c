package oneroster

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"regexp"
	"slices"
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

// Finding is one problem in an upload, with a stable code.
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

// Result is the outcome of validating an upload.
type Result struct {
	Version string                `json:"oneroster_version"`
	Files   map[string]*FileStats `json:"files"`
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
	emit    func(Finding)
	res     Result
	ids     map[string]*idset
	seed    maphash.Seed
	version string
}

var (
	reDate     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	reYear     = regexp.MustCompile(`^\d{4}$`)
	reDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
)

// Validate reads an upload (a directory or a zip, as an fs.FS): the manifest,
// then every roster file it lists, and reports each finding to emit.
func Validate(fsys fs.FS, emit func(Finding)) (Result, error) {
	v := &validator{emit: emit, res: Result{Files: map[string]*FileStats{}}, ids: map[string]*idset{}, seed: maphash.MakeSeed()}
	modes, err := v.manifest(fsys)
	if err != nil {
		return v.res, err
	}
	for _, spec := range rosterFiles {
		mode := modes[spec.name]
		if mode == "" || mode == Absent {
			if _, err := fs.Stat(fsys, spec.name+".csv"); err == nil {
				v.find(Finding{Code: "manifest.unlisted_file", Severity: SevWarning, File: spec.name + ".csv",
					Message: "the file is present but the manifest does not list it as bulk or delta; it is ignored"})
			}
			continue
		}
		st := &FileStats{Mode: mode}
		v.res.Files[spec.name] = st
		if err := v.file(fsys, spec, mode, st); err != nil {
			return v.res, err
		}
	}
	return v.res, nil
}

func (v *validator) find(f Finding) { v.emit(f) }

// manifest reads manifest.csv: propertyName,value rows with the versions and
// file.<name> = bulk | delta | absent.
func (v *validator) manifest(fsys fs.FS) (map[string]Mode, error) {
	modes := map[string]Mode{}
	const name = "manifest.csv"
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		v.find(Finding{Code: "manifest.missing", Severity: SevError, File: name, Message: "the upload has no manifest.csv"})
		return modes, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := newReader(f)
	line := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			v.find(Finding{Code: "file.csv_syntax", Severity: SevError, File: name, Line: csvLine(err, line), Message: err.Error()})
			return modes, nil
		}
		if line == 1 {
			if len(rec) != 2 || stripBOM(rec[0]) != "propertyName" || rec[1] != "value" {
				v.find(Finding{Code: "manifest.invalid_header", Severity: SevError, File: name, Line: 1,
					Value: strings.Join(rec, ","), Message: `the header must be "propertyName,value"`})
				return modes, nil
			}
			continue
		}
		if len(rec) != 2 {
			v.find(Finding{Code: "row.field_count", Severity: SevError, File: name, Line: line,
				Message: fmt.Sprintf("%d fields, want 2", len(rec))})
			continue
		}
		prop, val := rec[0], rec[1]
		switch {
		case prop == "oneroster.version":
			if val != "1.1" && val != "1.2" {
				v.find(Finding{Code: "manifest.invalid_version", Severity: SevError, File: name, Line: line, Column: "value",
					Value: val, Message: "oneroster.version must be 1.1 or 1.2"})
			}
			v.version = val
		case strings.HasPrefix(prop, "file."):
			m := Mode(val)
			if m != Bulk && m != Delta && m != Absent {
				v.find(Finding{Code: "manifest.invalid_value", Severity: SevError, File: name, Line: line, Column: "value",
					Value: val, Message: fmt.Sprintf("%s must be bulk, delta or absent", prop)})
				continue
			}
			entity := strings.TrimPrefix(prop, "file.")
			if !knownFile(entity) {
				v.find(Finding{Code: "manifest.invalid_value", Severity: SevError, File: name, Line: line, Column: "propertyName",
					Value: prop, Message: "not a OneRoster file"})
				continue
			}
			modes[entity] = m
			if m != Absent {
				if _, err := fs.Stat(fsys, entity+".csv"); err != nil {
					v.find(Finding{Code: "manifest.missing_file", Severity: SevError, File: entity + ".csv", Line: line,
						Message: fmt.Sprintf("the manifest lists %s.csv as %s but the upload does not have it", entity, m)})
					delete(modes, entity)
				}
			}
		}
	}
	if v.version == "" {
		v.find(Finding{Code: "manifest.invalid_version", Severity: SevError, File: name, Message: "oneroster.version is missing"})
		v.version = "1.1"
	}
	v.res.Version = v.version
	return modes, nil
}

func knownFile(name string) bool {
	for _, s := range rosterFiles {
		if s.name == name {
			return true
		}
	}
	return slices.Contains(otherFiles, name)
}

func newReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<20))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return cr
}

func stripBOM(s string) string { return strings.TrimPrefix(s, "\ufeff") }

func csvLine(err error, fallback int) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Line
	}
	return fallback
}

// file validates one roster file, streaming.
func (v *validator) file(fsys fs.FS, spec fileSpec, mode Mode, st *FileStats) error {
	name := spec.name + ".csv"
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	r := newReader(f)
	if v.ids[spec.name] == nil {
		v.ids[spec.name] = newIDSet(v.seed)
	}
	own := v.ids[spec.name]
	var self []selfRef
	var cols []field
	width := 0 // columns in the header, extensions included
	line := 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			st.Structural = true
			v.find(Finding{Code: "file.csv_syntax", Severity: SevError, File: name, Line: csvLine(err, line),
				Message: "not RFC 4180 CSV: " + err.Error()})
			return nil
		}
		if line == 1 {
			if cols = v.header(name, spec, rec, st); cols == nil {
				return nil
			}
			width = len(rec)
			continue
		}
		st.Rows++
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
		if len(rec) != width {
			report(Finding{Code: "row.field_count", Message: fmt.Sprintf("%d fields, the header has %d", len(rec), width)})
			st.RowsBad++
			continue
		}
		for i, fd := range cols {
			val := rec[i]
			if !utf8.ValidString(val) {
				report(Finding{Code: "file.encoding", Column: fd.name, Message: "not UTF-8"})
				continue
			}
			v.checkField(spec, fd, val, mode, own, &self, report, line)
		}
		if mode == Delta && len(rec) > 1 && rec[1] == "tobedeleted" {
			st.ToDelete++
		}
		if bad {
			st.RowsBad++
		}
	}
	if line <= 1 && cols != nil {
		v.find(Finding{Code: "file.empty", Severity: SevWarning, File: name, Line: 1, Message: "the file has a header and no rows"})
	}
	for _, s := range self {
		if !own.has(s.id) {
			v.find(Finding{Code: "reference.missing_target_record", Severity: v.refSeverity(mode), File: name, Line: s.line,
				Column: s.column, Value: s.id, Message: fmt.Sprintf("%s %q is not in %s.csv", s.column, s.id, spec.name)})
		}
	}
	return nil
}

// header checks exact, case-sensitive names in spec order, with metadata.*
// extensions allowed at the end; it returns the columns or nil.
func (v *validator) header(name string, spec fileSpec, rec []string, st *FileStats) []field {
	if len(rec) > 0 {
		rec[0] = stripBOM(rec[0])
	}
	for i, fd := range spec.fields {
		if i >= len(rec) {
			st.Structural = true
			v.find(Finding{Code: "file.header_mismatch", Severity: SevError, File: name, Line: 1, Column: fd.name,
				Message: fmt.Sprintf("column %d should be %q; the header ends before it", i+1, fd.name)})
			return nil
		}
		if rec[i] != fd.name {
			st.Structural = true
			msg := fmt.Sprintf("column %d is %q, should be %q", i+1, rec[i], fd.name)
			if strings.EqualFold(rec[i], fd.name) {
				msg += " (headers are case-sensitive)"
			}
			v.find(Finding{Code: "file.header_mismatch", Severity: SevError, File: name, Line: 1, Column: fd.name, Value: rec[i], Message: msg})
			return nil
		}
	}
	for i := len(spec.fields); i < len(rec); i++ {
		if !strings.HasPrefix(rec[i], "metadata.") {
			st.Structural = true
			v.find(Finding{Code: "file.header_mismatch", Severity: SevError, File: name, Line: 1, Value: rec[i],
				Message: fmt.Sprintf("extra column %q: extensions must be named metadata.* and come last", rec[i])})
			return nil
		}
	}
	return spec.fields
}

func (v *validator) refSeverity(mode Mode) Severity {
	if mode == Delta {
		return SevWarning // the target may already be in the published roster
	}
	return SevError
}

func (v *validator) checkField(spec fileSpec, fd field, val string, mode Mode, own *idset, self *[]selfRef, report func(Finding), line int) {
	switch fd.name {
	case "status":
		switch {
		case mode == Bulk && val == "tobedeleted":
			report(Finding{Code: "row.bulk_tobedeleted", Column: "status", Value: val, Message: "a bulk file cannot delete; status must be empty or active"})
		case mode == Delta && val == "":
			report(Finding{Code: "row.delta_missing_status", Column: "status", Message: "delta rows need status active or tobedeleted"})
		case val != "" && val != "active" && val != "tobedeleted":
			report(Finding{Code: "row.invalid_enum", Column: "status", Value: val, Message: enumMsg(val, []string{"active", "tobedeleted"})})
		}
		return
	case "dateLastModified":
		if val == "" {
			if mode == Delta {
				report(Finding{Code: "row.delta_missing_date_last_modified", Column: fd.name, Message: "delta rows need dateLastModified"})
			}
		} else if !validDateTime(val) {
			report(Finding{Code: "row.invalid_datetime", Column: fd.name, Value: val, Message: "not an ISO 8601 date and time like 2026-09-01T04:15:00.000Z"})
		}
		return
	}
	if val == "" {
		if fd.required {
			report(Finding{Code: "row.missing_required", Column: fd.name, Message: fd.name + " is required"})
		}
		return
	}
	switch fd.kind {
	case kID:
		if !validID(val) {
			report(Finding{Code: "row.invalid_sourcedid", Column: fd.name, Value: val, Message: "sourcedIds have no spaces at the ends, no control characters, at most 255 bytes"})
		} else if !own.add(val) {
			report(Finding{Code: "row.duplicate_sourcedid", Column: fd.name, Value: val, Message: fmt.Sprintf("sourcedId %q appears more than once in %s.csv", val, spec.name)})
		}
	case kIDRef, kIDList:
		ids := []string{val}
		if fd.kind == kIDList {
			ids = strings.Split(val, ",")
		}
		for _, id := range ids {
			if !validID(id) {
				report(Finding{Code: "row.invalid_sourcedid", Column: fd.name, Value: id, Message: "not a valid sourcedId"})
				continue
			}
			if fd.ref == spec.name {
				*self = append(*self, selfRef{line: line, column: fd.name, id: id})
				continue
			}
			target := v.ids[fd.ref]
			if target == nil || !target.has(id) {
				report(Finding{Code: "reference.missing_target_record", Severity: v.refSeverity(mode), Column: fd.name, Value: id,
					Message: fmt.Sprintf("%s %q is not in %s.csv", fd.name, id, fd.ref)})
			}
		}
		if fd.name == "sourcedId" && !own.add(val) { // demographics: keyed by the user's id
			report(Finding{Code: "row.duplicate_sourcedid", Column: fd.name, Value: val, Message: fmt.Sprintf("sourcedId %q appears more than once in %s.csv", val, spec.name)})
		}
	case kDate:
		if !validDate(val) {
			report(Finding{Code: "row.invalid_date", Column: fd.name, Value: val, Message: "not a date YYYY-MM-DD"})
		}
	case kDateTime:
		if !validDateTime(val) {
			report(Finding{Code: "row.invalid_datetime", Column: fd.name, Value: val, Message: "not an ISO 8601 date and time"})
		}
	case kYear:
		if !reYear.MatchString(val) {
			report(Finding{Code: "row.invalid_year", Column: fd.name, Value: val, Message: "not a year YYYY"})
		}
	case kBool:
		if val != "true" && val != "false" {
			report(Finding{Code: "row.invalid_boolean", Column: fd.name, Value: val, Message: "booleans are true or false (lower case)"})
		}
	case kEnum:
		enum := fd.enum
		if fd.name == "sex" && v.version == "1.2" {
			enum = v12Sex
		}
		if !slices.Contains(enum, val) {
			report(Finding{Code: "row.invalid_enum", Column: fd.name, Value: val, Message: enumMsg(val, enum)})
		}
	case kGrades:
		for _, g := range strings.Split(val, ",") {
			if !grades[strings.TrimSpace(g)] {
				report(Finding{Code: "row.invalid_grade", Column: fd.name, Value: g, Message: "not a CEDS grade (KG, 01..13, PK, ...)"})
				break
			}
		}
	}
}

func enumMsg(val string, enum []string) string {
	for _, e := range enum {
		if strings.EqualFold(e, val) {
			return fmt.Sprintf("%q is not one of %s (values are case-sensitive: %q)", val, strings.Join(enum, ", "), e)
		}
	}
	return fmt.Sprintf("%q is not one of %s", val, strings.Join(enum, ", "))
}

func validID(s string) bool {
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

func validDate(s string) bool {
	if !reDate.MatchString(s) {
		return false
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

func validDateTime(s string) bool {
	if !reDateTime.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}
