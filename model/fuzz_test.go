package model

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzObservationValidate: decoding never panics, and what it accepts is
// valid by every rule, stays valid after a round trip through JSON, and
// keeps its content hash.
//
//	go test -run '^$' -fuzz FuzzObservationValidate -fuzztime 10m ./model/
func FuzzObservationValidate(f *testing.F) {
	for _, s := range []string{
		`{"at":"2026-09-01T05:02:00Z","source":"importer","tenant":"miami-dade","job":"roster-import","run_id":"m/1","state":"running","stage":"loading","started_at":"2026-09-01T04:15:00Z","updated_at":"2026-09-01T05:01:40Z","rows_done":120000,"rows_total":3000000,"finished_at":null,"error":""}`,
		`{"at":"2026-09-01T05:00:00+02:00","tenant":"a","job":"b","run_id":"c","state":"failed","finished_at":"2026-09-01T03:09:00Z","error":"é\u0000","quality":{"errors":1,"warnings":2},"attempt":3,"url":"http://x"}`,
		`{"at":"2199-01-01T00:00:00Z","tenant":"a","job":"b","run_id":"c","state":"waiting","files_arrived_at":"2025-01-01T00:00:00Z"}`,
		`{"at":"2026-09-01T05:00:00Z","tenant":" ","job":"b","run_id":"c","state":"running","rows_done":-1}`,
		`{}`, `[]`, `null`, `{"at":1}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, strict bool) {
		o, err := Decode(data, DecodeOptions{Strict: strict, DefaultSource: "push:fuzz"})
		if err != nil {
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("accepted, then invalid: %v", err)
		}
		if !TimesPlausible(&o) || o.At.Location().String() != "UTC" || !o.State.Valid() {
			t.Fatalf("accepted an observation out of bounds: %+v", o)
		}
		for _, s := range []string{o.Source, o.Tenant, o.Job, o.RunID, string(o.Stage), o.Error, o.URL} {
			if !utf8.ValidString(s) {
				t.Fatalf("accepted invalid UTF-8 %q", s)
			}
		}
		again, err := json.Marshal(&o)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(again, DecodeOptions{Strict: true})
		if err != nil {
			t.Fatalf("its own JSON %s is refused: %v", again, err)
		}
		if back.Hash() != o.Hash() || !back.At.Equal(o.At) {
			t.Fatalf("round trip changed it: %+v\n%+v", o, back)
		}
	})
}
