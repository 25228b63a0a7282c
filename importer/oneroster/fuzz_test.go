package oneroster

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzValidate feeds arbitrary manifests and files to the validator: it must
// never panic or hang, every finding must be an explained code with bounded
// strings, and the report must stay bounded and defused.
func FuzzValidate(f *testing.F) {
	for _, ver := range Versions() {
		u := base(f, ver)
		f.Add(join(u.manifestText(), u.files["orgs.csv"], u.files["users.csv"], u.files["enrollments.csv"]))
		u.mode("orgs", Delta)
		f.Add(join(u.manifestText(), strings.Replace(u.files["orgs.csv"], "d1,,,", "d1,active,2026-09-01T00:00:00Z,", 1), "\ufeff"+u.files["users.csv"],
			strings.ReplaceAll(u.files["enrollments.csv"], "\n", "\r\n")))
	}
	f.Add(join("propertyName,value\noneroster.version,1.2\nfile.users,bulk\n", "", "sourcedId,username\nuser-1,bad\"quote", ""))
	f.Add(join("\ufeff\"propertyName\",\"value\"\r\n\"oneroster.version\",\"1.1\"\r\n", "\"a\r\nb\",\"\"\"\"", "=HYPERLINK(\"x\")", "\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The input is manifest, orgs.csv, users.csv and enrollments.csv
		// separated by NUL bytes.
		parts := bytes.SplitN(data, []byte{0}, 4)
		fsys := fstest.MapFS{}
		for i, name := range []string{"manifest.csv", "orgs.csv", "users.csv", "enrollments.csv"}[:len(parts)] {
			fsys[name] = &fstest.MapFile{Data: parts[i]}
		}
		manifest := string(parts[0])
		r := NewReport(3)
		res, err := ValidateWith(fsys, Options{MaxFieldBytes: 512}, func(fd Finding) {
			if _, ok := Explain(fd.Code); !ok {
				t.Fatalf("unexplained code %q", fd.Code)
			}
			if fd.Severity != SevError && fd.Severity != SevWarning {
				t.Fatalf("severity %q", fd.Severity)
			}
			if len(fd.Value) > maxExcerpt+40 || len(fd.Message) > 700 || fd.Line < 0 {
				t.Fatalf("unbounded finding %+v", fd)
			}
			r.Add(fd)
		})
		if err != nil {
			t.Fatal(err) // in-memory files cannot fail to read
		}
		r.Finish(res)
		if res.Version != "" && res.Version != string(V1p1) && res.Version != string(V1p2) {
			t.Fatalf("version %q", res.Version)
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := r.WriteCSV(&out); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&out).ReadAll()
		if err != nil {
			t.Fatalf("the report CSV does not parse: %v", err)
		}
		for _, rec := range recs {
			for _, c := range rec {
				if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
					t.Fatalf("live formula cell %q", c)
				}
			}
		}
		ListedFiles(strings.NewReader(manifest))
	})
}

// FuzzCSVReader: where encoding/csv reads an input without error (and it has
// no CR, which encoding/csv rewrites, and no BOM), our reader returns the
// same records.
func FuzzCSVReader(f *testing.F) {
	f.Add("a,b\n\"c,d\",\"e\"\"f\"\n\n\"g\nh\",\n")
	f.Add("x")
	f.Add("\"unterminated")
	f.Add("a\"b,c\n")
	f.Add(strings.Repeat("a,", maxFieldsKept+5) + "b\nc\n") // more fields than a record keeps
	f.Fuzz(func(t *testing.T, in string) {
		mine, widths, merr := readAll(newCSVReader(strings.NewReader(in), 1<<20))
		if strings.ContainsRune(in, '\r') || strings.HasPrefix(in, "\ufeff") {
			return
		}
		cr := csv.NewReader(strings.NewReader(in))
		cr.FieldsPerRecord = -1
		want, err := cr.ReadAll()
		if err != nil {
			return
		}
		if merr != nil {
			t.Fatalf("encoding/csv reads %q as %q; ours fails: %v", in, want, merr)
		}
		// A record keeps its first maxFieldsKept fields (bounded memory) and
		// counts the rest, so the validator can say how many there were.
		kept := make([][]string, len(want))
		wantWidths := make([]int, len(want))
		for i, rec := range want {
			kept[i] = rec[:min(len(rec), maxFieldsKept)]
			wantWidths[i] = len(rec)
		}
		if !slices.EqualFunc(mine, kept, slices.Equal) {
			t.Fatalf("%q: ours %q, encoding/csv %q", in, mine, kept)
		}
		if !slices.Equal(widths, wantWidths) {
			t.Fatalf("%q: ours counts %v fields per record, encoding/csv %v", in, widths, wantWidths)
		}
	})
}

func join(parts ...string) []byte { return []byte(strings.Join(parts, "\x00")) }

func readAll(r *csvReader) ([][]string, []int, error) {
	var out [][]string
	var widths []int
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, widths, nil
		}
		if err != nil {
			return out, widths, err
		}
		out = append(out, slices.Clone(rec))
		widths = append(widths, r.NFields)
	}
}
