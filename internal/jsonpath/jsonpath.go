// Package jsonpath follows dotted paths through decoded JSON: the field
// mappings of the httpjson collector and of the AWS kinds' tenant rules.
package jsonpath

import (
	"strconv"
	"strings"
)

// Lookup follows a dotted path ("a.b[2].c") through decoded JSON (maps of
// string to any, slices of any); "" is v itself.
func Lookup(v any, path string) (any, bool) {
	if path == "" {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		name, idx := part, ""
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			name, idx = part[:i], part[i+1:len(part)-1]
		}
		if name != "" {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[name]; !ok {
				return nil, false
			}
		}
		if idx != "" {
			n, err := strconv.Atoi(idx)
			a, ok := v.([]any)
			if err != nil || !ok || n < 0 || n >= len(a) {
				return nil, false
			}
			v = a[n]
		}
	}
	return v, true
}
