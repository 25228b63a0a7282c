package oneroster

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// upload is a small valid OneRoster set of one version, built in memory, that
// each test case changes in one place.
type upload struct {
	ver      Version
	modes    map[string]Mode
	files    map[string]string // name -> content
	manifest string            // replaces the generated manifest when set
	extra    string            // rows appended to the generated manifest
}

// row builds one CSV line of a table from column=value pairs (the others
// empty), so fixtures follow the header whatever its length.
func row(t testing.TB, ver Version, table string, kv ...string) string {
	t.Helper()
	s, _ := SpecFor(ver)
	tb, ok := s.Table(table)
	if !ok {
		t.Fatalf("no table %s in %s", table, ver)
	}
	vals := make([]string, 0, len(tb.Columns))
	set := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, _, ok := tb.Column(kv[i]); !ok {
			t.Fatalf("%s has no column %s", table, kv[i])
		}
		set[kv[i]] = kv[i+1]
	}
	for _, c := range tb.Columns {
		if c.Omittable {
			continue
		}
		v := set[c.Name]
		if strings.ContainsAny(v, ",\"\n\r") {
			v = `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
		}
		vals = append(vals, v)
	}
	return strings.Join(vals, ",") + "\n"
}

func header(ver Version, table string) string {
	s, _ := SpecFor(ver)
	tb, _ := s.Table(table)
	var h []string
	for _, c := range tb.Columns {
		if !c.Omittable {
			h = append(h, c.Name)
		}
	}
	return strings.Join(h, ",") + "\n"
}

func base(t testing.TB, ver Version) *upload {
	u := &upload{ver: ver, modes: map[string]Mode{}, files: map[string]string{}}
	add := func(table string, rows ...string) {
		u.modes[table] = Bulk
		u.files[table+".csv"] = header(ver, table) + strings.Join(rows, "")
	}
	grade := "09"
	if ver == V1p2 {
		grade = "9"
	}
	add("orgs", row(t, ver, "orgs", "sourcedId", "d1", "name", "District", "type", "district"),
		row(t, ver, "orgs", "sourcedId", "s1", "name", "School 1", "type", "school", "parentSourcedId", "d1"))
	add("academicSessions", row(t, ver, "academicSessions", "sourcedId", "t1", "title", "Fall", "type", "term",
		"startDate", "2026-08-10", "endDate", "2026-12-18", "schoolYear", "2027"))
	add("courses", row(t, ver, "courses", "sourcedId", "c1", "schoolYearSourcedId", "t1", "title", "Algebra", "grades", grade, "orgSourcedId", "s1"))
	add("classes", row(t, ver, "classes", "sourcedId", "k1", "title", "Algebra A", "grades", grade, "courseSourcedId", "c1",
		"classType", "scheduled", "schoolSourcedId", "s1", "termSourcedIds", "t1", "periods", "1,3"))
	if ver == V1p1 {
		add("users", row(t, ver, "users", "sourcedId", "u1", "enabledUser", "true", "orgSourcedIds", "s1", "role", "student",
			"username", "u1", "userIds", "{LDAP:u1},{LTI:9}", "givenName", "Ana", "familyName", "García", "grades", grade),
			row(t, ver, "users", "sourcedId", "u2", "enabledUser", "true", "orgSourcedIds", "s1,d1", "role", "teacher",
				"username", "u2", "givenName", "Luis", "familyName", "Perez"))
	} else {
		add("users", row(t, ver, "users", "sourcedId", "u1", "enabledUser", "true", "username", "u1", "userIds", "{LDAP:u1},{LTI:9}",
			"givenName", "Ana", "familyName", "García", "grades", grade, "primaryOrgSourcedId", "s1"),
			row(t, ver, "users", "sourcedId", "u2", "enabledUser", "true", "username", "u2", "givenName", "Luis", "familyName", "Perez"))
		add("roles", row(t, ver, "roles", "sourcedId", "r1", "userSourcedId", "u1", "roleType", "primary", "role", "student", "orgSourcedId", "s1"),
			row(t, ver, "roles", "sourcedId", "r2", "userSourcedId", "u2", "roleType", "primary", "role", "teacher", "orgSourcedId", "s1"))
	}
	add("enrollments", row(t, ver, "enrollments", "sourcedId", "e1", "classSourcedId", "k1", "schoolSourcedId", "s1", "userSourcedId", "u1",
		"role", "student", "beginDate", "2026-08-10", "endDate", "2026-12-18"))
	return u
}

func (u *upload) set(name, content string) *upload { u.files[name] = content; return u }
func (u *upload) mode(table string, m Mode) *upload {
	u.modes[table] = m
	return u
}

// gradebook adds a category and a line item in bulk.
func (u *upload) gradebook(t testing.TB, lineItem ...string) *upload {
	u.mode("categories", Bulk).set("categories.csv", header(u.ver, "categories")+row(t, u.ver, "categories", "sourcedId", "g1", "title", "Homework"))
	period := "gradingPeriodSourcedId"
	kv := []string{"sourcedId", "l1", "title", "Quiz", "assignDate", "2026-09-01", "dueDate", "2026-09-08", "classSourcedId", "k1",
		"categorySourcedId", "g1", "resultValueMin", "0", "resultValueMax", "100"}
	if u.ver == V1p2 {
		period = "academicSessionSourcedId"
		kv = append(kv, "schoolSourcedId", "s1")
	}
	kv = append(kv, period, "t1")
	kv = append(kv, lineItem...)
	return u.mode("lineItems", Bulk).set("lineItems.csv", header(u.ver, "lineItems")+row(t, u.ver, "lineItems", kv...))
}

func (u *upload) manifestText() string {
	if u.manifest != "" {
		return u.manifest
	}
	var b strings.Builder
	b.WriteString("propertyName,value\nmanifest.version,1.0\noneroster.version," + string(u.ver) + "\n")
	s, _ := SpecFor(u.ver)
	for _, tb := range s.Tables {
		m := u.modes[tb.Name]
		if m == "" {
			m = Absent
		}
		b.WriteString("file." + tb.Name + "," + string(m) + "\n")
	}
	b.WriteString("source.systemName,etlhub test\n")
	b.WriteString(u.extra)
	return b.String()
}

func (u *upload) fs() fstest.MapFS {
	m := fstest.MapFS{"manifest.csv": {Data: []byte(u.manifestText())}}
	for n, c := range u.files {
		m[n] = &fstest.MapFile{Data: []byte(c)}
	}
	return m
}

// check validates and fails on a code the catalog does not explain.
func check(t *testing.T, fsys fstest.MapFS, o Options) (*Report, []Finding) {
	t.Helper()
	r := NewReport(20)
	var all []Finding
	res, err := ValidateWith(fsys, o, func(f Finding) { all = append(all, f); r.Add(f) })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if _, ok := Explain(f.Code); !ok {
			t.Errorf("code %s is not in Codes", f.Code)
		}
		if f.Message == "" || f.File == "" {
			t.Errorf("finding without message or file: %+v", f)
		}
	}
	return r.Finish(res), all
}

func TestBaseSetsAreValid(t *testing.T) {
	for _, ver := range Versions() {
		t.Run(string(ver), func(t *testing.T) {
			r, all := check(t, base(t, ver).fs(), Options{})
			if len(all) != 0 {
				t.Fatalf("findings on a valid %s set: %+v", ver, all)
			}
			if r.Version != string(ver) || r.Files["users"].Rows != 2 || r.Files["enrollments"].Mode != Bulk {
				t.Fatalf("result = %s %+v", r.Version, r.Files)
			}
		})
	}
}

type want struct {
	code, file string
	line       int
	column     string
	sev        Severity
}

func expect(t *testing.T, all []Finding, w want) {
	t.Helper()
	for _, f := range all {
		if f.Code == w.code && f.File == w.file && f.Line == w.line && f.Column == w.column && f.Severity == w.sev {
			return
		}
	}
	t.Fatalf("no %s %s at %s:%d column %q; findings:\n%s", w.sev, w.code, w.file, w.line, w.column, dump(all))
}

func dump(all []Finding) string {
	var b strings.Builder
	for _, f := range all {
		b.WriteString("  " + string(f.Severity) + " " + f.Code + " " + f.File + " " + f.Column + " " + f.Message + "\n")
	}
	return b.String()
}

// TestRulesBothVersions shows each rule that 1.1 and 1.2 share, on each
// version, with its code, file, line, column and severity.
func TestRulesBothVersions(t *testing.T) {
	users := func(t *testing.T, u *upload, kv ...string) {
		base := []string{"sourcedId", "u9", "enabledUser", "true", "username", "u9", "givenName", "A", "familyName", "B"}
		if u.ver == V1p1 {
			base = append(base, "orgSourcedIds", "s1", "role", "student")
		}
		u.files["users.csv"] += row(t, u.ver, "users", append(base, kv...)...)
	}
	cases := []struct {
		name   string
		change func(t *testing.T, u *upload)
		o      Options
		want   want
	}{
		{"no manifest", func(t *testing.T, u *upload) { u.manifest = "x" }, Options{}, want{}}, // replaced below
		{"manifest header", func(t *testing.T, u *upload) {
			u.manifest = "PropertyName,value\noneroster.version," + string(u.ver) + "\n"
		},
			Options{}, want{"manifest.invalid_header", "manifest.csv", 1, "", SevError}},
		{"no oneroster.version", func(t *testing.T, u *upload) {
			u.manifest = strings.Replace(u.manifestText(), "oneroster.version,"+string(u.ver)+"\n", "", 1)
		}, Options{}, want{"manifest.invalid_version", "manifest.csv", 0, "propertyName", SevError}},
		{"no manifest.version", func(t *testing.T, u *upload) {
			u.manifest = strings.Replace(u.manifestText(), "manifest.version,1.0\n", "", 1)
		}, Options{}, want{"manifest.missing_property", "manifest.csv", 0, "propertyName", SevError}},
		{"manifest.version from Excel", func(t *testing.T, u *upload) {
			u.manifest = strings.Replace(u.manifestText(), "manifest.version,1.0\n", "manifest.version,1\n", 1)
		}, Options{}, want{"manifest.invalid_value", "manifest.csv", 2, "value", SevError}},
		{"a file row left out", func(t *testing.T, u *upload) {
			u.manifest = strings.Replace(u.manifestText(), "file.demographics,absent\n", "", 1)
		}, Options{}, want{"manifest.missing_property", "manifest.csv", 0, "propertyName", SevError}},
		{"typo in a property", func(t *testing.T, u *upload) { u.extra = "fiel.demographics,absent\n" },
			Options{}, want{"manifest.unknown_property", "manifest.csv", 0, "propertyName", SevError}}, // line set below
		{"property twice", func(t *testing.T, u *upload) { u.extra = "source.systemName,again\n" },
			Options{}, want{"manifest.duplicate_property", "manifest.csv", 0, "propertyName", SevError}},
		{"mode in the wrong case", func(t *testing.T, u *upload) { u.mode("users", "Bulk") },
			Options{}, want{"manifest.invalid_value", "manifest.csv", 0, "value", SevError}},
		{"listed, not supplied", func(t *testing.T, u *upload) { u.mode("demographics", Bulk) },
			Options{}, want{"manifest.missing_file", "manifest.csv", 0, "value", SevError}},
		{"supplied, declared absent", func(t *testing.T, u *upload) {
			u.set("demographics.csv", header(u.ver, "demographics")+row(t, u.ver, "demographics", "sourcedId", "u1"))
		}, Options{}, want{"manifest.file_declared_absent", "demographics.csv", 0, "", SevError}},
		{"an unknown CSV", func(t *testing.T, u *upload) { u.set("extra.csv", "sourcedId\nx1\n") },
			Options{}, want{"package.unknown_file", "extra.csv", 0, "", SevError}},
		{"a file inside a folder", func(t *testing.T, u *upload) { u.set("export/users.csv", u.files["users.csv"]) },
			Options{}, want{"package.unknown_file", "export/users.csv", 0, "", SevError}},
		{"a text file", func(t *testing.T, u *upload) { u.set("README.txt", "hello") },
			Options{}, want{"package.extra_file", "README.txt", 0, "", SevWarning}},
		{"zero bytes", func(t *testing.T, u *upload) { u.set("enrollments.csv", "") },
			Options{}, want{"file.zero_bytes", "enrollments.csv", 0, "", SevError}},
		{"header only", func(t *testing.T, u *upload) { u.set("enrollments.csv", header(u.ver, "enrollments")) },
			Options{}, want{"file.empty", "enrollments.csv", 1, "", SevError}},
		{"bare quote", func(t *testing.T, u *upload) { u.files["orgs.csv"] += "s2,,,Sample \"School\",school,,\n" },
			Options{}, want{"file.csv_syntax", "orgs.csv", 4, "", SevError}},
		{"text after a closing quote", func(t *testing.T, u *upload) { u.files["orgs.csv"] += "s2,,,\"School\"x,school,,\n" },
			Options{}, want{"file.csv_syntax", "orgs.csv", 4, "", SevError}},
		{"unclosed quote", func(t *testing.T, u *upload) { u.files["orgs.csv"] += "s2,,,\"School,school,,\n" },
			Options{}, want{"file.csv_syntax", "orgs.csv", 5, "", SevError}},
		{"Latin-1", func(t *testing.T, u *upload) { users(t, u, "middleName", "Zo\xeb") },
			Options{}, want{"file.encoding", "users.csv", 4, "middleName", SevError}},
		{"UTF-16", func(t *testing.T, u *upload) { u.set("orgs.csv", "\xff\xfes\x00o\x00") },
			Options{}, want{"file.encoding", "orgs.csv", 1, "", SevError}},
		{"header case", func(t *testing.T, u *upload) {
			u.set("orgs.csv", strings.Replace(u.files["orgs.csv"], "sourcedId", "sourcedID", 1))
		}, Options{}, want{"file.header_mismatch", "orgs.csv", 1, "sourcedId", SevError}},
		{"header order", func(t *testing.T, u *upload) {
			u.set("users.csv", strings.Replace(u.files["users.csv"], "givenName,familyName", "familyName,givenName", 1))
		}, Options{}, want{"file.header_mismatch", "users.csv", 1, "givenName", SevError}},
		{"metadata in the middle", func(t *testing.T, u *upload) {
			u.set("orgs.csv", "sourcedId,status,dateLastModified,metadata.x,name,type,identifier,parentSourcedId\ns1,,,x,School,school,,\n")
		}, Options{}, want{"file.header_mismatch", "orgs.csv", 1, "name", SevError}},
		{"extension not named metadata", func(t *testing.T, u *upload) {
			u.set("orgs.csv", "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId,ext_id\ns1,,,School,school,,,9\n")
		}, Options{}, want{"file.header_mismatch", "orgs.csv", 1, "ext_id", SevError}},
		{"header too short", func(t *testing.T, u *upload) {
			u.set("orgs.csv", "sourcedId,status,dateLastModified,name\ns1,,,School\n")
		},
			Options{}, want{"file.header_mismatch", "orgs.csv", 1, "type", SevError}},
		{"duplicate header", func(t *testing.T, u *upload) {
			u.set("orgs.csv", "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId,metadata.a,metadata.a\ns1,,,School,school,,,1,2\n")
		}, Options{}, want{"file.duplicate_header", "orgs.csv", 1, "metadata.a", SevError}},
		{"field count", func(t *testing.T, u *upload) { u.files["orgs.csv"] += "s2,,,School 2,school\n" },
			Options{}, want{"row.field_count", "orgs.csv", 4, "", SevError}},
		{"field too large", func(t *testing.T, u *upload) { users(t, u, "middleName", strings.Repeat("x", 300)) },
			Options{MaxFieldBytes: 256}, want{"row.field_too_large", "users.csv", 4, "middleName", SevError}},
		{"CR inside a field", func(t *testing.T, u *upload) { users(t, u, "middleName", "a\r\nb") },
			Options{}, want{"row.cr_in_field", "users.csv", 4, "middleName", SevError}},
		{"BOM inside the file", func(t *testing.T, u *upload) { u.files["orgs.csv"] += "\ufeffs2,,,School 2,school,,\n" },
			Options{}, want{"row.misplaced_bom", "orgs.csv", 4, "sourcedId", SevError}},
		{"missing required", func(t *testing.T, u *upload) { users(t, u, "givenName", "") },
			Options{}, want{"row.missing_required", "users.csv", 4, "givenName", SevError}},
		{"enum case", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, u.ver, "orgs", "sourcedId", "s2", "name", "S", "type", "School")
		},
			Options{}, want{"row.invalid_enum", "orgs.csv", 4, "type", SevError}},
		{"sourcedId with a space at the end", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, u.ver, "orgs", "sourcedId", "s2 ", "name", "S", "type", "school")
		}, Options{}, want{"row.invalid_sourcedid", "orgs.csv", 4, "sourcedId", SevError}},
		{"duplicate sourcedId", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, u.ver, "orgs", "sourcedId", "s1", "name", "S", "type", "school")
		}, Options{}, want{"row.duplicate_sourcedid", "orgs.csv", 4, "sourcedId", SevError}},
		{"bulk tobedeleted", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, u.ver, "orgs", "sourcedId", "s2", "status", "tobedeleted", "name", "S", "type", "school")
		}, Options{}, want{"row.bulk_tobedeleted", "orgs.csv", 4, "status", SevError}},
		{"bulk status filled (spec: error)", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, u.ver, "orgs", "sourcedId", "s2", "status", "active", "name", "S", "type", "school")
		}, Options{}, want{"row.bulk_lifecycle", "orgs.csv", 4, "status", SevError}},
		{"bulk dateLastModified filled (policy: warning)", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, u.ver, "orgs", "sourcedId", "s2", "dateLastModified", "2026-09-01T04:15:00.000Z", "name", "S", "type", "school")
		}, DefaultPolicy.Options(), want{"row.bulk_lifecycle", "orgs.csv", 4, "dateLastModified", SevWarning}},
		{"delta without status", func(t *testing.T, u *upload) {
			u.mode("orgs", Delta).set("orgs.csv", header(u.ver, "orgs")+row(t, u.ver, "orgs", "sourcedId", "s1", "dateLastModified", "2026-09-01T04:15:00Z", "name", "S", "type", "school"))
		}, Options{}, want{"row.delta_missing_status", "orgs.csv", 2, "status", SevError}},
		{"delta without dateLastModified", func(t *testing.T, u *upload) {
			u.mode("orgs", Delta).set("orgs.csv", header(u.ver, "orgs")+row(t, u.ver, "orgs", "sourcedId", "s1", "status", "active", "name", "S", "type", "school"))
		}, Options{}, want{"row.delta_missing_date_last_modified", "orgs.csv", 2, "dateLastModified", SevError}},
		{"delta date-time as a date", func(t *testing.T, u *upload) {
			u.mode("orgs", Delta).set("orgs.csv", header(u.ver, "orgs")+row(t, u.ver, "orgs", "sourcedId", "s1", "status", "active", "dateLastModified", "2026-09-01", "name", "S", "type", "school"))
		}, Options{}, want{"row.invalid_datetime", "orgs.csv", 2, "dateLastModified", SevError}},
		{"delta date-time with an offset", func(t *testing.T, u *upload) {
			u.mode("orgs", Delta).set("orgs.csv", header(u.ver, "orgs")+row(t, u.ver, "orgs", "sourcedId", "s1", "status", "active", "dateLastModified", "2026-09-01T13:15:00+09:00", "name", "S", "type", "school"))
		}, Options{}, want{"row.datetime_not_utc", "orgs.csv", 2, "dateLastModified", SevError}},
		{"date with slashes", func(t *testing.T, u *upload) {
			u.set("academicSessions.csv", strings.Replace(u.files["academicSessions.csv"], "2026-08-10", "08/10/2026", 1))
		}, Options{}, want{"row.invalid_date", "academicSessions.csv", 2, "startDate", SevError}},
		{"school year as a range", func(t *testing.T, u *upload) {
			u.set("academicSessions.csv", strings.Replace(u.files["academicSessions.csv"], ",2027", ",2026-2027", 1))
		}, Options{}, want{"row.invalid_year", "academicSessions.csv", 2, "schoolYear", SevError}},
		{"Excel's TRUE", func(t *testing.T, u *upload) { users(t, u, "enabledUser", "TRUE") },
			Options{}, want{"row.invalid_boolean", "users.csv", 4, "enabledUser", SevError}},
		{"userIds without a type", func(t *testing.T, u *upload) { users(t, u, "userIds", "ldap-u9") },
			Options{}, want{"row.invalid_user_ids", "users.csv", 4, "userIds", SevError}},
		{"a term that ends before it starts", func(t *testing.T, u *upload) {
			u.set("academicSessions.csv", strings.Replace(u.files["academicSessions.csv"], "2026-12-18", "2026-07-01", 1))
		}, Options{}, want{"row.invalid_range", "academicSessions.csv", 2, "endDate", SevError}},
		{"a line item's range reversed", func(t *testing.T, u *upload) { u.gradebook(t, "resultValueMin", "100", "resultValueMax", "0") },
			Options{}, want{"row.invalid_range", "lineItems.csv", 2, "resultValueMax", SevError}},
		{"a score that is not a number", func(t *testing.T, u *upload) { u.gradebook(t, "resultValueMax", "ten") },
			Options{}, want{"row.invalid_number", "lineItems.csv", 2, "resultValueMax", SevError}},
		{"reference to nothing (bulk)", func(t *testing.T, u *upload) {
			u.files["enrollments.csv"] += row(t, u.ver, "enrollments", "sourcedId", "e2", "classSourcedId", "k1", "schoolSourcedId", "s1",
				"userSourcedId", "u404", "role", "student")
		}, Options{}, want{"reference.missing_target_record", "enrollments.csv", 3, "userSourcedId", SevError}},
		{"reference to nothing (delta)", func(t *testing.T, u *upload) {
			u.mode("enrollments", Delta).set("enrollments.csv", header(u.ver, "enrollments")+row(t, u.ver, "enrollments", "sourcedId", "e2",
				"status", "active", "dateLastModified", "2026-09-01T04:15:00.000Z", "classSourcedId", "k1", "schoolSourcedId", "s1",
				"userSourcedId", "u404", "role", "student"))
		}, Options{}, want{"reference.missing_target_record", "enrollments.csv", 2, "userSourcedId", SevWarning}},
		{"self reference to nothing", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, u.ver, "orgs", "sourcedId", "s2", "name", "S", "type", "school", "parentSourcedId", "d404")
		}, Options{}, want{"reference.missing_target_record", "orgs.csv", 4, "parentSourcedId", SevError}},
		{"bulk file whose target file is not supplied", func(t *testing.T, u *upload) {
			u.mode("courses", Absent)
			delete(u.files, "courses.csv")
		}, Options{}, want{"reference.missing_target_file", "classes.csv", 2, "courseSourcedId", SevError}},
	}
	for _, ver := range Versions() {
		for _, tc := range cases {
			t.Run(string(ver)+"/"+tc.name, func(t *testing.T) {
				u := base(t, ver)
				w := tc.want
				var fsys fstest.MapFS
				switch tc.name {
				case "no manifest":
					fsys = u.fs()
					delete(fsys, "manifest.csv")
					w = want{"manifest.missing", "manifest.csv", 0, "", SevError}
				default:
					tc.change(t, u)
					fsys = u.fs()
				}
				if w.code == "manifest.unknown_property" || w.code == "manifest.duplicate_property" {
					w.line = strings.Count(u.manifestText(), "\n")
				}
				if w.code == "manifest.invalid_value" && w.line == 0 {
					w.line = slices.Index(strings.Split(u.manifestText(), "\n"), "file.users,Bulk") + 1
				}
				if w.code == "manifest.missing_file" {
					w.line = slices.Index(strings.Split(u.manifestText(), "\n"), "file.demographics,bulk") + 1
				}
				_, all := check(t, fsys, tc.o)
				expect(t, all, w)
			})
		}
	}
}

// TestRules11 and TestRules12 show what differs between the versions.
func TestRules11(t *testing.T) {
	const v = V1p1
	cases := []struct {
		name   string
		change func(t *testing.T, u *upload)
		want   *want // nil: no finding at all
	}{
		{"a 1.2 file in a 1.1 set", func(t *testing.T, u *upload) { u.set("roles.csv", header(V1p2, "roles")) },
			&want{"package.unknown_file", "roles.csv", 0, "", SevError}},
		{"a 1.2 manifest row", func(t *testing.T, u *upload) { u.extra = "file.roles,absent\n" },
			&want{"manifest.unknown_property", "manifest.csv", 0, "propertyName", SevError}},
		{"the 1.2 users layout", func(t *testing.T, u *upload) {
			u.set("users.csv", header(V1p2, "users")+row(t, V1p2, "users", "sourcedId", "u1", "enabledUser", "true", "username", "u1", "givenName", "A", "familyName", "B"))
		}, &want{"file.header_mismatch", "users.csv", 1, "orgSourcedIds", SevError}},
		{"a grade outside CEDS", func(t *testing.T, u *upload) {
			u.set("courses.csv", strings.Replace(u.files["courses.csv"], ",09,", ",9,", 1))
		}, &want{"row.invalid_grade", "courses.csv", 2, "grades", SevError}},
		{"an ext: term", func(t *testing.T, u *upload) {
			u.set("classes.csv", strings.Replace(u.files["classes.csv"], "scheduled", "ext:lab", 1))
		}, &want{"row.invalid_enum", "classes.csv", 2, "classType", SevError}},
		{"sex other is 1.2", func(t *testing.T, u *upload) {
			u.mode("demographics", Bulk).set("demographics.csv", header(v, "demographics")+row(t, v, "demographics", "sourcedId", "u1", "sex", "other"))
		}, &want{"row.invalid_enum", "demographics.csv", 2, "sex", SevError}},
		{"enrollments.role aide", func(t *testing.T, u *upload) {
			u.set("enrollments.csv", strings.Replace(u.files["enrollments.csv"], "student", "aide", 1))
		}, &want{"row.invalid_enum", "enrollments.csv", 2, "role", SevError}},
		{"a sourcedId with # and : is fine in 1.1", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, v, "orgs", "sourcedId", "s#2:x y", "name", "S", "type", "school")
		}, nil},
		{"BOM and CRLF everywhere, quoted headers", func(t *testing.T, u *upload) {
			u.manifest = "\ufeff\"propertyName\",\"value\"\r\n" + strings.ReplaceAll(strings.SplitN(u.manifestText(), "\n", 2)[1], "\n", "\r\n")
			for n, c := range u.files {
				lines := strings.SplitN(c, "\n", 2)
				hdr := `"` + strings.ReplaceAll(lines[0], ",", `","`) + `"`
				u.files[n] = "\ufeff" + hdr + "\r\n" + strings.ReplaceAll(lines[1], "\n", "\r\n")
			}
		}, nil},
		{"a second BOM at the start", func(t *testing.T, u *upload) { u.set("orgs.csv", "\ufeff\ufeff"+u.files["orgs.csv"]) },
			&want{"file.header_mismatch", "orgs.csv", 1, "sourcedId", SevError}},
		{"OS metadata in a zip", func(t *testing.T, u *upload) {
			u.set("__MACOSX/._users.csv", "\x00\x05\x16\x07").set(".DS_Store", "x")
		}, nil},
		{"1.1 gradebook: score required", func(t *testing.T, u *upload) {
			u.gradebook(t)
			u.mode("results", Bulk).set("results.csv", header(v, "results")+row(t, v, "results", "sourcedId", "x1", "lineItemSourcedId", "l1",
				"studentSourcedId", "u1", "scoreStatus", "fully graded", "scoreDate", "2026-09-09"))
		}, &want{"row.missing_required", "results.csv", 2, "score", SevError}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := base(t, v)
			tc.change(t, u)
			_, all := check(t, u.fs(), Options{})
			if tc.want == nil {
				if len(all) > 0 {
					t.Fatalf("findings:\n%s", dump(all))
				}
				return
			}
			w := *tc.want
			if w.code == "manifest.unknown_property" {
				w.line = strings.Count(u.manifestText(), "\n")
			}
			expect(t, all, w)
		})
	}
}

func TestRules12(t *testing.T) {
	const v = V1p2
	cases := []struct {
		name   string
		change func(t *testing.T, u *upload)
		want   *want
	}{
		{"the 1.1 users layout", func(t *testing.T, u *upload) {
			u.set("users.csv", header(V1p1, "users")+row(t, V1p1, "users", "sourcedId", "u1", "enabledUser", "true", "orgSourcedIds", "s1",
				"role", "student", "username", "u1", "givenName", "A", "familyName", "B"))
		}, &want{"file.header_mismatch", "users.csv", 1, "username", SevError}},
		{"the 1.2.0 users layout with resourceSourcedIds", func(t *testing.T, u *upload) {
			s, _ := SpecFor(v)
			tb, _ := s.Table("users")
			u.mode("resources", Bulk).set("resources.csv", header(v, "resources")+row(t, v, "resources", "sourcedId", "res1", "vendorResourceId", "v1"))
			u.set("users.csv", strings.Join(tb.Header(), ",")+"\n"+"u1,,,true,u1,,A,B,,,,,,,,,,res1,,,,s1,\nu2,,,true,u2,,C,D,,,,,,,,,,,,,,,\n")
		}, nil},
		{"a 1.2 manifest without the 1.2 rows", func(t *testing.T, u *upload) {
			u.manifest = strings.Replace(u.manifestText(), "file.roles,bulk\n", "", 1)
		}, &want{"manifest.missing_property", "manifest.csv", 0, "propertyName", SevError}},
		{"a GUID with a space", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, v, "orgs", "sourcedId", "org 2", "name", "S", "type", "school")
		}, &want{"row.invalid_sourcedid", "orgs.csv", 4, "sourcedId", SevError}},
		{"a GUID with # and :", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, v, "orgs", "sourcedId", "user#1:A", "name", "S", "type", "school")
		}, &want{"row.invalid_sourcedid", "orgs.csv", 4, "sourcedId", SevError}},
		{"a GUID of 256 characters", func(t *testing.T, u *upload) {
			u.files["orgs.csv"] += row(t, v, "orgs", "sourcedId", strings.Repeat("a", 256), "name", "S", "type", "school")
		}, &want{"row.invalid_sourcedid", "orgs.csv", 4, "sourcedId", SevError}},
		{"grades from a local vocabulary", func(t *testing.T, u *upload) {
			u.set("courses.csv", strings.Replace(u.files["courses.csv"], ",9,", ",P1,", 1))
		}, nil},
		{"ext: terms where 1.2 allows them", func(t *testing.T, u *upload) {
			u.set("classes.csv", strings.Replace(u.files["classes.csv"], "scheduled", "ext:lab", 1))
			u.set("orgs.csv", strings.Replace(u.files["orgs.csv"], "district", "ext:region", 1))
			u.set("roles.csv", strings.Replace(u.files["roles.csv"], "teacher", "ext:observer", 1))
			u.mode("demographics", Bulk).set("demographics.csv", header(v, "demographics")+row(t, v, "demographics", "sourcedId", "u1", "sex", "ext:x")+
				row(t, v, "demographics", "sourcedId", "u2", "sex", "unspecified"))
		}, nil},
		{"an ext: term where 1.2 does not allow it", func(t *testing.T, u *upload) {
			u.set("roles.csv", strings.Replace(u.files["roles.csv"], "primary", "ext:main", 1))
		}, &want{"row.invalid_enum", "roles.csv", 2, "roleType", SevError}},
		{"an empty ext: term", func(t *testing.T, u *upload) {
			u.set("classes.csv", strings.Replace(u.files["classes.csv"], "scheduled", "ext:", 1))
		}, &want{"row.invalid_enum", "classes.csv", 2, "classType", SevError}},
		{"roles point at a user that is not there", func(t *testing.T, u *upload) {
			u.files["roles.csv"] += row(t, v, "roles", "sourcedId", "r3", "userSourcedId", "u404", "roleType", "primary", "role", "student", "orgSourcedId", "s1")
		}, &want{"reference.missing_target_record", "roles.csv", 4, "userSourcedId", SevError}},
		{"category weight", func(t *testing.T, u *upload) {
			u.gradebook(t)
			u.set("categories.csv", header(v, "categories")+row(t, v, "categories", "sourcedId", "g1", "title", "H", "weight", "20%"))
		}, &want{"row.invalid_number", "categories.csv", 2, "weight", SevError}},
		{"score scale without braces", func(t *testing.T, u *upload) {
			u.mode("scoreScales", Bulk).set("scoreScales.csv", header(v, "scoreScales")+row(t, v, "scoreScales", "sourcedId", "x1", "title", "Letter",
				"type", "letter", "orgSourcedId", "s1", "courseSourcedId", "c1", "classSourcedId", "k1", "scoreScaleValue", "{A:94},B:84"))
		}, &want{"row.invalid_score_scale", "scoreScales.csv", 2, "scoreScaleValue", SevError}},
		{"a CASE id that is not a UUID URN", func(t *testing.T, u *upload) {
			u.gradebook(t)
			u.mode("lineItemLearningObjectiveIds", Bulk).set("lineItemLearningObjectiveIds.csv", header(v, "lineItemLearningObjectiveIds")+
				row(t, v, "lineItemLearningObjectiveIds", "sourcedId", "lo1", "lineItemSourcedId", "l1", "source", "case", "learningObjectiveId", "not-a-uuid")+
				row(t, v, "lineItemLearningObjectiveIds", "sourcedId", "lo2", "lineItemSourcedId", "l1", "source", "case",
					"learningObjectiveId", "urn:uuid:11111111-2222-3333-4444-555555555555"))
		}, &want{"row.invalid_uuid_urn", "lineItemLearningObjectiveIds.csv", 2, "learningObjectiveId", SevError}},
		{"a manifest-only upload", func(t *testing.T, u *upload) {
			for n := range maps.Clone(u.files) {
				delete(u.files, n)
			}
			clear(u.modes)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := base(t, v)
			tc.change(t, u)
			_, all := check(t, u.fs(), Options{})
			if tc.want == nil {
				if len(all) > 0 {
					t.Fatalf("findings:\n%s", dump(all))
				}
				return
			}
			expect(t, all, *tc.want)
		})
	}
}

func TestUnknownVersionChecksNoData(t *testing.T) {
	u := base(t, V1p1)
	u.manifest = strings.Replace(u.manifestText(), "oneroster.version,1.1", "oneroster.version,2.0", 1)
	u.files["users.csv"] = "garbage\n"
	r, all := check(t, u.fs(), Options{})
	expect(t, all, want{"manifest.invalid_version", "manifest.csv", 3, "value", SevError})
	if len(all) != 1 || r.Version != "" || len(r.Files) != 0 {
		t.Fatalf("data files judged with a guessed version:\n%s", dump(all))
	}
}
