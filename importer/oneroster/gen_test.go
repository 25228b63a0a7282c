package oneroster

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

// TestGenerated12Set: gen-roster --version 1.2 writes every file of 1.2 with
// rows, a manifest naming all 21 as bulk, users in the 1.2 layout with their
// orgs and roles in roles.csv, 1.2 sourcedIds, and no reference to an id the
// set does not define.
func TestGenerated12Set(t *testing.T) {
	dir := t.TempDir()
	counts, err := Generate(dir, GenOptions{Students: 700, Seed: 1, Version: "1.2"})
	if err != nil {
		t.Fatal(err)
	}
	m := readCSV(t, filepath.Join(dir, "manifest.csv"))
	props := map[string]string{}
	for _, r := range m[1:] {
		props[r[0]] = r[1]
	}
	files := 0
	for p, v := range props {
		if name, ok := strings.CutPrefix(p, "file."); ok {
			files++
			if v != "bulk" || counts[name] == 0 {
				t.Errorf("manifest %s = %s, %d rows written", p, v, counts[name])
			}
		}
	}
	if files != 21 || len(counts) != 21 || props["oneroster.version"] != "1.2" || props["manifest.version"] != "1.0" {
		t.Fatalf("manifest %v; files written %v", props, counts)
	}
	users := counts["users"]
	if users != 700+700/19 || counts["roles"] != users || counts["userProfiles"] != 700/19 || counts["results"] != 700 {
		t.Fatalf("counts = %v", counts)
	}
	// Every sourcedId is a 1.2 GUID; every *SourcedId(s) value is defined.
	guid := regexp.MustCompile(`^[0-9a-zA-Z.\-_/@]{1,255}$`)
	ids := map[string]bool{}
	tables := map[string][][]string{}
	for name := range counts {
		recs := readCSV(t, filepath.Join(dir, name+".csv"))
		tables[name] = recs
		if len(recs)-1 != counts[name] {
			t.Fatalf("%s.csv: %d rows, counted %d", name, len(recs)-1, counts[name])
		}
		for _, r := range recs[1:] {
			if !guid.MatchString(r[0]) {
				t.Fatalf("%s.csv: sourcedId %q is not a 1.2 GUID", name, r[0])
			}
			if r[1] != "" || r[2] != "" {
				t.Fatalf("%s.csv: a bulk row with status or dateLastModified: %v", name, r)
			}
			ids[r[0]] = true
		}
	}
	refs := 0
	for name, recs := range tables {
		for i, col := range recs[0] {
			if i == 0 || !strings.Contains(col, "SourcedId") {
				continue
			}
			for line, r := range recs[1:] {
				for _, id := range strings.Split(r[i], ",") {
					if id != "" && !ids[id] {
						t.Fatalf("%s.csv line %d: %s %q is defined nowhere", name, line+2, col, id)
					}
					refs++
				}
			}
		}
	}
	u := tables["users"]
	if strings.Join(u[0], ",") != strings.Join(headerOf(t, "1.2", "users"), ",") || slices.Index(u[0], "orgSourcedIds") >= 0 || slices.Index(u[0], "role") >= 0 {
		t.Fatalf("users.csv header %v", u[0])
	}
	if ui := slices.Index(u[0], "userIds"); !regexp.MustCompile(`^\{[A-Za-z]+:[^{}:]+\}$`).MatchString(u[1][ui]) {
		t.Fatalf("userIds %q is not {Type:Id}", u[1][ui])
	}
	if refs < counts["enrollments"]*3 {
		t.Fatalf("only %d references checked", refs)
	}
}

// TestGenerateInjectsErrorsIn12: --inject-errors writes the same mistakes
// in a 1.2 set, in its layout.
func TestGenerateInjectsErrorsIn12(t *testing.T) {
	dir := t.TempDir()
	counts, err := Generate(dir, GenOptions{Students: 100, Seed: 2, Version: "1.2", InjectErrors: true})
	if err != nil {
		t.Fatal(err)
	}
	clean, _ := Generate(t.TempDir(), GenOptions{Students: 100, Seed: 2, Version: "1.2"})
	if counts["classes"] != clean["classes"]+1 || counts["users"] != clean["users"]+1 || counts["enrollments"] != clean["enrollments"]+2 {
		t.Fatalf("with errors %v, without %v", counts, clean)
	}
	users := readCSV(t, filepath.Join(dir, "users.csv"))
	last := users[len(users)-1]
	if last[0] != "student-bad-1" || last[slices.Index(users[0], "enabledUser")] != "1" || len(last) != len(users[0]) {
		t.Fatalf("the injected user = %v", last)
	}
}

func TestGenerateRefusesAnUnknownVersion(t *testing.T) {
	if _, err := Generate(t.TempDir(), GenOptions{Students: 10, Version: "1.0"}); err == nil || !strings.Contains(err.Error(), `"1.0"`) {
		t.Fatalf("version 1.0: %v", err)
	}
}

func headerOf(t *testing.T, version, name string) []string {
	for _, tb := range genTables(version) {
		if tb.name == name {
			return tb.header
		}
	}
	t.Fatalf("no %s in %s", name, version)
	return nil
}

// TestGeneratedSetsValidate: what gen-roster writes, bulk and delta, is a
// valid upload of its version to the validator, and --inject-errors gives
// exactly its five mistakes, each with its code, in either version.
func TestGeneratedSetsValidate(t *testing.T) {
	for _, version := range []string{"1.1", "1.2"} {
		t.Run("v"+version, func(t *testing.T) {
			dir := t.TempDir()
			counts, err := Generate(dir, GenOptions{Students: 1500, Seed: 4, Version: version})
			if err != nil {
				t.Fatal(err)
			}
			r := validate(t, os.DirFS(dir))
			if r.Errors+r.Warnings != 0 || r.Version != version || len(r.Files) != len(counts) {
				t.Fatalf("version %s, %d files, %d errors, %d warnings: %+v", r.Version, len(r.Files), r.Errors, r.Warnings, r.Groups)
			}
			for name, n := range counts {
				if st := r.Files[name]; st == nil || st.Rows != n || st.Mode != Bulk {
					t.Fatalf("%s: validated %+v, wrote %d rows", name, st, n)
				}
			}
			delta := t.TempDir()
			dcounts, err := GenerateDelta(delta, GenOptions{Version: version})
			if err != nil {
				t.Fatal(err)
			}
			r = validate(t, os.DirFS(delta))
			if r.Errors != 0 || len(r.Files) != len(dcounts) || r.Files["users"].Mode != Delta || r.Files["users"].ToDelete != 1 {
				t.Fatalf("the delta: %d errors, files %+v: %+v", r.Errors, r.Files, r.Groups)
			}
			bad := t.TempDir()
			if _, err := Generate(bad, GenOptions{Students: 300, Seed: 2, Version: version, InjectErrors: true}); err != nil {
				t.Fatal(err)
			}
			r = validate(t, os.DirFS(bad))
			want := map[string]int{"row.invalid_enum": 1, "row.invalid_boolean": 1, "row.invalid_date": 1,
				"row.duplicate_sourcedid": 1, "reference.missing_target_record": 1}
			for code, n := range want {
				if got := r.Count(code); got != n {
					t.Errorf("%s: %d findings, want %d", code, got, n)
				}
			}
			if r.Errors != len(want) {
				t.Errorf("%d errors, want %d: %+v", r.Errors, len(want), r.Groups)
			}
		})
	}
}
