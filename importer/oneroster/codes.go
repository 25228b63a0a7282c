package oneroster

// CodeInfo explains a finding code to the district that reads the report.
type CodeInfo struct {
	Code    string `json:"code"`
	Meaning string `json:"meaning"`
	Fix     string `json:"fix"`
}

// Codes is every finding code, in the order of the README's table. A code
// never changes meaning; new rules get new codes.
var Codes = []CodeInfo{
	{"manifest.missing", "The upload has no manifest.csv at its root, so it cannot be read as OneRoster 1.1 or 1.2 (a set without one is OneRoster 1.0).",
		"Add manifest.csv next to the data files (not inside a folder) with oneroster.version and a file.* row per file."},
	{"manifest.invalid_header", "manifest.csv does not start with the header propertyName,value.",
		"Make the first row exactly propertyName,value (case-sensitive)."},
	{"manifest.invalid_version", "oneroster.version is missing or is not 1.1 or 1.2, so no tables apply and the data files were not checked.",
		"Set oneroster.version to the version the files follow: 1.1 or 1.2."},
	{"manifest.missing_property", "A row the specification requires is missing from manifest.csv: manifest.version or the file.* row of one of the version's files.",
		"Add the row; list every file of the version, as absent when it is not supplied."},
	{"manifest.unknown_property", "manifest.csv has a property the version does not define (often a typo, or a file of the other version).",
		"Remove the row or correct its name; the allowed names are manifest.version, oneroster.version, file.<table> and source.systemName/systemCode."},
	{"manifest.duplicate_property", "A property appears more than once in manifest.csv.", "Keep one row per property."},
	{"manifest.invalid_value", "A manifest value is not allowed: manifest.version must be 1.0 and file.* must be bulk, delta or absent (lower case).",
		"Correct the value; spreadsheet programs often turn 1.0 into 1."},
	{"manifest.missing_file", "The manifest lists a file as bulk or delta but the upload does not have it.",
		"Add the file, or mark it absent in the manifest."},
	{"manifest.file_declared_absent", "The upload has a file that the manifest marks absent.",
		"Mark the file bulk or delta in the manifest, or leave it out of the upload."},
	{"manifest.unlisted_file", "A file is in the upload but manifest.csv has no row for it; it is ignored.",
		"Add its file.* row to the manifest."},
	{"package.unknown_file", "A CSV file that is not a file of this OneRoster version is in the upload (or inside a folder).",
		"Remove it, or put the right file at the root of the upload under its exact name."},
	{"package.extra_file", "A file that is not CSV is in the upload; it is ignored.", "Leave it out of the upload."},
	{"file.zero_bytes", "The file is empty: it has no header row.", "Export it again with its header and rows, or mark it absent in the manifest."},
	{"file.empty", "The file has a header and no data rows; files without rows are not permitted.",
		"Mark the file absent in the manifest and leave it out, or add its rows."},
	{"file.csv_syntax", "The file is not RFC 4180 CSV (e.g. a quote inside an unquoted field, or text after a closing quote); the rest of the file was not read.",
		"Quote fields that contain commas or quotes and double the quotes inside them."},
	{"file.encoding", "The file is not UTF-8 (e.g. Latin-1 or UTF-16 from a spreadsheet export).", "Save the file as UTF-8 (a BOM at the start is fine)."},
	{"file.header_mismatch", "The header row does not have the specification's columns, in its order and case, with metadata.* extensions only at the end; the rows were not checked.",
		"Use the header of the specification for this version exactly; put extension columns, named metadata.*, after the last defined column."},
	{"file.duplicate_header", "Two header columns have the same name.", "Give every column a unique name."},
	{"row.field_count", "The row has a different number of fields than the header.", "Quote fields that contain commas; give every row one value per header column."},
	{"row.field_too_large", "A field is larger than the configured limit; only its start is kept in the report.",
		"Check the export: no OneRoster value should be that long. The limit is the policy's max_field_bytes."},
	{"row.cr_in_field", "A field contains a carriage return; OneRoster forbids line breaks with CR inside fields.",
		"Remove the line break, or use a plain LF inside a quoted field."},
	{"row.misplaced_bom", "A byte order mark (U+FEFF) appears inside the file, not at its start (often two exports pasted together).",
		"Remove the character; a BOM is only allowed as the first bytes of a file."},
	{"row.missing_required", "A required field is empty.", "Fill the field in every row."},
	{"row.invalid_enum", "The value is not in the column's vocabulary (values are case-sensitive; in 1.2 some vocabularies take ext: terms).",
		"Use one of the listed values, or in 1.2 a proprietary term starting with ext: where the vocabulary allows it."},
	{"row.invalid_sourcedid", "The value is not a valid sourcedId (1.2: only 0-9 a-z A-Z . - _ / @ and at most 255 characters; 1.1: no spaces at the ends or control characters).",
		"Use the same well-formed identifier in the file and in every reference to it."},
	{"row.duplicate_sourcedid", "The sourcedId appears more than once in the file.", "Give every record its own sourcedId."},
	{"row.bulk_tobedeleted", "A bulk file marks a row tobedeleted; bulk files cannot delete (records missing from a bulk file are removed).",
		"Leave the row out of the bulk file, or send the file as delta."},
	{"row.bulk_lifecycle", "A bulk row fills status or dateLastModified, which the specification says must be empty in bulk mode (many SIS exports do this). A warning or an error as the policy's bulk_lifecycle says.",
		"Leave status and dateLastModified empty in bulk files, or send the files as delta."},
	{"row.delta_missing_status", "A delta row has no status.", "Set status to active or tobedeleted in every delta row."},
	{"row.delta_missing_date_last_modified", "A delta row has no dateLastModified.", "Set dateLastModified (UTC, e.g. 2026-09-01T04:15:00.000Z) in every delta row."},
	{"row.invalid_datetime", "The value is not an ISO 8601 date and time like 2026-09-01T04:15:00.000Z.", "Write date-times as YYYY-MM-DDThh:mm:ss[.sss]Z."},
	{"row.datetime_not_utc", "The date-time has a time zone offset other than UTC; OneRoster date-times must be in UTC.",
		"Convert to UTC and end the value with Z."},
	{"row.invalid_date", "The value is not a date YYYY-MM-DD (or not a real day).", "Write dates as YYYY-MM-DD, e.g. 2026-09-01."},
	{"row.invalid_year", "The value is not a year YYYY.", "Write the year the school year ends, e.g. 2027."},
	{"row.invalid_boolean", "The value is not true or false (lower case).", "Write true or false; spreadsheets often turn them into TRUE or 1."},
	{"row.invalid_grade", "OneRoster 1.1: the value is not a CEDS grade level (IT PR PK TK KG 01-13 PS UG Other).", "Use the CEDS codes, e.g. KG or 01 (not K or 1)."},
	{"row.invalid_number", "The value is not a number of the column's kind (a decimal number, or a whole number).", "Write plain numbers like 95.5 or 20, without units."},
	{"row.invalid_user_ids", "userIds is not a list of {Type:Id} pairs.", `Write each id with its type, e.g. {LDAP:jdoe}; several as "{LDAP:jdoe},{LTI:42}".`},
	{"row.invalid_score_scale", "scoreScaleValue is not a list of {value:mapping} pairs.", `Write e.g. "{A:94},{B:84}".`},
	{"row.invalid_uuid_urn", "A learning objective whose source is case must be a UUID URN.", "Write the CASE identifier as urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx."},
	{"row.invalid_range", "The row's range is reversed: an end date before its start date, or resultValueMin above resultValueMax.", "Swap or correct the two values."},
	{"reference.missing_target_record", "A reference names a sourcedId that the referenced file does not have (a warning in delta mode: the record may already be loaded).",
		"Add the record to the referenced file or correct the reference."},
	{"reference.missing_target_file", "A bulk file references a file the upload does not supply; a bulk set must contain every record it references.",
		"Supply the referenced file in bulk mode as well."},
}

var codeIndex = func() map[string]*CodeInfo {
	m := make(map[string]*CodeInfo, len(Codes))
	for i := range Codes {
		m[Codes[i].Code] = &Codes[i]
	}
	return m
}()

// Explain returns what a code means and how to fix it.
func Explain(code string) (CodeInfo, bool) {
	c, ok := codeIndex[code]
	if !ok {
		return CodeInfo{Code: code}, false
	}
	return *c, true
}
