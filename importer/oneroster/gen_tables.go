package oneroster

// genTable is a file the generator writes and its header.
type genTable struct {
	name   string
	header []string
}

// gen11 are the 1.1 files Generate writes (the rostering files; 1.1's
// resources and gradebook files are listed absent).
var gen11 = map[string]bool{"orgs": true, "academicSessions": true, "courses": true, "classes": true, "users": true,
	"enrollments": true, "demographics": true}

// genTables are the data files Generate writes for a version, with the
// validator's headers (a column 1.2.1 lets a file leave out is left out);
// nil for a version the validator does not know.
func genTables(version string) []genTable {
	spec, ok := SpecFor(Version(version))
	if !ok {
		return nil
	}
	var out []genTable
	for _, t := range spec.Tables {
		if spec.Version == V1p1 && !gen11[t.Name] {
			continue
		}
		var h []string
		for _, c := range t.Columns {
			if !c.Omittable {
				h = append(h, c.Name)
			}
		}
		out = append(out, genTable{t.Name, h})
	}
	return out
}

// genManifestFiles are the file.* rows of a version's manifest: every
// table of the version.
func genManifestFiles(version string) []string {
	spec, _ := SpecFor(Version(version))
	var out []string
	for _, t := range spec.Tables {
		out = append(out, t.Name)
	}
	return out
}
