package testsrv

import (
	"testing"
)

// Chromium returns the path of a Chromium browser for headless tests;
// under CI=true a missing one fails the test.
func Chromium(t testing.TB) string {
	t.Helper()
	p, err := findBinary("chromium", "/usr/bin", "/usr/lib/chromium")
	if err != nil {
		if p, err = findBinary("chromium-browser", "/usr/bin"); err != nil {
			Missing(t, "Chromium", err)
		}
	}
	return p
}
