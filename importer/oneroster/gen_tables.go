package oneroster

// genTable is a file the generator writes and its header.
type genTable struct {
	name   string
	header []string
}

// genTables are the data files Generate writes for a version, in reading
// order; nil for a version it does not write.
func genTables(version string) []genTable {
	switch version {
	case "1.1":
		var out []genTable
		for _, s := range rosterFiles {
			h := make([]string, len(s.fields))
			for i, f := range s.fields {
				h[i] = f.name
			}
			out = append(out, genTable{s.name, h})
		}
		return out
	case "1.2":
		return tables12
	}
	return nil
}

// genManifestFiles are the file.* rows of a version's manifest.
func genManifestFiles(version string) []string {
	var out []string
	for _, t := range genTables(version) {
		out = append(out, t.name)
	}
	if version == "1.1" {
		out = append(out, otherFiles...)
	}
	return out
}

var common3 = []string{"sourcedId", "status", "dateLastModified"}

func hdr(cols ...string) []string { return append(append([]string(nil), common3...), cols...) }

// tables12 is OneRoster 1.2's CSV files (CSV Binding 1.2), targets first.
var tables12 = []genTable{
	{"orgs", hdr("name", "type", "identifier", "parentSourcedId")},
	{"academicSessions", hdr("title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear")},
	{"courses", hdr("schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId", "subjects", "subjectCodes")},
	{"classes", hdr("title", "grades", "courseSourcedId", "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods")},
	{"users", hdr("enabledUser", "username", "userIds", "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
		"agentSourcedIds", "grades", "password", "userMasterIdentifier", "preferredGivenName", "preferredMiddleName", "preferredFamilyName",
		"primaryOrgSourcedId", "pronouns")},
	{"userProfiles", hdr("userSourcedId", "profileType", "vendorId", "applicationId", "description", "credentialType", "username", "password")},
	{"roles", hdr("userSourcedId", "roleType", "role", "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId")},
	{"enrollments", hdr("classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate", "endDate")},
	{"demographics", hdr("birthDate", "sex", "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
		"nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces", "hispanicOrLatinoEthnicity",
		"countryOfBirthCode", "stateOfBirthAbbreviation", "cityOfBirth", "publicSchoolResidenceStatus")},
	{"resources", hdr("vendorResourceId", "title", "roles", "importance", "vendorId", "applicationId")},
	{"courseResources", hdr("title", "courseSourcedId", "resourceSourcedId")},
	{"classResources", hdr("title", "classSourcedId", "resourceSourcedId")},
	{"userResources", hdr("userSourcedId", "orgSourcedId", "classSourcedId", "resourceSourcedId")},
	{"categories", hdr("title", "weight")},
	{"scoreScales", hdr("title", "type", "orgSourcedId", "courseSourcedId", "classSourcedId", "scoreScaleValue")},
	{"lineItems", hdr("title", "description", "assignDate", "dueDate", "classSourcedId", "categorySourcedId", "academicSessionSourcedId",
		"resultValueMin", "resultValueMax", "schoolSourcedId")},
	{"results", hdr("lineItemSourcedId", "studentSourcedId", "scoreStatus", "score", "scoreDate", "comment", "textScore", "classSourcedId",
		"inProgress", "incomplete", "late", "missing")},
	{"lineItemScoreScales", hdr("title", "lineItemSourcedId", "scoreScaleSourcedId")},
	{"resultScoreScales", hdr("title", "resultSourcedId", "scoreScaleSourcedId")},
	{"lineItemLearningObjectiveIds", hdr("lineItemSourcedId", "source", "learningObjectiveId")},
	{"resultLearningObjectiveIds", hdr("resultSourcedId", "source", "learningObjectiveId", "score", "textScore")},
}
