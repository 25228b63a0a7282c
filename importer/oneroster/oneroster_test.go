package oneroster

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func validate(t *testing.T, fsys fs.FS) *Report {
	t.Helper()
	r := NewReport(5)
	res, err := Validate(fsys, r.Add)
	if err != nil {
		t.Fatal(err)
	}
	return r.Finish(res)
}

func TestGeneratedRosterIsValid(t *testing.T) {
	dir := t.TempDir()
	counts, err := Generate(dir, GenOptions{Students: 2000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if counts["users"] != 2000+2000/19 || counts["enrollments"] < 2000*5 || counts["demographics"] != 2000 {
		t.Fatalf("counts = %v", counts)
	}
	r := validate(t, os.DirFS(dir))
	if r.Errors+r.Warnings != 0 {
		t.Fatalf("a generated roster has findings: %+v", r.Groups)
	}
	if r.Files["enrollments"].Rows != counts["enrollments"] || r.Version != "1.1" {
		t.Fatalf("stats = %+v", r.Files["enrollments"])
	}
}

func TestInjectedRealWorldMistakes(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(dir, GenOptions{Students: 300, Seed: 2, InjectErrors: true}); err != nil {
		t.Fatal(err)
	}
	r := validate(t, os.DirFS(dir))
	for code, n := range map[string]int{"row.invalid_enum": 1, "row.invalid_boolean": 1, "row.invalid_date": 1,
		"row.duplicate_sourcedid": 1, "reference.missing_target_record": 1} {
		if got := r.Count(code); got != n {
			t.Errorf("%s: %d findings, want %d", code, got, n)
		}
	}
	var enum Finding
	for _, g := range r.Groups {
		if g.Code == "row.invalid_enum" {
			enum = g.Examples[0]
		}
	}
	if enum.File != "classes.csv" || enum.Column != "classType" || enum.Value != "Scheduled" || enum.Line < 2 ||
		!strings.Contains(enum.Message, `case-sensitive: "scheduled"`) {
		t.Fatalf("the Scheduled finding = %+v", enum)
	}
}

const manifest11 = "propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\nfile.orgs,bulk\n"
const orgsHeader = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n"

// TestEachFindingCode builds the smallest upload that shows each code.
func TestEachFindingCode(t *testing.T) {
	withOrgs := func(rows string) fstest.MapFS {
		return fstest.MapFS{"manifest.csv": {Data: []byte(manifest11)}, "orgs.csv": {Data: []byte(orgsHeader + rows)}}
	}
	users := func(manifestExtra, orgs, usersCSV string) fstest.MapFS {
		return fstest.MapFS{
			"manifest.csv": {Data: []byte(manifest11 + manifestExtra)},
			"orgs.csv":     {Data: []byte(orgsHeader + orgs)},
			"users.csv": {Data: []byte("sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n" +
				usersCSV)},
		}
	}
	const school = "s1,,,School,school,,\n"
	for _, tc := range []struct {
		name   string
		fs     fstest.MapFS
		code   string
		line   int
		column string
	}{
		{"no manifest", fstest.MapFS{"orgs.csv": {Data: []byte(orgsHeader)}}, "manifest.missing", 0, ""},
		{"manifest header", fstest.MapFS{"manifest.csv": {Data: []byte("property,value\n")}}, "manifest.invalid_header", 1, ""},
		{"bad version", fstest.MapFS{"manifest.csv": {Data: []byte("propertyName,value\noneroster.version,2.0\n")}}, "manifest.invalid_version", 2, "value"},
		{"bad file mode", fstest.MapFS{"manifest.csv": {Data: []byte("propertyName,value\noneroster.version,1.1\nfile.orgs,full\n")}}, "manifest.invalid_value", 3, "value"},
		{"listed, missing", fstest.MapFS{"manifest.csv": {Data: []byte(manifest11)}}, "manifest.missing_file", 4, "value"},
		{"present, unlisted", fstest.MapFS{"manifest.csv": {Data: []byte(manifest11)}, "orgs.csv": {Data: []byte(orgsHeader + school)},
			"courses.csv": {Data: []byte("x\n")}}, "manifest.unlisted_file", 0, ""},
		{"misspelled header", withOrgs(""), "", 0, ""}, // placeholder replaced below
		{"header with no rows", withOrgs(""), "file.empty", 1, ""},
		{"bare quote", withOrgs("s1,,,Sch\"ool,school,,\n"), "file.csv_syntax", 2, ""},
		{"not UTF-8", withOrgs("s1,,,Sch\xffool,school,,\n"), "file.encoding", 2, "name"},
		{"field count", withOrgs("s1,,,School,school\n"), "row.field_count", 2, ""},
		{"missing required", withOrgs("s1,,,,school,,\n"), "row.missing_required", 2, "name"},
		{"enum", withOrgs("s1,,,School,School,,\n"), "row.invalid_enum", 2, "type"},
		{"sourcedId syntax", withOrgs(" s1,,,School,school,,\n"), "row.invalid_sourcedid", 2, "sourcedId"},
		{"duplicate", withOrgs(school + school), "row.duplicate_sourcedid", 3, "sourcedId"},
		{"bulk delete", withOrgs("s1,tobedeleted,,School,school,,\n"), "row.bulk_tobedeleted", 2, "status"},
		{"datetime", withOrgs("s1,,2026-09-01,School,school,,\n"), "row.invalid_datetime", 2, "dateLastModified"},
		{"self reference", withOrgs("s1,,,School,school,,d9\n"), "reference.missing_target_record", 2, "parentSourcedId"},
		{"boolean", users("file.users,bulk\n", school, "u1,,,TRUE,s1,student,u1,,A,B,,,,,,,,\n"), "row.invalid_boolean", 2, "enabledUser"},
		{"grade", users("file.users,bulk\n", school, "u1,,,true,s1,student,u1,,A,B,,,,,,,1,\n"), "row.invalid_grade", 2, "grades"},
		{"reference", users("file.users,bulk\n", school, "u1,,,true,s9,student,u1,,A,B,,,,,,,,\n"), "reference.missing_target_record", 2, "orgSourcedIds"},
		{"delta status", fstest.MapFS{"manifest.csv": {Data: []byte("propertyName,value\noneroster.version,1.1\nfile.orgs,delta\n")},
			"orgs.csv": {Data: []byte(orgsHeader + "s1,,2026-09-01T00:00:00.000Z,School,school,,\n")}}, "row.delta_missing_status", 2, "status"},
		{"delta date", fstest.MapFS{"manifest.csv": {Data: []byte("propertyName,value\noneroster.version,1.1\nfile.orgs,delta\n")},
			"orgs.csv": {Data: []byte(orgsHeader + "s1,active,,School,school,,\n")}}, "row.delta_missing_date_last_modified", 2, "dateLastModified"},
	} {
		if tc.name == "misspelled header" {
			tc.fs["orgs.csv"] = &fstest.MapFile{Data: []byte("\ufeffsourcedId,status,dateLastModified,Name,type,identifier,parentSourcedId\n" + school)}
			tc.code, tc.line, tc.column = "file.header_mismatch", 1, "name"
		}
		t.Run(tc.name, func(t *testing.T) {
			r := NewReport(5)
			res, err := Validate(tc.fs, r.Add)
			if err != nil {
				t.Fatal(err)
			}
			r.Finish(res)
			var got *Finding
			for _, g := range r.Groups {
				if g.Code == tc.code {
					got = &g.Examples[0]
				}
			}
			if got == nil {
				t.Fatalf("no %s; findings: %+v", tc.code, r.Groups)
			}
			if got.Line != tc.line || got.Column != tc.column || got.Message == "" {
				t.Fatalf("%s at line %d column %q (%s), want line %d column %q", tc.code, got.Line, got.Column, got.Message, tc.line, tc.column)
			}
		})
	}
}

func TestDatesAsDistrictsGetThemWrong(t *testing.T) {
	for _, d := range []string{"1/05/2023", "2023-1-05", "2023-02-30", "05/01/2023"} {
		if validDate(d) {
			t.Errorf("%q accepted as a date", d)
		}
	}
	ok, utc := validDateTime("2026-09-01T04:15:00.000Z")
	bad, _ := validDateTime("2026-09-01 04:15")
	if !validDate("2023-01-05") || !ok || !utc || bad {
		t.Fatal("good dates refused or a bad datetime accepted")
	}
}

func TestZipBundleAndTruncatedZip(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(dir, GenOptions{Students: 50, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		w, _ := zw.Create(e.Name())
		w.Write(data)
	}
	zw.Close()
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if r := validate(t, zr); r.Errors != 0 {
		t.Fatalf("a zipped roster has errors: %+v", r.Groups)
	}
	cut := buf.Bytes()[:buf.Len()-30]
	if _, err := zip.NewReader(bytes.NewReader(cut), int64(len(cut))); err == nil {
		t.Fatal("a truncated zip opened: its central directory is gone, so the upload is not complete")
	}
}

func TestPolicyAndReport(t *testing.T) {
	dir := t.TempDir()
	Generate(dir, GenOptions{Students: 300, Seed: 2, InjectErrors: true})
	r := validate(t, os.DirFS(dir))
	if d := DefaultPolicy.Decide(r, nil); !d.Load {
		t.Fatalf("a few bad rows refused the load: %v", d.Reasons)
	}
	// The current roster has twice the users: a bulk upload would delete half.
	d := DefaultPolicy.Decide(r, map[string]int{"users": 2 * r.Files["users"].Rows})
	if d.Load || !strings.Contains(strings.Join(d.Reasons, ";"), "users: the upload would remove") {
		t.Fatalf("mass deletion not refused: %+v", d)
	}
	strict := Policy{RejectStructural: true, MaxRowErrorPercent: 0.01}
	if d := strict.Decide(r, nil); d.Load {
		t.Fatal("row errors over the threshold did not refuse the load")
	}
	var csvOut bytes.Buffer
	if err := r.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&csvOut).ReadAll()
	if err != nil || strings.Join(recs[0], ",") != "severity,code,file,count,line,column,value,message,meaning,fix" {
		t.Fatalf("report CSV header %v: %v", recs[0], err)
	}
	found := false
	for _, r := range recs[1:] {
		if r[1] == "row.invalid_enum" && r[2] == "classes.csv" && r[3] == "1" && r[5] == "classType" && r[8] != "" && r[9] != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no explained row.invalid_enum line for classes.csv in %v", recs)
	}
}

func TestListedFiles(t *testing.T) {
	got, err := ListedFiles(strings.NewReader("propertyName,value\noneroster.version,1.1\nfile.orgs,bulk\nfile.users,delta\nfile.lineItems,absent\n"))
	if err != nil || strings.Join(got, " ") != "orgs.csv users.csv" {
		t.Fatalf("%v %v", got, err)
	}
}
