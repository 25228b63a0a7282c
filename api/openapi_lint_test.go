package api

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// lintTool finds a linter that tools/lint's npm ci installed. Under CI a
// missing one fails the test: the lint is part of what CI promises.
func lintTool(t *testing.T, name string) (bin, dir string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "tools", "lint"))
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "node_modules", ".bin", name)
	_, err = os.Stat(bin)
	if _, nodeErr := exec.LookPath("node"); err == nil && nodeErr != nil {
		err = nodeErr
	}
	if err != nil {
		msg := name + " is not installed (" + err.Error() + "); scripts/test.sh installs it, or: cd tools/lint && npm ci"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin, dir
}

func runLinter(t *testing.T, dir, bin string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	// No telemetry, no update checks: CI reaches no such servers.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "SCARF_ANALYTICS=false",
		"NO_COLOR=1", "FORCE_COLOR=0", "NO_UPDATE_NOTIFIER=1")
	return cmd.Output()
}

// TestOpenAPIDocumentLintsCleanWithRedocly: redocly's recommended rules,
// no error and no warning (tools/lint/.redocly.lint-ignore.yaml names the
// few operations that answer no 4xx at all).
func TestOpenAPIDocumentLintsCleanWithRedocly(t *testing.T) {
	bin, dir := lintTool(t, "redocly")
	out, err := runLinter(t, dir, bin, "lint", "--config", "redocly.yaml", "--format", "json", "../../api/openapi.json")
	var res struct {
		Totals   struct{ Errors, Warnings, Ignored int }
		Problems []struct {
			RuleID, Severity, Message string
			Location                  []struct{ Pointer string }
		}
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("redocly: %v (%v); output:\n%s", err, jerr, out)
	}
	for _, p := range res.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = p.Location[0].Pointer
		}
		t.Errorf("redocly %s %s at %s: %s", p.Severity, p.RuleID, where, p.Message)
	}
	if res.Totals.Errors+res.Totals.Warnings > 0 || err != nil {
		t.Errorf("redocly: %d errors, %d warnings (%v)", res.Totals.Errors, res.Totals.Warnings, err)
	}
}

// TestOpenAPIDocumentLintsCleanWithSpectral: spectral's oas ruleset, no
// problem of any severity.
func TestOpenAPIDocumentLintsCleanWithSpectral(t *testing.T) {
	bin, dir := lintTool(t, "spectral")
	report := filepath.Join(t.TempDir(), "spectral.json")
	_, err := runLinter(t, dir, bin, "lint", "--ruleset", ".spectral.yaml", "--format", "json", "--output", report, "--fail-severity", "hint", "../../api/openapi.json")
	out, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("spectral wrote no report: %v (%v)", rerr, err)
	}
	var problems []struct {
		Code     string
		Message  string
		Severity int
		Path     []any
	}
	if jerr := json.Unmarshal(out, &problems); jerr != nil {
		t.Fatalf("spectral: %v (%v); output:\n%s", err, jerr, out)
	}
	for _, p := range problems {
		t.Errorf("spectral %s (severity %d) at %v: %s", p.Code, p.Severity, p.Path, p.Message)
	}
	if err != nil && len(problems) == 0 {
		t.Errorf("spectral failed: %v", err)
	}
}
