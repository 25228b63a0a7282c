// Package redact removes configured secrets from text that is stored, logged
// or served: the secret itself, its URL-encoded and base64 forms, and any part
// of it long enough to matter (8 characters or more), so that an upstream
// echoing a token, or a message cut in the middle of one, shows none of it.
// Scrub before you cut: Cut does both in that order.
package redact

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Mark replaces what was scrubbed.
const Mark = "<secret>"

// minExact is the shortest secret scrubbed at all (shorter ones would shred
// ordinary text); gram is the shortest part of a secret that is scrubbed.
const (
	minExact = 4
	gram     = 8
)

// Scrubber scrubs one set of secrets. The zero value and nil scrub nothing.
type Scrubber struct {
	exact []string            // lower-cased forms shorter than gram
	grams map[uint64]struct{} // every gram-long part of every form, lower-cased, as 8 bytes
}

// New builds a scrubber for secrets (empty and very short values are ignored).
func New(secrets ...string) *Scrubber {
	s := &Scrubber{grams: map[uint64]struct{}{}}
	seen := map[string]bool{}
	for _, v := range secrets {
		if len(v) < minExact {
			continue
		}
		for _, f := range forms(v) {
			f = lowerASCII(f)
			if seen[f] {
				continue
			}
			seen[f] = true
			if len(f) < gram {
				s.exact = append(s.exact, f)
				continue
			}
			for i := 0; i+gram <= len(f); i++ {
				s.grams[binary.LittleEndian.Uint64([]byte(f[i:i+gram]))] = struct{}{}
			}
		}
	}
	return s
}

// forms are the ways a secret shows up in text.
func forms(v string) []string {
	out := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString([]byte(v)))
	}
	return out
}

// Empty reports whether there is nothing to scrub.
func (s *Scrubber) Empty() bool { return s == nil || len(s.exact) == 0 && len(s.grams) == 0 }

// String returns text with every secret, form and part replaced by Mark.
func (s *Scrubber) String(text string) string {
	if s.Empty() || text == "" {
		return text
	}
	lb := []byte(lowerASCII(text))
	low := string(lb)
	hit := make([]bool, len(text))
	found := false
	mark := func(i, j int) {
		for ; i < j; i++ {
			hit[i] = true
		}
		found = true
	}
	for _, f := range s.exact {
		for off := 0; ; {
			i := strings.Index(low[off:], f)
			if i < 0 {
				break
			}
			mark(off+i, off+i+len(f))
			off += i + 1
		}
	}
	if len(s.grams) > 0 {
		for i := 0; i+gram <= len(lb); i++ {
			if _, ok := s.grams[binary.LittleEndian.Uint64(lb[i:])]; ok {
				mark(i, i+gram)
			}
		}
	}
	if !found {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		if !hit[i] {
			b.WriteByte(text[i])
			i++
			continue
		}
		for i < len(text) && hit[i] {
			i++
		}
		// A part of a secret may end inside a character: drop its tail too.
		for i < len(text) && !utf8.RuneStart(text[i]) {
			i++
		}
		b.WriteString(Mark)
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// Error returns err with its text scrubbed (err itself when nothing changed).
func (s *Scrubber) Error(err error) error {
	if err == nil || s.Empty() {
		return err
	}
	msg := err.Error()
	if out := s.String(msg); out != msg {
		return errors.New(out)
	}
	return err
}

// Cut scrubs text, then shortens it to at most n bytes on a character
// boundary, marking a cut with "...".
func (s *Scrubber) Cut(text string, n int) string {
	// What lies beyond n plus two parts' length cannot change what is kept:
	// a secret across the cut still has 8 bytes or more inside it.
	cut := false
	if m := n + 2*gram; len(text) > m {
		for m > 0 && !utf8.RuneStart(text[m]) {
			m--
		}
		text, cut = text[:m], true
	}
	text = s.String(strings.ToValidUTF8(text, "\uFFFD"))
	if len(text) <= n {
		if cut {
			return text + "..."
		}
		return text
	}
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n] + "..."
}

// lowerASCII lower-cases ASCII letters only, keeping every byte offset.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// authSchemes are the schemes of "Scheme credentials" header values: the
// scheme word is not secret (scrubbing "Bearer t..." would mangle ordinary
// text such as "Bearer token required").
var authSchemes = map[string]bool{"bearer": true, "basic": true, "token": true, "bot": true, "apikey": true,
	"api-key": true, "key": true, "digest": true, "ssws": true, "splunk": true, "negotiate": true}

// HeaderSecrets are the secrets in a header value: for "Scheme credentials"
// the credentials (and for Basic the decoded "user:password" and the
// password), otherwise the whole value.
func HeaderSecrets(v string) []string {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !authSchemes[strings.ToLower(scheme)] {
		return []string{v}
	}
	cred = strings.TrimSpace(cred)
	out := []string{cred}
	if strings.EqualFold(scheme, "Basic") {
		if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
			out = append(out, string(raw))
			if _, pass, ok := strings.Cut(string(raw), ":"); ok {
				out = append(out, pass)
			}
		}
	}
	return out
}

// BasicSecrets are the secrets of HTTP basic auth with user and password.
func BasicSecrets(user, pass string) []string {
	return append(HeaderSecrets("Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass))), user)
}

// secretParam names query parameters that carry credentials.
var secretParam = regexp.MustCompile(`(?i)(key|token|secret|pass|pwd|auth|sig|credential|session|code)`)

// URLSecrets are the secrets of a configured URL: the password of its user
// info and the values of query parameters named like credentials (api_key,
// access_token, sig, ...).
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			out = append(out, p, u.User.Username()+":"+p)
		}
	}
	for k, vs := range u.Query() {
		if secretParam.MatchString(k) {
			out = append(out, vs...)
		}
	}
	return out
}

// SecretURL are the secrets of a URL that is itself a credential (a Slack
// webhook, a Sumo Logic HTTP source): its path, query and password, not its
// scheme and host (which would scrub every mention of the service). A value
// that is not such a URL is returned as it is.
func SecretURL(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return []string{raw}
	}
	out := URLSecrets(raw)
	if p := strings.Trim(u.EscapedPath(), "/"); p != "" {
		out = append(out, p)
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
	}
	return out
}

// Printable makes outside text safe to store and show as one line: control
// characters (terminal escapes, C1 codes) and bidirectional overrides and
// isolates (which reorder what a reader sees) are dropped, and line breaks,
// line and paragraph separators and tabs become spaces.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t' || r == '\u2028' || r == '\u2029':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0),
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return -1
		}
		return r
	}, s)
}
