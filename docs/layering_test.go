// Package docs holds the architecture document and the test that keeps the
// code to it: which package may import which (docs/architecture.md).
package docs

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/etlhub/etlhub/"

// mayImport is the order of the data flow: each part may import only the
// parts named for it (and its own subpackages). Nothing imports upward:
// the model imports nothing of ours, internal/ only itself, the hub's parts
// only those before them, and only app, sim and cmd see everything.
var mayImport = map[string][]string{
	"model":      {},
	"internal":   {"internal"},
	"rules":      {"model"},
	"store":      {"model", "internal", "rules"},
	"collectors": {"model", "internal", "collectors"},
	"notifier":   {"model", "internal", "rules", "store", "notifier"},
	"api":        {"model", "internal", "rules", "store", "api"},
	"alerting":   {"model", "internal", "rules", "store", "notifier", "api"},
	"importer":   {"model", "internal", "importer"},
	"app":        {"model", "internal", "rules", "store", "collectors", "notifier", "api", "alerting"},
	"sim":        {"model", "internal", "rules", "store", "collectors", "notifier", "api", "alerting", "importer", "app"},
	"jobrun":     {"model", "internal"},
	"cmd":        {"model", "internal", "rules", "store", "collectors", "notifier", "api", "alerting", "importer", "app", "sim", "jobrun"},
	"deploy":     {},
	"docs":       {},
}

func part(pkg string) string {
	p, _, _ := strings.Cut(strings.TrimPrefix(pkg, module), "/")
	return p
}

type goPackage struct {
	ImportPath string
	Imports    []string
}

func packages(t *testing.T) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = ".."
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []goPackage
	dec := json.NewDecoder(out)
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestNoPackageImportsUpward: every package of the module imports only what
// its part may (the non-test imports: tests may reach further).
func TestNoPackageImportsUpward(t *testing.T) {
	pkgs := packages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		me := part(p.ImportPath)
		allowed, known := mayImport[me]
		if !known {
			t.Errorf("%s: its part %q has no place in the layering (add it to mayImport and docs/architecture.md)", p.ImportPath, me)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			if them := part(imp); !slices.Contains(allowed, them) {
				t.Errorf("%s imports %s: %s may import only %v", strings.TrimPrefix(p.ImportPath, module), strings.TrimPrefix(imp, module), me, allowed)
			}
		}
	}
}

// TestArchitectureNamesEveryPart: the document describes each part the
// layering knows.
func TestArchitectureNamesEveryPart(t *testing.T) {
	doc, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	for p := range mayImport {
		if !strings.Contains(string(doc), "`"+p+"/`") {
			t.Errorf("docs/architecture.md does not describe `%s/`", p)
		}
	}
}
