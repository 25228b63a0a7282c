package oneroster

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// GenOptions shape a generated roster.
type GenOptions struct {
	Students int
	Seed     uint64
	// InjectErrors adds rows with real-world mistakes: an enum in the wrong
	// case, a US-style date, Excel's 1 for true, a duplicate sourcedId and a
	// reference to nothing.
	InjectErrors bool
}

// GenCounts is what Generate wrote.
type GenCounts map[string]int

// Generate writes a valid OneRoster 1.1 bulk set into dir in the proportions
// of a large district (350k students: ~520 schools, 18k teachers, 70k
// classes, 2M enrollments).
func Generate(dir string, o GenOptions) (GenCounts, error) {
	if o.Students < 1 {
		return nil, fmt.Errorf("students must be at least 1")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	n := o.Students
	schools := max(1, n/673)
	teachers := max(1, n/19)
	classes := max(1, n/5)
	courses := max(1, classes/10)
	counts := GenCounts{}
	files := map[string]*csv.Writer{}
	var closers []func() error
	open := func(name string) (*csv.Writer, error) {
		f, err := os.Create(filepath.Join(dir, name+".csv"))
		if err != nil {
			return nil, err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		w := csv.NewWriter(bw)
		closers = append(closers, func() error {
			w.Flush()
			if err := w.Error(); err != nil {
				return err
			}
			if err := bw.Flush(); err != nil {
				return err
			}
			return f.Close()
		})
		files[name] = w
		for _, s := range rosterFiles {
			if s.name == name {
				hdr := make([]string, len(s.fields))
				for i, fd := range s.fields {
					hdr[i] = fd.name
				}
				w.Write(hdr)
			}
		}
		return w, nil
	}
	for _, s := range rosterFiles {
		if _, err := open(s.name); err != nil {
			return nil, err
		}
	}
	put := func(file string, rec ...string) {
		files[file].Write(rec)
		counts[file]++
	}
	gradeOf := func(i int) string {
		g := []string{"KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"}
		return g[i%len(g)]
	}
	put("orgs", "district-1", "", "", "District", "district", "D1", "")
	for s := 0; s < schools; s++ {
		put("orgs", fmt.Sprintf("school-%d", s), "", "", fmt.Sprintf("School %d", s), "school", fmt.Sprintf("S%04d", s), "district-1")
	}
	put("academicSessions", "sy-2026", "", "", "2026-2027", "schoolYear", "2026-08-10", "2027-06-05", "", "2027")
	put("academicSessions", "fall-2026", "", "", "Fall 2026", "semester", "2026-08-10", "2026-12-18", "sy-2026", "2027")
	put("academicSessions", "spring-2027", "", "", "Spring 2027", "semester", "2027-01-05", "2027-06-05", "sy-2026", "2027")
	for c := 0; c < courses; c++ {
		put("courses", fmt.Sprintf("course-%d", c), "", "", "sy-2026", fmt.Sprintf("Course %d", c), fmt.Sprintf("C%05d", c),
			gradeOf(c), "district-1", "", "")
	}
	for c := 0; c < classes; c++ {
		term := "fall-2026"
		if c%2 == 1 {
			term = "fall-2026,spring-2027"
		}
		put("classes", fmt.Sprintf("class-%d", c), "", "", fmt.Sprintf("Class %d", c), gradeOf(c%courses), fmt.Sprintf("course-%d", c%courses),
			fmt.Sprintf("K%06d", c), "scheduled", fmt.Sprintf("Room %d", c%40), fmt.Sprintf("school-%d", c%schools), term, "", "", fmt.Sprintf("%d", 1+c%7))
	}
	first := []string{"Ana", "Luis", "Maria", "James", "Sofia", "Daniel", "Camila", "Noah", "Valentina", "Mateo"}
	last := []string{"Garcia", "Rodriguez", "Smith", "Johnson", "Hernandez", "Lopez", "Martinez", "Perez", "Gonzalez", "Brown"}
	for t := 0; t < teachers; t++ {
		put("users", fmt.Sprintf("teacher-%d", t), "", "", "true", fmt.Sprintf("school-%d", t%schools), "teacher",
			fmt.Sprintf("t%d", t), "", first[t%10], last[(t/10)%10], "", fmt.Sprintf("T%07d", t), fmt.Sprintf("t%d@district.example", t), "", "", "", "", "")
	}
	for s := 0; s < n; s++ {
		put("users", fmt.Sprintf("student-%d", s), "", "", "true", fmt.Sprintf("school-%d", s%schools), "student",
			fmt.Sprintf("s%d", s), "", first[rng.IntN(10)], last[rng.IntN(10)], "", fmt.Sprintf("%07d", s), "", "", "", "", gradeOf(s), "")
		sex := "female"
		if rng.IntN(2) == 0 {
			sex = "male"
		}
		put("demographics", fmt.Sprintf("student-%d", s), "", "", fmt.Sprintf("%d-%02d-%02d", 2008+s%12, 1+s%12, 1+s%28), sex,
			"false", "false", "false", "false", "true", "false", boolStr(rng.IntN(3) == 0), "US", "FL", "Miami", "")
	}
	// Each student takes about 5.7 classes; each class has its teacher.
	e := 0
	for c := 0; c < classes; c++ {
		put("enrollments", fmt.Sprintf("enr-%d", e), "", "", fmt.Sprintf("class-%d", c), fmt.Sprintf("school-%d", c%schools),
			fmt.Sprintf("teacher-%d", c%teachers), "teacher", "true", "2026-08-10", "2027-06-05")
		e++
	}
	per := 57 // tenths of a class per student
	for s := 0; s < n; s++ {
		k := per / 10
		if rng.IntN(10) < per%10 {
			k++
		}
		for j := 0; j < k; j++ {
			c := (s*7 + j*classes/max(k, 1)) % classes
			put("enrollments", fmt.Sprintf("enr-%d", e), "", "", fmt.Sprintf("class-%d", c), fmt.Sprintf("school-%d", c%schools),
				fmt.Sprintf("student-%d", s), "student", "false", "2026-08-10", "2027-06-05")
			e++
		}
	}
	if o.InjectErrors {
		put("classes", "class-bad-1", "", "", "Bad", "KG", "course-0", "X", "Scheduled", "", "school-0", "fall-2026", "", "", "")
		put("users", "student-bad-1", "", "", "1", "school-0", "student", "sb1", "", "A", "B", "", "", "", "", "", "", "KG", "")
		put("enrollments", "enr-0", "", "", "class-0", "school-0", "student-0", "student", "false", "1/05/2023", "")
		put("enrollments", "enr-bad-ref", "", "", "class-nope", "school-0", "student-0", "student", "false", "", "")
	}
	for _, c := range closers {
		if err := c(); err != nil {
			return nil, err
		}
	}
	var manifest strings.Builder
	manifest.WriteString("propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\n")
	for _, s := range rosterFiles {
		fmt.Fprintf(&manifest, "file.%s,bulk\n", s.name)
	}
	for _, f := range otherFiles {
		fmt.Fprintf(&manifest, "file.%s,absent\n", f)
	}
	manifest.WriteString("source.systemName,etlhub gen-roster\nsource.systemCode,gen\n")
	return counts, os.WriteFile(filepath.Join(dir, "manifest.csv"), []byte(manifest.String()), 0o644)
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
