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
	// Version is the OneRoster version written: "1.1" (the default) or "1.2".
	Version string
	// InjectErrors adds rows with real-world mistakes: an enum in the wrong
	// case, a US-style date, Excel's 1 for true, a duplicate sourcedId and a
	// reference to nothing.
	InjectErrors bool
}

// GenCounts is what Generate wrote: rows per file (entity).
type GenCounts map[string]int

// Total is the number of rows in every file.
func (c GenCounts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// genFile is one file being written: its header and a row filled by column
// name, so a generated row cannot put a value in the wrong column.
type genFile struct {
	name   string
	header []string
	col    map[string]int
	rec    []string
	w      *csv.Writer
}

// Generate writes a valid OneRoster bulk set into dir in the proportions of
// a large district (350k students: ~520 schools, 18k teachers, 70k classes,
// 2M enrollments). Version 1.1 writes orgs, academicSessions, courses,
// classes, users, enrollments and demographics; 1.2 writes the same entities
// in its layout (users without orgSourcedIds and role, one roles.csv row per
// user, a userProfiles.csv row per teacher) and, at a district's scale, the
// resources and gradebook files (a line item per class, a result per
// student), so every one of its 21 files is present.
func Generate(dir string, o GenOptions) (GenCounts, error) {
	if o.Students < 1 {
		return nil, fmt.Errorf("students must be at least 1")
	}
	version := o.Version
	if version == "" {
		version = "1.1"
	}
	tables := genTables(version)
	if tables == nil {
		return nil, fmt.Errorf("OneRoster version %q: gen-roster writes 1.1 or 1.2", o.Version)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &generator{dir: dir, files: map[string]*genFile{}, counts: GenCounts{}}
	for _, t := range tables {
		if err := g.open(t.name, t.header); err != nil {
			g.close()
			return nil, err
		}
	}
	g.rng = rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	if version == "1.2" {
		g.roster12(o)
	} else {
		g.roster11(o)
	}
	if err := g.close(); err != nil {
		return nil, err
	}
	if g.err != nil {
		return nil, g.err
	}
	return g.counts, g.manifest(version, "bulk")
}

// GenerateDelta writes a small delta set for a roster Generate wrote with
// the same version: student-1 removed (tobedeleted), student-2 renamed
// "Renamed", student-new added and enrolled in class-0 (and, in 1.2, the
// roles that go with them). The manifest lists users, enrollments (and
// roles) as delta and every other file as absent.
func GenerateDelta(dir string, o GenOptions) (GenCounts, error) {
	version := o.Version
	if version == "" {
		version = "1.1"
	}
	if genTables(version) == nil {
		return nil, fmt.Errorf("OneRoster version %q: gen-roster writes 1.1 or 1.2", o.Version)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &generator{dir: dir, files: map[string]*genFile{}, counts: GenCounts{}}
	for _, t := range genTables(version) {
		if t.name == "users" || t.name == "enrollments" || (t.name == "roles" && version == "1.2") {
			if err := g.open(t.name, t.header); err != nil {
				g.close()
				return nil, err
			}
		}
	}
	const at = "2026-09-02T04:00:00.000Z"
	user := func(id, status, given string) {
		kv := []string{"sourcedId", id, "status", status, "dateLastModified", at, "enabledUser", "true", "username", id,
			"givenName", given, "familyName", "Delta", "grades", "01"}
		if version == "1.2" {
			kv = append(kv, "primaryOrgSourcedId", "school-0")
		} else {
			kv = append(kv, "orgSourcedIds", "school-0", "role", "student")
		}
		g.put("users", kv...)
	}
	user("student-1", "tobedeleted", "Gone")
	user("student-2", "active", "Renamed")
	user("student-new", "active", "New")
	if version == "1.2" {
		g.put("roles", "sourcedId", "role-s1", "status", "tobedeleted", "dateLastModified", at, "userSourcedId", "student-1",
			"roleType", "primary", "role", "student", "orgSourcedId", "school-0")
		g.put("roles", "sourcedId", "role-new", "status", "active", "dateLastModified", at, "userSourcedId", "student-new",
			"roleType", "primary", "role", "student", "beginDate", "2026-09-02", "orgSourcedId", "school-0")
	}
	g.put("enrollments", "sourcedId", "enr-new", "status", "active", "dateLastModified", at, "classSourcedId", "class-0",
		"schoolSourcedId", "school-0", "userSourcedId", "student-new", "role", "student", "primary", "false", "beginDate", "2026-09-02")
	if err := g.close(); err != nil {
		return nil, err
	}
	if g.err != nil {
		return nil, g.err
	}
	return g.counts, g.manifest(version, "delta")
}

// manifest writes manifest.csv: the files written in mode, the others absent.
func (g *generator) manifest(version, mode string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "propertyName,value\nmanifest.version,1.0\noneroster.version,%s\n", version)
	for _, name := range genManifestFiles(version) {
		m := "absent"
		if _, ok := g.files[name]; ok {
			m = mode
		}
		fmt.Fprintf(&b, "file.%s,%s\n", name, m)
	}
	b.WriteString("source.systemName,etlhub gen-roster\nsource.systemCode,gen\n")
	return os.WriteFile(filepath.Join(g.dir, "manifest.csv"), []byte(b.String()), 0o644)
}

type generator struct {
	dir     string
	files   map[string]*genFile
	closers []func() error
	counts  GenCounts
	rng     *rand.Rand
	err     error
}

func (g *generator) open(name string, header []string) error {
	f, err := os.Create(filepath.Join(g.dir, name+".csv"))
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := csv.NewWriter(bw)
	g.closers = append(g.closers, func() error {
		w.Flush()
		if err := w.Error(); err != nil {
			f.Close()
			return err
		}
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	gf := &genFile{name: name, header: header, col: map[string]int{}, rec: make([]string, len(header)), w: w}
	for i, h := range header {
		gf.col[h] = i
	}
	g.files[name] = gf
	return w.Write(header)
}

func (g *generator) close() error {
	var first error
	for _, c := range g.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	g.closers = nil
	return first
}

// put writes one row of file from column, value pairs; columns not named
// are empty. A column the file does not have is an error (the generator and
// the tables disagree), reported by Generate.
func (g *generator) put(file string, kv ...string) {
	f := g.files[file]
	if f == nil {
		g.fail(fmt.Errorf("gen-roster: no file %s", file))
		return
	}
	for i := range f.rec {
		f.rec[i] = ""
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c, ok := f.col[kv[i]]
		if !ok {
			g.fail(fmt.Errorf("gen-roster: %s.csv has no column %s", file, kv[i]))
			return
		}
		f.rec[c] = kv[i+1]
	}
	if err := f.w.Write(f.rec); err != nil {
		g.fail(err)
	}
	g.counts[file]++
}

func (g *generator) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// shape is the district's size, derived from the number of students.
type shape struct {
	students, schools, teachers, classes, courses int
}

func shapeOf(n int) shape {
	s := shape{students: n, schools: max(1, n/673), teachers: max(1, n/19), classes: max(1, n/5)}
	s.courses = max(1, s.classes/10)
	return s
}

var (
	genFirst  = []string{"Ana", "Luis", "Maria", "James", "Sofia", "Daniel", "Camila", "Noah", "Valentina", "Mateo"}
	genLast   = []string{"Garcia", "Rodriguez", "Smith", "Johnson", "Hernandez", "Lopez", "Martinez", "Perez", "Gonzalez", "Brown"}
	genGrades = []string{"KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"}
)

func gradeOf(i int) string { return genGrades[i%len(genGrades)] }

// common writes the entities both versions share with the same layout:
// orgs, academicSessions, courses, classes, enrollments, demographics.
func (g *generator) common(s shape) {
	g.put("orgs", "sourcedId", "district-1", "name", "District", "type", "district", "identifier", "D1")
	for i := 0; i < s.schools; i++ {
		g.put("orgs", "sourcedId", fmt.Sprintf("school-%d", i), "name", fmt.Sprintf("School %d", i), "type", "school",
			"identifier", fmt.Sprintf("S%04d", i), "parentSourcedId", "district-1")
	}
	g.put("academicSessions", "sourcedId", "sy-2026", "title", "2026-2027", "type", "schoolYear",
		"startDate", "2026-08-10", "endDate", "2027-06-05", "schoolYear", "2027")
	g.put("academicSessions", "sourcedId", "fall-2026", "title", "Fall 2026", "type", "semester",
		"startDate", "2026-08-10", "endDate", "2026-12-18", "parentSourcedId", "sy-2026", "schoolYear", "2027")
	g.put("academicSessions", "sourcedId", "spring-2027", "title", "Spring 2027", "type", "semester",
		"startDate", "2027-01-05", "endDate", "2027-06-05", "parentSourcedId", "sy-2026", "schoolYear", "2027")
	for c := 0; c < s.courses; c++ {
		g.put("courses", "sourcedId", fmt.Sprintf("course-%d", c), "schoolYearSourcedId", "sy-2026", "title", fmt.Sprintf("Course %d", c),
			"courseCode", fmt.Sprintf("C%05d", c), "grades", gradeOf(c), "orgSourcedId", "district-1")
	}
	for c := 0; c < s.classes; c++ {
		term := "fall-2026"
		if c%2 == 1 {
			term = "fall-2026,spring-2027"
		}
		g.put("classes", "sourcedId", fmt.Sprintf("class-%d", c), "title", fmt.Sprintf("Class %d", c), "grades", gradeOf(c%s.courses),
			"courseSourcedId", fmt.Sprintf("course-%d", c%s.courses), "classCode", fmt.Sprintf("K%06d", c), "classType", "scheduled",
			"location", fmt.Sprintf("Room %d", c%40), "schoolSourcedId", fmt.Sprintf("school-%d", c%s.schools), "termSourcedIds", term,
			"periods", fmt.Sprintf("%d", 1+c%7))
	}
}

// enrollments: each class has its teacher; each student takes about 5.7
// classes, the first of them class firstClass(s).
func (g *generator) enrollments(s shape) {
	e := 0
	for c := 0; c < s.classes; c++ {
		g.put("enrollments", "sourcedId", fmt.Sprintf("enr-%d", e), "classSourcedId", fmt.Sprintf("class-%d", c),
			"schoolSourcedId", fmt.Sprintf("school-%d", c%s.schools), "userSourcedId", fmt.Sprintf("teacher-%d", c%s.teachers),
			"role", "teacher", "primary", "true", "beginDate", "2026-08-10", "endDate", "2027-06-05")
		e++
	}
	const per = 57 // tenths of a class per student
	for st := 0; st < s.students; st++ {
		k := per / 10
		if g.rng.IntN(10) < per%10 {
			k++
		}
		for j := 0; j < k; j++ {
			c := (st*7 + j*s.classes/k) % s.classes
			g.put("enrollments", "sourcedId", fmt.Sprintf("enr-%d", e), "classSourcedId", fmt.Sprintf("class-%d", c),
				"schoolSourcedId", fmt.Sprintf("school-%d", c%s.schools), "userSourcedId", fmt.Sprintf("student-%d", st),
				"role", "student", "primary", "false", "beginDate", "2026-08-10", "endDate", "2027-06-05")
			e++
		}
	}
}

func firstClass(s shape, student int) int { return (student * 7) % s.classes }

func (g *generator) demographic(st int) {
	sex := "female"
	if g.rng.IntN(2) == 0 {
		sex = "male"
	}
	g.put("demographics", "sourcedId", fmt.Sprintf("student-%d", st), "birthDate", fmt.Sprintf("%d-%02d-%02d", 2008+st%12, 1+st%12, 1+st%28),
		"sex", sex, "americanIndianOrAlaskaNative", "false", "asian", "false", "blackOrAfricanAmerican", "false",
		"nativeHawaiianOrOtherPacificIslander", "false", "white", "true", "demographicRaceTwoOrMoreRaces", "false",
		"hispanicOrLatinoEthnicity", boolStr(g.rng.IntN(3) == 0), "countryOfBirthCode", "US", "stateOfBirthAbbreviation", "FL",
		"cityOfBirth", "Miami")
}

func (g *generator) roster11(o GenOptions) {
	s := shapeOf(o.Students)
	g.common(s)
	for t := 0; t < s.teachers; t++ {
		g.put("users", "sourcedId", fmt.Sprintf("teacher-%d", t), "enabledUser", "true", "orgSourcedIds", fmt.Sprintf("school-%d", t%s.schools),
			"role", "teacher", "username", fmt.Sprintf("t%d", t), "givenName", genFirst[t%10], "familyName", genLast[(t/10)%10],
			"identifier", fmt.Sprintf("T%07d", t), "email", fmt.Sprintf("t%d@district.example", t))
	}
	for st := 0; st < s.students; st++ {
		g.put("users", "sourcedId", fmt.Sprintf("student-%d", st), "enabledUser", "true", "orgSourcedIds", fmt.Sprintf("school-%d", st%s.schools),
			"role", "student", "username", fmt.Sprintf("s%d", st), "givenName", genFirst[g.rng.IntN(10)], "familyName", genLast[g.rng.IntN(10)],
			"identifier", fmt.Sprintf("%07d", st), "grades", gradeOf(st))
		g.demographic(st)
	}
	g.enrollments(s)
	if o.InjectErrors {
		g.put("classes", "sourcedId", "class-bad-1", "title", "Bad", "grades", "KG", "courseSourcedId", "course-0", "classCode", "X",
			"classType", "Scheduled", "schoolSourcedId", "school-0", "termSourcedIds", "fall-2026")
		g.put("users", "sourcedId", "student-bad-1", "enabledUser", "1", "orgSourcedIds", "school-0", "role", "student", "username", "sb1",
			"givenName", "A", "familyName", "B", "grades", "KG")
		g.injectEnrollments()
	}
}

// injectEnrollments: a duplicate sourcedId with a US-style date, and a
// reference to a class that does not exist.
func (g *generator) injectEnrollments() {
	g.put("enrollments", "sourcedId", "enr-0", "classSourcedId", "class-0", "schoolSourcedId", "school-0", "userSourcedId", "student-0",
		"role", "student", "primary", "false", "beginDate", "1/05/2023")
	g.put("enrollments", "sourcedId", "enr-bad-ref", "classSourcedId", "class-nope", "schoolSourcedId", "school-0", "userSourcedId", "student-0",
		"role", "student", "primary", "false")
}

func (g *generator) roster12(o GenOptions) {
	s := shapeOf(o.Students)
	g.common(s)
	for t := 0; t < s.teachers; t++ {
		id := fmt.Sprintf("teacher-%d", t)
		g.put("users", "sourcedId", id, "enabledUser", "true", "username", fmt.Sprintf("t%d", t),
			"userIds", fmt.Sprintf("{LDAP:t%d}", t), "givenName", genFirst[t%10], "familyName", genLast[(t/10)%10],
			"identifier", fmt.Sprintf("T%07d", t), "email", fmt.Sprintf("t%d@district.example", t),
			"userMasterIdentifier", fmt.Sprintf("MT%07d", t), "primaryOrgSourcedId", fmt.Sprintf("school-%d", t%s.schools))
	}
	for st := 0; st < s.students; st++ {
		g.put("users", "sourcedId", fmt.Sprintf("student-%d", st), "enabledUser", "true", "username", fmt.Sprintf("s%d", st),
			"userIds", fmt.Sprintf("{SIS:%07d}", st), "givenName", genFirst[g.rng.IntN(10)], "familyName", genLast[g.rng.IntN(10)],
			"identifier", fmt.Sprintf("%07d", st), "grades", gradeOf(st), "primaryOrgSourcedId", fmt.Sprintf("school-%d", st%s.schools))
	}
	// A platform login for every teacher; their role points at it.
	for t := 0; t < s.teachers; t++ {
		g.put("userProfiles", "sourcedId", fmt.Sprintf("profile-t%d", t), "userSourcedId", fmt.Sprintf("teacher-%d", t),
			"profileType", "platform", "vendorId", "lms-vendor", "applicationId", "lms", "description", "LMS login",
			"credentialType", "username", "username", fmt.Sprintf("t%d", t))
	}
	for t := 0; t < s.teachers; t++ {
		g.put("roles", "sourcedId", fmt.Sprintf("role-t%d", t), "userSourcedId", fmt.Sprintf("teacher-%d", t), "roleType", "primary",
			"role", "teacher", "beginDate", "2026-08-10", "orgSourcedId", fmt.Sprintf("school-%d", t%s.schools),
			"userProfileSourcedId", fmt.Sprintf("profile-t%d", t))
	}
	for st := 0; st < s.students; st++ {
		g.put("roles", "sourcedId", fmt.Sprintf("role-s%d", st), "userSourcedId", fmt.Sprintf("student-%d", st), "roleType", "primary",
			"role", "student", "beginDate", "2026-08-10", "orgSourcedId", fmt.Sprintf("school-%d", st%s.schools))
		g.demographic(st)
	}
	g.enrollments(s)
	g.resources(s)
	g.gradebook(s)
	if o.InjectErrors {
		g.put("classes", "sourcedId", "class-bad-1", "title", "Bad", "grades", "KG", "courseSourcedId", "course-0", "classCode", "X",
			"classType", "Scheduled", "schoolSourcedId", "school-0", "termSourcedIds", "fall-2026")
		g.put("users", "sourcedId", "student-bad-1", "enabledUser", "1", "username", "sb1", "givenName", "A", "familyName", "B",
			"grades", "KG", "primaryOrgSourcedId", "school-0")
		g.injectEnrollments()
	}
}

// resources: one per course, assigned to its course, to one class in ten
// and to every teacher.
func (g *generator) resources(s shape) {
	for c := 0; c < s.courses; c++ {
		g.put("resources", "sourcedId", fmt.Sprintf("resource-%d", c), "vendorResourceId", fmt.Sprintf("VR%05d", c),
			"title", fmt.Sprintf("Course %d textbook", c), "roles", "student,teacher", "importance", "primary",
			"vendorId", "publisher", "applicationId", "reader")
		g.put("courseResources", "sourcedId", fmt.Sprintf("course-resource-%d", c), "title", fmt.Sprintf("Course %d textbook", c),
			"courseSourcedId", fmt.Sprintf("course-%d", c), "resourceSourcedId", fmt.Sprintf("resource-%d", c))
	}
	for c := 0; c < s.classes; c += 10 {
		g.put("classResources", "sourcedId", fmt.Sprintf("class-resource-%d", c), "title", fmt.Sprintf("Class %d textbook", c),
			"classSourcedId", fmt.Sprintf("class-%d", c), "resourceSourcedId", fmt.Sprintf("resource-%d", c%s.courses))
	}
	for t := 0; t < s.teachers; t++ {
		c := t % s.classes // a class this teacher teaches (enrollments give class c to teacher c % teachers)
		g.put("userResources", "sourcedId", fmt.Sprintf("user-resource-%d", t), "userSourcedId", fmt.Sprintf("teacher-%d", t),
			"orgSourcedId", fmt.Sprintf("school-%d", c%s.schools), "classSourcedId", fmt.Sprintf("class-%d", c),
			"resourceSourcedId", fmt.Sprintf("resource-%d", c%s.courses))
	}
}

// gradebook: three categories; a line item per class, with a score scale
// for one class in a hundred; a result per student on their first class's
// line item; learning objectives on one in ten of each.
func (g *generator) gradebook(s shape) {
	for i, c := range []string{"Homework", "Quiz", "Exam"} {
		g.put("categories", "sourcedId", fmt.Sprintf("category-%d", i), "title", c, "weight", fmt.Sprintf("%d", 20+20*i))
	}
	for c := 0; c < s.classes; c += 100 {
		g.put("scoreScales", "sourcedId", fmt.Sprintf("score-scale-%d", c), "title", "Letter grade", "type", "letter",
			"orgSourcedId", fmt.Sprintf("school-%d", c%s.schools), "courseSourcedId", fmt.Sprintf("course-%d", c%s.courses),
			"classSourcedId", fmt.Sprintf("class-%d", c), "scoreScaleValue", "{A:90},{B:80},{C:70},{D:60},{F:0}")
	}
	for c := 0; c < s.classes; c++ {
		g.put("lineItems", "sourcedId", fmt.Sprintf("line-item-%d", c), "title", fmt.Sprintf("Unit 1 quiz, class %d", c),
			"description", "Chapter 1", "assignDate", "2026-09-01", "dueDate", "2026-09-08", "classSourcedId", fmt.Sprintf("class-%d", c),
			"categorySourcedId", fmt.Sprintf("category-%d", c%3), "academicSessionSourcedId", "fall-2026",
			"resultValueMin", "0", "resultValueMax", "100", "schoolSourcedId", fmt.Sprintf("school-%d", c%s.schools))
	}
	for st := 0; st < s.students; st++ {
		c := firstClass(s, st)
		g.put("results", "sourcedId", fmt.Sprintf("result-%d", st), "lineItemSourcedId", fmt.Sprintf("line-item-%d", c),
			"studentSourcedId", fmt.Sprintf("student-%d", st), "scoreStatus", "fully graded", "score", fmt.Sprintf("%d", 50+g.rng.IntN(51)),
			"scoreDate", "2026-09-09", "classSourcedId", fmt.Sprintf("class-%d", c),
			"inProgress", "false", "incomplete", "false", "late", boolStr(st%17 == 0), "missing", "false")
	}
	for c := 0; c < s.classes; c += 100 {
		g.put("lineItemScoreScales", "sourcedId", fmt.Sprintf("line-item-score-scale-%d", c), "title", "Letter grade",
			"lineItemSourcedId", fmt.Sprintf("line-item-%d", c), "scoreScaleSourcedId", fmt.Sprintf("score-scale-%d", c))
	}
	for st := 0; st < s.students; st++ {
		if c := firstClass(s, st); c%100 == 0 {
			g.put("resultScoreScales", "sourcedId", fmt.Sprintf("result-score-scale-%d", st), "title", "Letter grade",
				"resultSourcedId", fmt.Sprintf("result-%d", st), "scoreScaleSourcedId", fmt.Sprintf("score-scale-%d", c))
		}
	}
	for c := 0; c < s.classes; c += 10 {
		g.put("lineItemLearningObjectiveIds", "sourcedId", fmt.Sprintf("line-item-lo-%d", c), "lineItemSourcedId", fmt.Sprintf("line-item-%d", c),
			"source", "case", "learningObjectiveId", caseObjective(c))
	}
	for st := 0; st < s.students; st += 10 {
		c := firstClass(s, st)
		g.put("resultLearningObjectiveIds", "sourcedId", fmt.Sprintf("result-lo-%d", st), "resultSourcedId", fmt.Sprintf("result-%d", st),
			"source", "case", "learningObjectiveId", caseObjective(c), "score", "1", "textScore", "mastered")
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// caseObjective is one of 50 learning objectives, as a CASE item's
// identifier (a UUID URN).
func caseObjective(c int) string { return fmt.Sprintf("urn:uuid:6f1c2e4a-0000-4000-8000-%012d", c%50) }
