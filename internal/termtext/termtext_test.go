package termtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain\n":                         "plain",
		"a\r\nb\r\n":                      "a\nb",
		"10%\r50%\r100%\ndone":            "100%\ndone",
		"\x1b[1;32mok\x1b[0m":             "ok",
		"\x1b]8;;http://evil\x1b\\link":   "link",
		"tab\there":                       "tab\there",
		"nul\x00bell\x07del\x7fc1\u0085!": "nulbelldelc1!",
		"\u202eevil\u2066x\u2069":         "evilx",
		"bad \xc3\x28 utf8":               "bad \uFFFD( utf8",
		"trailing esc \x1b":               "trailing esc",
		"unterminated \x1b[31":            "unterminated",
	} {
		if got := Clean([]byte(in)); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLastLinesAndTail(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc", 2, "…\nb\nc"},
		{"a\nb\nc", 3, "a\nb\nc"},
		{"a\nb\nc", 0, "a\nb\nc"},
		{"only", 1, "only"},
		{"a\n\nc", 1, "…\nc"},
	} {
		if got := LastLines(c.in, c.n); got != c.want {
			t.Errorf("LastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	if got := Tail("short", 10); got != "short" {
		t.Errorf("Tail of a short text = %q", got)
	}
	long := strings.Repeat("é", 300) + "\nend"
	got := Tail(long, 100)
	if len(got) > 100 || !strings.HasPrefix(got, "…\n") || !strings.HasSuffix(got, "end") || !utf8.ValidString(got) {
		t.Errorf("Tail(long, 100) = %q (%d bytes)", got, len(got))
	}
}
