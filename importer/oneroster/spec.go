// Package oneroster validates OneRoster 1.1 and 1.2 CSV bulk and delta sets
// as districts upload them, streaming: memory grows with the number of ids,
// not with file size. The manifest's oneroster.version chooses the tables.
// Every finding has a stable code, the file, the line and the column.
package oneroster

import "slices"

// Version is a OneRoster CSV binding version a manifest can name in
// oneroster.version.
type Version string

const (
	V1p1 Version = "1.1"
	V1p2 Version = "1.2"
)

// Format is how a column's values are written (the spec's Format column).
type Format int

const (
	Text        Format = iota // String
	GUID                      // a sourcedId (1.2: only 0-9 a-z A-Z . - _ / @, at most 255)
	GUIDRef                   // the sourcedId of a record in Column.Ref
	GUIDRefList               // comma-separated GUIDRefs
	Date                      // YYYY-MM-DD
	DateTime                  // ISO 8601 in UTC, e.g. 2012-04-23T18:25:43.511Z
	Year                      // YYYY
	Boolean                   // true | false
	Enum                      // one of Column.Values
	EnumList                  // comma-separated Column.Values
	Grades                    // 1.1: comma-separated CEDS grade levels
	Strings                   // comma-separated strings, vocabulary agreed locally
	Float                     // a decimal number
	Integer                   // a whole number
	UserIDs                   // "{Type:Id},{Type:Id}"
	ScoreScale                // "{LHS:RHS},{LHS:RHS}"
)

// Column is one column of a table, in header order.
type Column struct {
	Name     string
	Format   Format
	Required bool // a value in every row (status and dateLastModified: "Yes for Delta", see Lifecycle)
	// Values is the vocabulary of an Enum or EnumList (case-sensitive).
	Values []string
	// Extensible: 1.2 lets this vocabulary take proprietary terms "ext:...".
	Extensible bool
	// Ref is the table whose sourcedIds the column holds (GUIDRef,
	// GUIDRefList; also demographics.sourcedId and userProfiles.userSourcedId).
	Ref string
	// Omittable: the column may be left out of the header. Only
	// users.resourceSourcedIds of 1.2, which 1.2.1 removed.
	Omittable bool
}

// Lifecycle says whether the column is status or dateLastModified: empty in
// bulk files, required in delta files.
func (c Column) Lifecycle() bool { return c.Name == "status" || c.Name == "dateLastModified" }

// Table is one CSV file of a version (Name "users" is users.csv).
type Table struct {
	Name    string
	Columns []Column
}

// FileName is the table's file in an upload, e.g. "users.csv".
func (t Table) FileName() string { return t.Name + ".csv" }

// Header is the header row the specification defines (omittable columns
// included).
func (t Table) Header() []string {
	h := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		h[i] = c.Name
	}
	return h
}

// Column returns the named column and its position in Columns.
func (t Table) Column(name string) (Column, int, bool) {
	for i, c := range t.Columns {
		if c.Name == name {
			return c, i, true
		}
	}
	return Column{}, -1, false
}

// References are the columns that hold other records' sourcedIds.
func (t Table) References() []Column {
	var out []Column
	for _, c := range t.Columns {
		if c.Ref != "" {
			out = append(out, c)
		}
	}
	return out
}

// Spec is the set of tables of one version, in dependency order: every
// table comes after the tables it references (self-references aside).
type Spec struct {
	Version Version
	Tables  []Table
}

// SpecFor returns the tables of a version; ok is false for a version this
// package does not know. Treat the result as read-only.
func SpecFor(v Version) (Spec, bool) {
	switch v {
	case V1p1:
		return spec11, true
	case V1p2:
		return spec12, true
	}
	return Spec{}, false
}

// Versions are the versions SpecFor knows.
func Versions() []Version { return []Version{V1p1, V1p2} }

// Table returns the named table.
func (s Spec) Table(name string) (Table, bool) {
	for _, t := range s.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// ManifestProperties are the manifest's propertyName rows for this version:
// the required ones (manifest.version, oneroster.version, a file.<table> row
// for every table) and then the optional source.* rows.
func (s Spec) ManifestProperties() (required, optional []string) {
	required = []string{"manifest.version", "oneroster.version"}
	for _, t := range s.Tables {
		required = append(required, "file."+t.Name)
	}
	return required, []string{"source.systemName", "source.systemCode"}
}

// The columns every table starts with.
func sourcedID() Column { return Column{Name: "sourcedId", Format: GUID, Required: true} }

var (
	colStatus = Column{Name: "status", Format: Enum, Values: []string{"active", "tobedeleted"}}
	colDLM    = Column{Name: "dateLastModified", Format: DateTime}
)

func table(name string, cols ...Column) Table {
	return Table{Name: name, Columns: append([]Column{sourcedID(), colStatus, colDLM}, cols...)}
}

func text(name string, required bool) Column {
	return Column{Name: name, Format: Text, Required: required}
}
func ref(name, target string, required bool) Column {
	return Column{Name: name, Format: GUIDRef, Ref: target, Required: required}
}
func refs(name, target string, required bool) Column {
	return Column{Name: name, Format: GUIDRefList, Ref: target, Required: required}
}
func enum(name string, required bool, values ...string) Column {
	return Column{Name: name, Format: Enum, Required: required, Values: values}
}
func ext(c Column) Column { c.Extensible = true; return c }
func of(name string, f Format, required bool) Column {
	return Column{Name: name, Format: f, Required: required}
}

var (
	orgTypes     = []string{"department", "school", "district", "local", "state", "national"}
	sessionTypes = []string{"gradingPeriod", "semester", "schoolYear", "term"}
	classTypes   = []string{"homeroom", "scheduled"}
	userRoles11  = []string{"administrator", "aide", "guardian", "parent", "proctor", "relative", "student", "teacher"}
	enrollRoles  = []string{"administrator", "proctor", "student", "teacher"}
	roleRoles12  = []string{"aide", "counselor", "districtAdministrator", "guardian", "parent", "principal", "proctor",
		"relative", "siteAdministrator", "student", "systemAdministrator", "teacher"}
	scoreStatuses = []string{"exempt", "fully graded", "not submitted", "partially graded", "submitted"}
	loSources     = []string{"case", "unknown"}
)

func demographics(sex Column) Table {
	t := table("demographics",
		of("birthDate", Date, false), sex,
		of("americanIndianOrAlaskaNative", Boolean, false), of("asian", Boolean, false),
		of("blackOrAfricanAmerican", Boolean, false), of("nativeHawaiianOrOtherPacificIslander", Boolean, false),
		of("white", Boolean, false), of("demographicRaceTwoOrMoreRaces", Boolean, false),
		of("hispanicOrLatinoEthnicity", Boolean, false),
		text("countryOfBirthCode", false), text("stateOfBirthAbbreviation", false), text("cityOfBirth", false),
		text("publicSchoolResidenceStatus", false))
	t.Columns[0].Ref = "users" // the user whose demographics these are
	return t
}

// spec11 is OneRoster 1.1 (CSV tables 1.1): 13 files.
var spec11 = Spec{Version: V1p1, Tables: []Table{
	table("orgs", text("name", true), enum("type", true, orgTypes...), text("identifier", false), ref("parentSourcedId", "orgs", false)),
	table("academicSessions", text("title", true), enum("type", true, sessionTypes...), of("startDate", Date, true), of("endDate", Date, true),
		ref("parentSourcedId", "academicSessions", false), of("schoolYear", Year, true)),
	table("courses", ref("schoolYearSourcedId", "academicSessions", false), text("title", true), text("courseCode", false),
		of("grades", Grades, false), ref("orgSourcedId", "orgs", true), of("subjects", Strings, false), of("subjectCodes", Strings, false)),
	table("classes", text("title", true), of("grades", Grades, false), ref("courseSourcedId", "courses", true), text("classCode", false),
		enum("classType", true, classTypes...), text("location", false), ref("schoolSourcedId", "orgs", true),
		refs("termSourcedIds", "academicSessions", true), of("subjects", Strings, false), of("subjectCodes", Strings, false), of("periods", Strings, false)),
	table("users", of("enabledUser", Boolean, true), refs("orgSourcedIds", "orgs", true), enum("role", true, userRoles11...),
		text("username", true), of("userIds", UserIDs, false), text("givenName", true), text("familyName", true), text("middleName", false),
		text("identifier", false), text("email", false), text("sms", false), text("phone", false), refs("agentSourcedIds", "users", false),
		of("grades", Grades, false), text("password", false)),
	table("enrollments", ref("classSourcedId", "classes", true), ref("schoolSourcedId", "orgs", true), ref("userSourcedId", "users", true),
		enum("role", true, enrollRoles...), of("primary", Boolean, false), of("beginDate", Date, false), of("endDate", Date, false)),
	demographics(enum("sex", false, "male", "female")),
	table("resources", text("vendorResourceId", true), text("title", false),
		Column{Name: "roles", Format: EnumList, Values: userRoles11}, enum("importance", false, "primary", "secondary"),
		text("vendorId", false), text("applicationId", false)),
	table("categories", text("title", true)),
	table("classResources", text("title", false), ref("classSourcedId", "classes", true), ref("resourceSourcedId", "resources", true)),
	table("courseResources", text("title", false), ref("courseSourcedId", "courses", true), ref("resourceSourcedId", "resources", true)),
	table("lineItems", text("title", true), text("description", false), of("assignDate", Date, true), of("dueDate", Date, true),
		ref("classSourcedId", "classes", true), ref("categorySourcedId", "categories", true),
		ref("gradingPeriodSourcedId", "academicSessions", true), of("resultValueMin", Float, true), of("resultValueMax", Float, true)),
	table("results", ref("lineItemSourcedId", "lineItems", true), ref("studentSourcedId", "users", true),
		enum("scoreStatus", true, scoreStatuses...), of("score", Float, true), of("scoreDate", Date, true), text("comment", false)),
}}

// spec12 is OneRoster 1.2 (CSV binding 1.2 and 1.2.1): 21 files. Grades are
// free vocabularies (no CEDS list); the vocabularies the binding names may
// take "ext:" terms.
var spec12 = Spec{Version: V1p2, Tables: []Table{
	table("orgs", text("name", true), ext(enum("type", true, orgTypes...)), text("identifier", false), ref("parentSourcedId", "orgs", false)),
	table("academicSessions", text("title", true), ext(enum("type", true, sessionTypes...)), of("startDate", Date, true), of("endDate", Date, true),
		ref("parentSourcedId", "academicSessions", false), of("schoolYear", Year, true)),
	table("courses", ref("schoolYearSourcedId", "academicSessions", false), text("title", true), text("courseCode", false),
		of("grades", Strings, false), ref("orgSourcedId", "orgs", true), of("subjects", Strings, false), of("subjectCodes", Strings, false)),
	table("classes", text("title", true), of("grades", Strings, false), ref("courseSourcedId", "courses", true), text("classCode", false),
		ext(enum("classType", true, classTypes...)), text("location", false), ref("schoolSourcedId", "orgs", true),
		refs("termSourcedIds", "academicSessions", true), of("subjects", Strings, false), of("subjectCodes", Strings, false), of("periods", Strings, false)),
	table("resources", text("vendorResourceId", true), text("title", false),
		ext(Column{Name: "roles", Format: EnumList, Values: userRoles11}), enum("importance", false, "primary", "secondary"),
		text("vendorId", false), text("applicationId", false)),
	table("users", of("enabledUser", Boolean, true), text("username", true), of("userIds", UserIDs, false),
		text("givenName", true), text("familyName", true), text("middleName", false), text("identifier", false), text("email", false),
		text("sms", false), text("phone", false), refs("agentSourcedIds", "users", false), text("grades", false), text("password", false),
		text("userMasterIdentifier", false),
		Column{Name: "resourceSourcedIds", Format: GUIDRefList, Ref: "resources", Omittable: true},
		text("preferredGivenName", false), text("preferredMiddleName", false), text("preferredFamilyName", false),
		ref("primaryOrgSourcedId", "orgs", false), text("pronouns", false)),
	func() Table {
		t := table("userProfiles", Column{Name: "userSourcedId", Format: GUID, Ref: "users", Required: true}, text("profileType", true),
			text("vendorId", true), text("applicationId", false), text("description", false), text("credentialType", true),
			text("username", true), text("password", false))
		return t
	}(),
	table("roles", ref("userSourcedId", "users", true), enum("roleType", true, "primary", "secondary"), ext(enum("role", true, roleRoles12...)),
		of("beginDate", Date, false), of("endDate", Date, false), ref("orgSourcedId", "orgs", true), ref("userProfileSourcedId", "userProfiles", false)),
	table("enrollments", ref("classSourcedId", "classes", true), ref("schoolSourcedId", "orgs", true), ref("userSourcedId", "users", true),
		ext(enum("role", true, enrollRoles...)), of("primary", Boolean, false), of("beginDate", Date, false), of("endDate", Date, false)),
	demographics(ext(enum("sex", false, "male", "female", "unspecified", "other"))),
	table("categories", text("title", true), of("weight", Integer, false)),
	table("classResources", text("title", false), ref("classSourcedId", "classes", true), ref("resourceSourcedId", "resources", true)),
	table("courseResources", text("title", false), ref("courseSourcedId", "courses", true), ref("resourceSourcedId", "resources", true)),
	table("userResources", ref("userSourcedId", "users", true), ref("orgSourcedId", "orgs", false), ref("classSourcedId", "classes", false),
		ref("resourceSourcedId", "resources", true)),
	table("scoreScales", text("title", true), text("type", true), ref("orgSourcedId", "orgs", true), ref("courseSourcedId", "courses", true),
		ref("classSourcedId", "classes", true), of("scoreScaleValue", ScoreScale, true)),
	table("lineItems", text("title", true), text("description", false), of("assignDate", Date, true), of("dueDate", Date, true),
		ref("classSourcedId", "classes", true), ref("categorySourcedId", "categories", true),
		ref("academicSessionSourcedId", "academicSessions", true), of("resultValueMin", Float, false), of("resultValueMax", Float, false),
		ref("schoolSourcedId", "orgs", true)),
	table("lineItemScoreScales", text("title", false), ref("lineItemSourcedId", "lineItems", true), ref("scoreScaleSourcedId", "scoreScales", true)),
	table("lineItemLearningObjectiveIds", ref("lineItemSourcedId", "lineItems", true), ext(enum("source", true, loSources...)),
		text("learningObjectiveId", true)),
	table("results", ref("lineItemSourcedId", "lineItems", true), ref("studentSourcedId", "users", true),
		ext(enum("scoreStatus", true, scoreStatuses...)), of("score", Float, false), of("scoreDate", Date, true), text("comment", false),
		text("textScore", false), ref("classSourcedId", "classes", false), of("inProgress", Boolean, false), of("incomplete", Boolean, false),
		of("late", Boolean, false), of("missing", Boolean, false)),
	table("resultScoreScales", text("title", false), ref("resultSourcedId", "results", true), ref("scoreScaleSourcedId", "scoreScales", true)),
	table("resultLearningObjectiveIds", ref("resultSourcedId", "results", true), ext(enum("source", true, loSources...)),
		text("learningObjectiveId", true), of("score", Float, false), text("textScore", false)),
}}

// grades11 are the CEDS grade levels OneRoster 1.1 uses.
var grades11 = map[string]bool{"IT": true, "PR": true, "PK": true, "TK": true, "KG": true, "01": true, "02": true, "03": true,
	"04": true, "05": true, "06": true, "07": true, "08": true, "09": true, "10": true, "11": true, "12": true, "13": true,
	"PS": true, "UG": true, "Other": true}

// The seven 1.1 tables the importer loads and the other 1.1 file names, in
// the shape gen.go reads (kept for it; new code uses SpecFor).
type fileSpec struct {
	name   string
	fields []field
}

type field struct{ name string }

var loaded11 = []string{"orgs", "academicSessions", "courses", "classes", "users", "enrollments", "demographics"}

var rosterFiles = func() []fileSpec {
	var out []fileSpec
	for _, n := range loaded11 {
		t, _ := spec11.Table(n)
		fs := fileSpec{name: n}
		for _, c := range t.Columns {
			fs.fields = append(fs.fields, field{name: c.Name})
		}
		out = append(out, fs)
	}
	return out
}()

var otherFiles = func() []string {
	var out []string
	for _, t := range spec11.Tables {
		if !slices.Contains(loaded11, t.Name) {
			out = append(out, t.Name)
		}
	}
	slices.Sort(out)
	return out
}()
