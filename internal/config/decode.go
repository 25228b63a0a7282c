package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DurationHint is how a duration is written.
const DurationHint = "(use 30s, 5m, 1h)"

// ValueError is a problem with the value at n, for UnmarshalYAML methods:
// the decoder records it with its line and goes on with the rest of the file.
func ValueError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

// nodeRef is one value in the document and its key path.
type nodeRef struct {
	path string
	key  *yaml.Node // the mapping key naming it (nil for list items)
	node *yaml.Node
}

// nodeIndex finds values by line.
type nodeIndex map[int][]nodeRef

func indexNodes(root *yaml.Node) nodeIndex {
	idx := nodeIndex{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				r := nodeRef{path: p, key: k, node: v}
				idx[k.Line] = append(idx[k.Line], r)
				if v.Line != k.Line {
					idx[v.Line] = append(idx[v.Line], r)
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx[c.Line] = append(idx[c.Line], nodeRef{path: p, node: c})
				walk(c, p)
			}
		case yaml.AliasNode:
			// An alias is decoded as its anchor, found there.
		}
	}
	walk(root, "")
	return idx
}

var (
	lineMsg    = regexp.MustCompile(`^line (\d+): (.*)$`)
	notFound   = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	alreadySet = regexp.MustCompile(`^field (\S+) already set in type \S+$`)
	cannot     = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// typeProblem turns one of the decoder's messages into a problem with its
// key path, in plain words.
func (idx nodeIndex) typeProblem(msg string) Problem {
	p := Problem{Msg: msg}
	m := lineMsg.FindStringSubmatch(msg)
	if m == nil {
		return p
	}
	p.Line, _ = strconv.Atoi(m[1])
	p.Msg = m[2]
	refs := idx[p.Line]
	if k := notFound.FindStringSubmatch(p.Msg); k != nil {
		p.Msg = "unknown key"
		p.Key = idx.keyPath(refs, k[1])
		if p.Key == "" {
			p.Msg = fmt.Sprintf("unknown key %q", k[1])
		}
		return p
	}
	if k := alreadySet.FindStringSubmatch(p.Msg); k != nil {
		p.Msg = "is set twice"
		p.Key = idx.keyPath(refs, k[1])
		return p
	}
	if c := cannot.FindStringSubmatch(p.Msg); c != nil {
		tag, short, goType := c[1], c[2], c[3]
		var ref *nodeRef
		for i := len(refs) - 1; i >= 0; i-- {
			n := refs[i].node
			if n.Line == p.Line && n.ShortTag() == tag && (n.Kind != yaml.ScalarNode || prefixOf(short, n.Value)) {
				ref = &refs[i]
				break
			}
		}
		if ref == nil {
			p.Msg = plainType(tag, strings.TrimSuffix(short, "..."), goType)
			if len(refs) > 0 {
				p.Key = refs[len(refs)-1].path
			}
			return p
		}
		p.Key = ref.path
		p.Msg = plainType(tag, ref.node.Value, goType)
		return p
	}
	// A message of our own (ValueError): the deepest key on its line.
	if len(refs) > 0 {
		p.Key = refs[len(refs)-1].path
	}
	return p
}

// keyPath is the path of the mapping key named name on these refs' line.
func (idx nodeIndex) keyPath(refs []nodeRef, name string) string {
	for i := len(refs) - 1; i >= 0; i-- {
		if refs[i].key != nil && refs[i].key.Value == name {
			return refs[i].path
		}
	}
	return ""
}

func prefixOf(short, full string) bool {
	if strings.HasSuffix(short, "...") {
		return strings.HasPrefix(full, strings.TrimSuffix(short, "..."))
	}
	return short == full
}

// plainType says what is wrong with a value of YAML tag for a Go type.
func plainType(tag, value, goType string) string {
	got := map[string]string{"!!map": "a mapping (key: value lines)", "!!seq": "a list", "!!str": "text",
		"!!int": "a number", "!!float": "a number", "!!bool": "true/false", "!!null": "empty"}[tag]
	if got == "" {
		got = tag
	}
	if tag == "!!map" || tag == "!!seq" {
		switch {
		case strings.HasPrefix(goType, "[]"):
			return "is " + got + "; a list is expected (- item lines or [a, b])"
		case strings.HasPrefix(goType, "map["), !isScalarType(goType):
			return "is " + got + "; a mapping is expected (key: value lines)"
		}
		return "is " + got + "; a single value is expected (" + typeWords(goType) + ")"
	}
	switch {
	case strings.HasPrefix(goType, "[]"):
		return fmt.Sprintf("%q is a single value; a list is expected (- item lines or [a, b])", value)
	case strings.HasPrefix(goType, "map["), !isScalarType(goType):
		return fmt.Sprintf("%q is a single value; a mapping is expected (key: value lines)", value)
	}
	return fmt.Sprintf("%q is not %s", value, typeWords(goType))
}

func isScalarType(goType string) bool {
	switch goType {
	case "string", "bool", "time.Duration", "float32", "float64", "config.Secret":
		return true
	}
	return strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint")
}

func typeWords(goType string) string {
	switch {
	case goType == "time.Duration":
		return "a duration " + DurationHint
	case goType == "bool":
		return "true or false"
	case goType == "float32" || goType == "float64":
		return "a number"
	case strings.HasPrefix(goType, "uint"):
		return "a whole number, 0 or more"
	case strings.HasPrefix(goType, "int"):
		return "a whole number"
	case goType == "string" || goType == "config.Secret":
		return "text"
	}
	return goType
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblems is a YAML syntax error with its line.
func syntaxProblems(err error) []Problem {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return []Problem{{Line: line, Msg: "not valid YAML: " + m[2]}}
	}
	return []Problem{{Msg: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}}
}

// TopLevelKeys are the keys of the document's top mapping, in order.
func TopLevelKeys(data []byte) []string {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys = append(keys, m.Content[i].Value)
	}
	return keys
}

// Keys are the YAML keys a struct (or pointer to one) accepts.
func Keys(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	keys := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return keys
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k := range Keys(reflect.New(f.Type).Interface()) {
				keys[k] = true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys[name] = true
	}
	return keys
}

// BelongsTo reports whether a document meant for mine looks like one for
// other instead: some top-level keys mine does not know, all of them keys
// of other.
func BelongsTo(data []byte, mine, other any) bool {
	m, o := Keys(mine), Keys(other)
	unknown := 0
	for _, k := range TopLevelKeys(data) {
		if m[k] {
			continue
		}
		if !o[k] {
			return false
		}
		unknown++
	}
	return unknown > 0
}
