package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

// FuzzPushDecode: the push decoder never panics, never takes more than the
// cap, and splits a valid JSON array into exactly its elements.
//
//	go test -run '^$' -fuzz FuzzPushDecode -fuzztime 10m ./api/
func FuzzPushDecode(f *testing.F) {
	for _, s := range []string{
		`{"at":"2026-09-01T05:00:00Z","tenant":"a","job":"b","run_id":"r","state":"running"}`,
		`[{"at":"2026-09-01T05:00:00Z"},{"error":"a \"quoted\" ] , } [ {"}, {}]`,
		"{\"a\":1}\n\n{\"b\":[1,{\"c\":\"}\"}]}\n{broken\n",
		"{\n  \"at\": \"x\"\n}\n",
		`[`, `[]`, `[,]`, `[{}]]`, `[{}}`, `[{"a":"\\"}]`, `  [ 1 , "x" , null ] `, `x`, "\n\n\n", `"str"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const max = 50
		var got [][]byte
		err := eachItem(bytes.NewReader(body), max, func(it item) {
			if it.index != len(got) {
				t.Fatalf("item %d arrived as the %dth", it.index, len(got))
			}
			got = append(got, append([]byte(nil), it.raw...))
		})
		if len(got) > max {
			t.Fatalf("%d items past a cap of %d", len(got), max)
		}
		var bad *bodyError
		if err != nil && !errors.Is(err, errTooManyItems) && !errors.As(err, &bad) {
			var mbe *http.MaxBytesError
			if !errors.As(err, &mbe) {
				t.Fatalf("unexpected error kind %T: %v", err, err)
			}
		}
		trim := bytes.TrimSpace(body)
		var want []json.RawMessage
		if len(trim) > 0 && trim[0] == '[' && json.Unmarshal(trim, &want) == nil && len(want) <= max {
			if err != nil {
				t.Fatalf("a valid array of %d items: %v", len(want), err)
			}
			if len(got) != len(want) {
				t.Fatalf("a valid array of %d items gave %d", len(want), len(got))
			}
			for i := range want {
				if !bytes.Equal(bytes.TrimSpace(want[i]), got[i]) {
					t.Fatalf("item %d: %q, want %q", i, got[i], want[i])
				}
			}
		}
	})
}
