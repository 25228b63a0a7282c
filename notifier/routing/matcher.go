// Package routing is Alertmanager's routing, pure: a tree of routes with
// matchers, the time intervals that mute or activate them, and inhibition
// rules. Labels go in, routes (receivers and their grouping) come out; the
// clock is an argument.
package routing

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MatchType is a matcher's operator.
type MatchType int

// The four operators of Alertmanager's matchers.
const (
	MatchEqual     MatchType = iota // =
	MatchNotEqual                   // !=
	MatchRegexp                     // =~ (anchored: the whole value)
	MatchNotRegexp                  // !~
)

func (t MatchType) String() string {
	return [...]string{"=", "!=", "=~", "!~"}[t]
}

// Matcher tests one label. A label that is absent has the value "".
type Matcher struct {
	Name  string
	Type  MatchType
	Value string
	re    *regexp.Regexp
}

// NewMatcher builds a matcher; a regular expression must compile (it is
// anchored at both ends, as in Alertmanager and Prometheus).
func NewMatcher(t MatchType, name, value string) (*Matcher, error) {
	m := &Matcher{Name: name, Type: t, Value: value}
	if t == MatchRegexp || t == MatchNotRegexp {
		if _, err := regexp.Compile(value); err != nil {
			return nil, fmt.Errorf("%s: %v", m, err)
		}
		m.re = regexp.MustCompile("^(?:" + value + ")$")
	}
	return m, nil
}

// Matches reports whether the value v passes.
func (m *Matcher) Matches(v string) bool {
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	}
	return !m.re.MatchString(v)
}

// String is the matcher as it is written, the value quoted.
func (m *Matcher) String() string {
	return m.Name + m.Type.String() + strconv.Quote(m.Value)
}

// Matchers pass when each of them does.
type Matchers []*Matcher

// Matches reports whether labels pass every matcher.
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels[m.Name]) {
			return false
		}
	}
	return true
}

func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// matcherSyntax splits name, operator and raw value. Label names are
// Prometheus's ([a-zA-Z_:][a-zA-Z0-9_:]*); the two-character operators are
// tried before "=".
var matcherSyntax = regexp.MustCompile(`^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|!~|!=|=)\s*((?s).*?)\s*$`)

var opTypes = map[string]MatchType{"=": MatchEqual, "!=": MatchNotEqual, "=~": MatchRegexp, "!~": MatchNotRegexp}

// ParseMatcher reads one matcher: name=value, name!=value, name=~regex or
// name!~regex. The value may be in double quotes; inside them \" is a quote,
// \\ a backslash and \n a line break.
func ParseMatcher(s string) (*Matcher, error) {
	p := matcherSyntax.FindStringSubmatch(s)
	if p == nil {
		return nil, fmt.Errorf("%q is not a matcher (name=value, name!=value, name=~regex or name!~regex)", s)
	}
	v, err := unquoteValue(p[3])
	if err != nil {
		return nil, fmt.Errorf("%q: %v", s, err)
	}
	return NewMatcher(opTypes[p[2]], p[1], v)
}

// unquoteValue undoes the quoting of a matcher's value. An unquoted value is
// taken as it is, except that a quote inside it must be escaped.
func unquoteValue(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", fmt.Errorf("the value is not valid UTF-8")
	}
	quoted := strings.HasPrefix(raw, `"`)
	if quoted {
		raw = raw[1:]
	}
	var b strings.Builder
	closed := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case closed:
			return "", fmt.Errorf("text after the closing quote")
		case c == '\\' && i+1 < len(raw):
			i++
			switch raw[i] {
			case 'n':
				b.WriteByte('\n')
			case '"', '\\':
				b.WriteByte(raw[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(raw[i])
			}
		case c == '"':
			if !quoted || i != len(raw)-1 {
				return "", fmt.Errorf("an unescaped double quote in the value")
			}
			closed = true
		default:
			b.WriteByte(c)
		}
	}
	if quoted && !closed {
		return "", fmt.Errorf("the value's closing quote is missing")
	}
	return b.String(), nil
}

// ParseMatchers reads a comma-separated list of matchers, optionally in
// braces: {severity="critical", tenant=~"miami-.*"}. Commas inside quotes
// belong to the value.
func ParseMatchers(s string) (Matchers, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	var out Matchers
	var tok strings.Builder
	inQuotes, escaped := false, false
	flush := func() error {
		t := strings.TrimSpace(tok.String())
		tok.Reset()
		if t == "" {
			return nil
		}
		m, err := ParseMatcher(t)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	}
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case r == '"':
			inQuotes = !inQuotes
		case r == ',' && !inQuotes:
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		tok.WriteRune(r)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
