package oneroster

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

// TestReportCSVDefusesFormulas: values, column names and file names from an
// upload that a spreadsheet would run as formulas come out inert.
func TestReportCSVDefusesFormulas(t *testing.T) {
	u := base(t, V1p1)
	hostile := []string{`=HYPERLINK("https://evil.example","Re-authenticate")`, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx"}
	for i, h := range hostile {
		u.files["classes.csv"] += row(t, V1p1, "classes", "sourcedId", fmt.Sprintf("k%d", i+2), "title", "T", "courseSourcedId", "c1",
			"classType", h, "schoolSourcedId", "s1", "termSourcedIds", "t1")
	}
	u.set("=cmd.csv", "x\n").set("orgs.csv", strings.Replace(u.files["orgs.csv"], "parentSourcedId", "parentSourcedId,@ext", 1))
	r, _ := check(t, u.fs(), Options{})
	var out bytes.Buffer
	if err := r.WriteCSV(&out); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(out.String(), "\r\n"), "\r\n") {
		if !strings.HasPrefix(line, `"`) && !strings.Contains(line, "\r") {
			t.Errorf("line %d does not start with a quoted cell: %q", i+1, line)
		}
	}
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		for _, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("live formula cell %q", cell)
			}
			seen[cell] = true
		}
	}
	for _, h := range hostile {
		if !seen["'"+h] {
			t.Errorf("the value %q is not in the report as '%s", h, h)
		}
	}
	if !seen["'=cmd.csv"] || !seen["'@ext"] {
		t.Errorf("a hostile file or column name is not defused: %v", recs)
	}
}

// TestHugeCellsCostLittle: a small zip that expands to 64 MiB of cells is
// read with bounded memory, and the report keeps excerpts, not cells.
func TestHugeCellsCostLittle(t *testing.T) {
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	u := base(t, V1p1)
	for n, c := range map[string]string{"manifest.csv": u.manifestText(), "orgs.csv": u.files["orgs.csv"], "academicSessions.csv": u.files["academicSessions.csv"],
		"courses.csv": u.files["courses.csv"], "classes.csv": u.files["classes.csv"], "enrollments.csv": u.files["enrollments.csv"]} {
		w, _ := zw.Create(n)
		w.Write([]byte(c))
	}
	w, _ := zw.Create("users.csv")
	w.Write([]byte(u.files["users.csv"]))
	cell := strings.Repeat("=HYPERLINK(", 8<<20/11)
	for i := 0; i < 8; i++ {
		fmt.Fprintf(w, "u%d,,,true,s1,student,u%d,,%s,B,,,,,,,,\n", 10+i, 10+i, cell)
	}
	zw.Close()
	if zbuf.Len() > 1<<20 {
		t.Fatalf("the zip is %d bytes", zbuf.Len())
	}
	zr, err := zip.NewReader(bytes.NewReader(zbuf.Bytes()), int64(zbuf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := NewReport(5)
	res, err := ValidateWith(zr, Options{}, r.Add)
	if err != nil {
		t.Fatal(err)
	}
	r.Finish(res)
	runtime.ReadMemStats(&after)
	t.Logf("allocated %.1f MiB", float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
		t.Errorf("validating 64 MiB of cells allocated %d MiB", alloc>>20)
	}
	if n := r.Count("row.field_too_large"); n != 8 {
		t.Errorf("%d row.field_too_large, want 8", n)
	}
	js, _ := json.Marshal(r)
	var csvOut bytes.Buffer
	r.WriteCSV(&csvOut)
	if len(js) > 32<<10 || csvOut.Len() > 32<<10 {
		t.Errorf("report of %d bytes JSON, %d bytes CSV", len(js), csvOut.Len())
	}
	for _, g := range r.Groups {
		for _, e := range g.Examples {
			if len(e.Value) > 200 || len(e.Message) > 700 {
				t.Errorf("a finding carries %d bytes of value", len(e.Value))
			}
		}
	}
}

// TestReportIsBounded: a zip with thousands of stray entries gives a report
// of bounded size whose counts stay exact.
func TestReportIsBounded(t *testing.T) {
	u := base(t, V1p2)
	fsys := u.fs()
	for i := 0; i < 5000; i++ {
		fsys[fmt.Sprintf("stray-%04d-%s.csv", i, strings.Repeat("x", 300))] = &fstest.MapFile{Data: []byte("x\n")}
	}
	r, _ := check(t, fsys, Options{})
	if r.Count("package.unknown_file") != 5000 || r.Errors != 5000 {
		t.Fatalf("counts %d/%d, want 5000", r.Count("package.unknown_file"), r.Errors)
	}
	if len(r.Groups) > MaxGroups+1 || !r.Truncated {
		t.Fatalf("%d groups (truncated %v)", len(r.Groups), r.Truncated)
	}
	js, _ := json.Marshal(r)
	if len(js) > 1<<20 {
		t.Fatalf("report JSON of %d bytes", len(js))
	}
}

// TestREADMEExplainsEveryCode: the README's OneRoster table lists each code
// with its meaning, so the three places never drift.
func TestREADMEExplainsEveryCode(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, c := range Codes {
		if !strings.Contains(readme, "| `"+c.Code+"` | ") || !strings.Contains(readme, " | "+c.Meaning+" | "+c.Fix+" |\n") {
			t.Errorf("README has no row for %s with its meaning and fix", c.Code)
		}
	}
}

// TestPolicyBulkLifecycleKnob: SIS exports that fill status in bulk files
// load by default; a tenant's policy can refuse them.
func TestPolicyBulkLifecycleKnob(t *testing.T) {
	u := base(t, V1p2)
	u.set("orgs.csv", strings.ReplaceAll(u.files["orgs.csv"], "d1,,,", "d1,active,2026-09-01T00:00:00Z,"))
	u.set("orgs.csv", strings.ReplaceAll(u.files["orgs.csv"], "s1,,,", "s1,active,2026-09-01T00:00:00Z,"))
	decide := func(p Policy) (*Report, Decision) {
		r := NewReport(5)
		res, err := ValidateWith(u.fs(), p.Options(), r.Add)
		if err != nil {
			t.Fatal(err)
		}
		r.Finish(res)
		return r, p.Decide(r, nil)
	}
	r, d := decide(DefaultPolicy)
	if r.Warnings != 4 || r.Errors != 0 || !d.Load {
		t.Fatalf("default policy: %d errors, %d warnings, %+v", r.Errors, r.Warnings, d)
	}
	strict := DefaultPolicy
	strict.BulkLifecycle = SevError
	r, d = decide(strict)
	if r.Errors != 4 || d.Load || !strings.Contains(strings.Join(d.Reasons, ";"), "orgs.csv: 100.0% of rows have errors") {
		t.Fatalf("strict policy: %d errors, %+v", r.Errors, d)
	}
	if err := (Policy{BulkLifecycle: "fatal"}).Check(); err == nil || !strings.Contains(err.Error(), "bulk_lifecycle") {
		t.Fatalf("a bad bulk_lifecycle passed the check: %v", err)
	}
}
