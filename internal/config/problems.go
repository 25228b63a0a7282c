// Package config loads etlhub's YAML configuration strictly: unknown keys are
// errors, secrets come from the environment, and every problem names its key
// and line, as promtool and amtool do.
package config

import (
	"fmt"
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

var yamlLineErr = regexp.MustCompile(`^line (\d+): (.*)$`)
var unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)

// decodeStrict decodes data into out, rejecting unknown keys; errors carry lines.
func decodeStrict(file string, data []byte, out any) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: file, Problems: yamlProblems(err)}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && err.Error() != "EOF" {
		return &root, &Error{File: file, Problems: yamlProblems(err)}
	}
	return &root, nil
}

func yamlProblems(err error) []Problem {
	var out []Problem
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		p := Problem{Msg: l}
		if m := yamlLineErr.FindStringSubmatch(l); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = m[2]
		}
		if m := unknownField.FindStringSubmatch(p.Msg); m != nil {
			p.Msg = fmt.Sprintf("unknown key %q", m[1])
		}
		out = append(out, p)
	}
	return out
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
func missingEnv(n *yaml.Node, p *Problems) {
	if n.Kind == yaml.ScalarNode {
		for _, m := range envRef.FindAllStringSubmatch(n.Value, -1) {
			if _, ok := os.LookupEnv(m[1]); !ok {
				p.list = append(p.list, Problem{Line: n.Line, Msg: fmt.Sprintf("environment variable %s is not set", m[1])})
			}
		}
	}
	for _, c := range n.Content {
		missingEnv(c, p)
	}
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

// Load reads file into out strictly and validates it. The error, when not
// nil, is an *Error listing every problem with its line.
func Load(file string, out Section) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return Parse(file, data, out)
}

// Parse is Load on bytes already read; file names them in errors.
func Parse(file string, data []byte, out Section) error {
	root, err := decodeStrict(file, data, out)
	if err != nil {
		return err
	}
	var p Problems
	missingEnv(root, &p)
	out.Validate(&p)
	return p.resolve(file, root)
}
