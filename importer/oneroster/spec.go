// Package oneroster validates OneRoster 1.1 (and 1.2 where the manifest says
// so) CSV bulk and delta sets as districts upload them, streaming: memory
// grows with the number of ids, not with file size. Every finding has a
// stable code, the file, the line and the column.
package oneroster

// fieldKind says how a column's values are checked.
type fieldKind int

const (
	kText     fieldKind = iota
	kID                 // a sourcedId
	kIDRef              // a reference to one sourcedId
	kIDList             // comma-separated references
	kDate               // YYYY-MM-DD
	kDateTime           // ISO 8601 date and time
	kYear               // YYYY
	kBool               // true | false
	kEnum
	kGrades // CEDS grade list
)

type field struct {
	name     string
	kind     fieldKind
	required bool
	enum     []string
	ref      string // target file (entity) of a reference
}

type fileSpec struct {
	name   string // e.g. "orgs"
	fields []field
}

// The roster files of OneRoster 1.1, in the order the files are read (the
// targets of references first). sourcedId, status and dateLastModified are
// common to all and checked by the bulk/delta rules.
var rosterFiles = []fileSpec{
	{"orgs", []field{
		{name: "sourcedId", kind: kID, required: true},
		{name: "status"}, {name: "dateLastModified"},
		{name: "name", required: true},
		{name: "type", kind: kEnum, required: true, enum: []string{"department", "school", "district", "local", "state", "national"}},
		{name: "identifier"},
		{name: "parentSourcedId", kind: kIDRef, ref: "orgs"},
	}},
	{"academicSessions", []field{
		{name: "sourcedId", kind: kID, required: true},
		{name: "status"}, {name: "dateLastModified"},
		{name: "title", required: true},
		{name: "type", kind: kEnum, required: true, enum: []string{"gradingPeriod", "semester", "schoolYear", "term"}},
		{name: "startDate", kind: kDate, required: true},
		{name: "endDate", kind: kDate, required: true},
		{name: "parentSourcedId", kind: kIDRef, ref: "academicSessions"},
		{name: "schoolYear", kind: kYear, required: true},
	}},
	{"courses", []field{
		{name: "sourcedId", kind: kID, required: true},
		{name: "status"}, {name: "dateLastModified"},
		{name: "schoolYearSourcedId", kind: kIDRef, ref: "academicSessions"},
		{name: "title", required: true},
		{name: "courseCode"},
		{name: "grades", kind: kGrades},
		{name: "orgSourcedId", kind: kIDRef, required: true, ref: "orgs"},
		{name: "subjects"},
		{name: "subjectCodes"},
	}},
	{"classes", []field{
		{name: "sourcedId", kind: kID, required: true},
		{name: "status"}, {name: "dateLastModified"},
		{name: "title", required: true},
		{name: "grades", kind: kGrades},
		{name: "courseSourcedId", kind: kIDRef, required: true, ref: "courses"},
		{name: "classCode"},
		{name: "classType", kind: kEnum, required: true, enum: []string{"homeroom", "scheduled"}},
		{name: "location"},
		{name: "schoolSourcedId", kind: kIDRef, required: true, ref: "orgs"},
		{name: "termSourcedIds", kind: kIDList, required: true, ref: "academicSessions"},
		{name: "subjects"},
		{name: "subjectCodes"},
		{name: "periods"},
	}},
	{"users", []field{
		{name: "sourcedId", kind: kID, required: true},
		{name: "status"}, {name: "dateLastModified"},
		{name: "enabledUser", kind: kBool, required: true},
		{name: "orgSourcedIds", kind: kIDList, required: true, ref: "orgs"},
		{name: "role", kind: kEnum, required: true, enum: []string{"administrator", "aide", "guardian", "parent", "proctor", "relative", "student", "teacher"}},
		{name: "username", required: true},
		{name: "userIds"},
		{name: "givenName", required: true},
		{name: "familyName", required: true},
		{name: "middleName"},
		{name: "identifier"},
		{name: "email"},
		{name: "sms"},
		{name: "phone"},
		{name: "agentSourcedIds", kind: kIDList, ref: "users"},
		{name: "grades", kind: kGrades},
		{name: "password"},
	}},
	{"enrollments", []field{
		{name: "sourcedId", kind: kID, required: true},
		{name: "status"}, {name: "dateLastModified"},
		{name: "classSourcedId", kind: kIDRef, required: true, ref: "classes"},
		{name: "schoolSourcedId", kind: kIDRef, required: true, ref: "orgs"},
		{name: "userSourcedId", kind: kIDRef, required: true, ref: "users"},
		{name: "role", kind: kEnum, required: true, enum: []string{"administrator", "proctor", "student", "teacher"}},
		{name: "primary", kind: kBool},
		{name: "beginDate", kind: kDate},
		{name: "endDate", kind: kDate},
	}},
	{"demographics", []field{
		{name: "sourcedId", kind: kIDRef, required: true, ref: "users"},
		{name: "status"}, {name: "dateLastModified"},
		{name: "birthDate", kind: kDate},
		{name: "sex", kind: kEnum, enum: []string{"male", "female"}},
		{name: "americanIndianOrAlaskaNative", kind: kBool},
		{name: "asian", kind: kBool},
		{name: "blackOrAfricanAmerican", kind: kBool},
		{name: "nativeHawaiianOrOtherPacificIslander", kind: kBool},
		{name: "white", kind: kBool},
		{name: "demographicRaceTwoOrMoreRaces", kind: kBool},
		{name: "hispanicOrLatinoEthnicity", kind: kBool},
		{name: "countryOfBirthCode"},
		{name: "stateOfBirthAbbreviation"},
		{name: "cityOfBirth"},
		{name: "publicSchoolResidenceStatus"},
	}},
}

// otherFiles are OneRoster files the importer does not load; a manifest may
// list them, and they are not validated beyond being present.
var otherFiles = []string{"categories", "classResources", "courseResources", "lineItems", "resources", "results"}

// grades are the CEDS grade levels OneRoster 1.1 uses.
var grades = map[string]bool{"IT": true, "PR": true, "PK": true, "TK": true, "KG": true, "01": true, "02": true, "03": true,
	"04": true, "05": true, "06": true, "07": true, "08": true, "09": true, "10": true, "11": true, "12": true, "13": true,
	"PS": true, "UG": true, "Other": true}

// v12Sex adds OneRoster 1.2's values.
var v12Sex = []string{"male", "female", "other", "unspecified"}
