package jsonpath

import (
	"encoding/json"
	"testing"
)

func TestLookup(t *testing.T) {
	var doc any
	if err := json.Unmarshal([]byte(`{"a":{"b":[{"c":1},{"c":"two"}]},"x":null}`), &doc); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{"a.b[1].c": "two", "a.b[0].c": 1.0} {
		if v, ok := Lookup(doc, path); !ok || v != want {
			t.Errorf("%s = %v %v, want %v", path, v, ok, want)
		}
	}
	for _, path := range []string{"a.b[2].c", "a.c", "a.b[x]", "x.y", "a.b.c"} {
		if v, ok := Lookup(doc, path); ok {
			t.Errorf("%s = %v, want not found", path, v)
		}
	}
	if v, ok := Lookup(doc, ""); !ok || v == nil {
		t.Error(`"" is not the document`)
	}
}
