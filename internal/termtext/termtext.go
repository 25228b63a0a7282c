// Package termtext makes what a program wrote to a terminal safe to store,
// send and show: valid UTF-8 without escape sequences or control
// characters, and its end within a bound. The ping API cleans the output a
// job sends with it; etlhub run cleans the tail it sends with the same code.
package termtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tail keeps the end of s within max bytes, cut on a line (or at
// least on a character), marked with "…" where it was cut.
func Tail(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…\n"
	cut := len(s) - (max - len(mark))
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	if nl := strings.IndexByte(s[cut:], '\n'); nl >= 0 && nl < 512 && cut+nl+1 < len(s) {
		cut += nl + 1
	}
	return mark + s[cut:]
}

// Clean makes a program's output safe to store and show: valid UTF-8,
// terminal escape sequences and control characters (but newline and tab)
// removed, a carriage return keeping what a terminal would show (the text
// after it), bidirectional overrides removed, trailing space trimmed. It
// is still outside text: every place that shows it escapes it.
func Clean(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	out := make([]byte, 0, len(s))
	lineStart := 0 // where the current line begins in out
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x1b: // ESC: skip the whole sequence
			i += n + escapeLen(s[i+n:])
			continue
		case r == '\r':
			if i+1 < len(s) && s[i+1] != '\n' {
				// The terminal returns to the line's start: what follows overwrites it.
				out = out[:lineStart]
			}
		case r == '\n':
			out = append(out, '\n')
			lineStart = len(out)
		case r == '\t':
			out = append(out, '\t')
		case unicode.IsControl(r), isBidiControl(r):
		default:
			out = append(out, s[i:i+n]...)
		}
		i += n
	}
	return strings.TrimRightFunc(string(out), unicode.IsSpace)
}

// escapeLen is the length of the escape sequence after an ESC: CSI
// (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), or one character.
func escapeLen(s string) int {
	if s == "" {
		return 0
	}
	switch s[0] {
	case '[':
		for i := 1; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return len(s)
	case ']', 'P', '_', '^':
		for i := 1; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	}
	_, n := utf8.DecodeRuneInString(s)
	return n
}

func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// LastLines keeps the last n lines of s (n <= 0 keeps them all), marked
// with "…" where it was cut.
func LastLines(s string, n int) string {
	if n <= 0 {
		return s
	}
	i := len(s)
	for k := 0; k < n; k++ {
		j := strings.LastIndexByte(s[:i], '\n')
		if j < 0 {
			return s
		}
		i = j
	}
	return "…\n" + s[i+1:]
}
