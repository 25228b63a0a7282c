// Package config loads etlhub's YAML configuration strictly: unknown keys are
// errors, secrets come from the environment, and every problem names its key
// and line, as promtool and amtool do.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Line int    // 0 when unknown
	Key  string // dotted path, e.g. sources[1].url
	Msg  string
}

// Problems collects what is wrong; sections add to it as they validate.
type Problems struct {
	list []Problem
}

// Add records a problem at key.
func (p *Problems) Add(key, format string, args ...any) {
	p.list = append(p.list, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// Len is the number of problems.
func (p *Problems) Len() int { return len(p.list) }

// Err is the problems as an error naming source (nil when there are none),
// for settings that come from somewhere other than a file.
func (p *Problems) Err(source string) error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{File: source, Problems: p.list}
}

// Error is all problems of file, one a line, in line order.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
		if p.Key != "" {
			b.WriteString(p.Key + ": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// resolve finds the line of each problem's key in the document and sorts them.
func (p *Problems) resolve(file string, root *yaml.Node) error {
	if len(p.list) == 0 {
		return nil
	}
	for i := range p.list {
		if p.list[i].Line == 0 && root != nil {
			p.list[i].Line = lineOf(root, p.list[i].Key)
		}
	}
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Line < p.list[j].Line })
	// The same problem found twice (two sections sharing a file, say) is
	// listed once.
	seen := map[Problem]bool{}
	out := p.list[:0]
	for _, q := range p.list {
		if !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	p.list = out
	return &Error{File: file, Problems: p.list}
}

var pathPart = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// lineOf returns the line of the deepest node on path that exists.
func lineOf(n *yaml.Node, path string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, m := range pathPart.FindAllStringSubmatch(path, -1) {
		var next *yaml.Node
		switch {
		case m[2] != "" && n.Kind == yaml.SequenceNode:
			i, _ := strconv.Atoi(m[2])
			if i < len(n.Content) {
				next = n.Content[i]
			}
		case m[1] != "" && n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == m[1] {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
			return line
		}
		line = n.Line
	}
	return line
}

// Secret is a string that may come from the environment (written "${NAME}")
// and never prints itself.
type Secret string

// UnmarshalYAML expands ${NAME} from the environment; an unset variable is an error.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var v string
	if err := n.Decode(&v); err != nil {
		return err
	}
	// An unset variable expands to ""; missingEnv reports it with its line.
	out, _ := expandEnv(v)
	*s = Secret(out)
	return nil
}

// missingEnv finds every ${NAME} in the document whose variable is unset.
func missingEnv(root *yaml.Node, p *Problems) {
	for line, refs := range indexNodes(root) {
		for _, r := range refs {
			if r.node.Kind != yaml.ScalarNode || r.node.Line != line {
				continue
			}
			for _, m := range envRef.FindAllStringSubmatch(r.node.Value, -1) {
				if _, ok := os.LookupEnv(m[1]); !ok {
					p.list = append(p.list, Problem{Line: line, Key: r.path, Msg: fmt.Sprintf("environment variable %s is not set", m[1])})
				}
			}
		}
	}
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Line < p.list[j].Line })
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

func expandEnv(v string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(v, func(m string) string {
		name := m[2 : len(m)-1]
		val, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// Value is the secret itself; use it only where it is sent.
func (s Secret) Value() string { return string(s) }

// String never shows the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// MarshalJSON never shows the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Section is a configuration that sets its defaults and validates itself.
type Section interface {
	Validate(p *Problems)
}

// Options change how a file is checked.
type Options struct {
	// AllowMissingEnv accepts ${NAME} references whose variable is unset,
	// and the problems that follow from their empty values (check-config in
	// CI, without the real secrets). They are returned as notes instead.
	AllowMissingEnv bool
}

// Load reads file into out strictly and validates it. The error, when not
// nil, is an *Error listing every problem with its line.
func Load(file string, out Section) error {
	_, err := LoadWith(file, out, Options{})
	return err
}

// LoadWith is Load with options; notes are what the options let through.
func LoadWith(file string, out Section, o Options) (notes []Problem, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseWith(file, data, out, o)
}

// Parse is Load on bytes already read; file names them in errors.
func Parse(file string, data []byte, out Section) error {
	_, err := ParseWith(file, data, out, Options{})
	return err
}

// ParseWith is Parse with options. Every problem is listed: a value of the
// wrong type is reported and the rest of the file is still checked.
func ParseWith(file string, data []byte, out Section, o Options) (notes []Problem, err error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: file, Problems: syntaxProblems(err)}
	}
	idx := indexNodes(&root)
	var p Problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// A value the decoder could not take at all (it stops there).
			return nil, &Error{File: file, Problems: []Problem{{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}}
		}
		for _, msg := range te.Errors {
			p.list = append(p.list, idx.typeProblem(msg))
		}
	}
	typed := len(p.list)
	var env Problems
	missingEnv(&root, &env)
	out.Validate(&p)
	// A value of the wrong type was left empty: what validation says about
	// that key (and what is under it) follows from the type error.
	kept := p.list[:typed]
	for _, q := range p.list[typed:] {
		if !underAny(q.Key, p.list[:typed]) {
			kept = append(kept, q)
		}
	}
	p.list = kept
	// What validation says about a value left empty by a missing variable
	// follows from it.
	kept = p.list[:0]
	for _, q := range p.list {
		if !underAny(q.Key, env.list) && !parentOfAny(q.Key, env.list) {
			kept = append(kept, q)
		}
	}
	p.list = kept
	if o.AllowMissingEnv {
		notes = env.list
	} else {
		p.list = append(p.list, env.list...)
	}
	return notes, p.resolve(file, &root)
}

// parentOfAny reports whether key is the section right above one of the
// problems' keys (a check across its fields, like "token and channel").
func parentOfAny(key string, probs []Problem) bool {
	if key == "" {
		return false
	}
	for _, q := range probs {
		if rest, ok := strings.CutPrefix(q.Key, key+"."); ok && !strings.ContainsAny(rest, ".[") {
			return true
		}
	}
	return false
}

// underAny reports whether key is one of the type errors' keys or below one.
func underAny(key string, typeErrs []Problem) bool {
	for _, t := range typeErrs {
		if t.Key == "" {
			continue
		}
		if key == t.Key || strings.HasPrefix(key, t.Key+".") || strings.HasPrefix(key, t.Key+"[") {
			return true
		}
	}
	return false
}
