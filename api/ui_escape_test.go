package api

import (
	"regexp"
	"strings"
	"testing"
)

// TestDashboardPutsDataInAsTextOnly: the dashboard builds its DOM from
// elements and text nodes, never from HTML strings, and the page's policy
// makes the browser refuse any HTML sink (Trusted Types), so a tenant, job,
// stage, summary or error pushed with markup in it can only ever be text.
func TestDashboardPutsDataInAsTextOnly(t *testing.T) {
	js, err := uiFiles.ReadFile("ui/app.js")
	if err != nil {
		t.Fatal(err)
	}
	// The sinks that parse a string as HTML or run it as script.
	sink := regexp.MustCompile(`\.(innerHTML|outerHTML|insertAdjacentHTML|srcdoc)\b|document\.write|\beval\s*\(|new\s+Function\s*\(|createContextualFragment|DOMParser`)
	for i, line := range strings.Split(string(js), "\n") {
		if m := sink.FindString(line); m != "" {
			t.Errorf("ui/app.js:%d uses %s; build elements with el() and put data in as text: %s", i+1, m, strings.TrimSpace(line))
		}
	}
	h := newHardened(t, nil)
	for _, path := range []string{"/", "/ui/app.js"} {
		resp, err := h.srv.Client().Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "require-trusted-types-for 'script'", "trusted-types 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", path, csp, want)
			}
		}
	}
}
