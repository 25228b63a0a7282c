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

// openAPIClientCheck is TypeScript a client of the hub would write against
// the types openapi-typescript generates: it compiles only if the answers
// are typed down to their fields (an answer typed {"type": "object"} gives
// Record<string, never>, and reading .jobs from it does not compile).
const openAPIClientCheck = `import type { components, paths } from "./api";

type JSONOf<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Get<P extends keyof paths> = paths[P] extends { get: { responses: infer R } } ? R : never;
type Post<P extends keyof paths> = paths[P] extends { post: { responses: infer R } } ? R : never;

declare const board: JSONOf<Get<"/api/v1/status">[200]>;
const tenant: string = board.jobs[0].tenant;
const progress: number | null = board.jobs[0].progress_pct;
const risk: "breached" | "predicted-breach" | "at-risk" | "running" | "ok" | "idle" | undefined = board.jobs[0].risk;

declare const job: JSONOf<Get<"/api/v1/jobs/{tenant}/{job}">[200]>;
const stage: string = job.current_run?.stage ?? "";
const deadline: string | undefined = job.spec?.deadline;

declare const run: JSONOf<Get<"/api/v1/runs/{run_id}">[200]>;
const state: "waiting" | "running" | "succeeded" | "failed" = run.observations[0].state;

declare const alerts: JSONOf<Get<"/api/v1/alerts">[200]>;
const severity: "critical" | "warning" | "info" = alerts.alerts[0].severity;

declare const pushed: JSONOf<Post<"/api/v1/observations">[422]>;
const why: string = pushed.errors[0].error;

declare const full: JSONOf<Post<"/api/v1/silences">[409]>;
const code: "too_many_silences" = full.error.code;

const silence: components["schemas"]["SilenceRequest"] = {
  matchers: [{ name: "tenant", value: "miami-dade" }],
  ends_at: "2026-09-01T06:00:00Z",
};

declare const am: JSONOf<Get<"/api/v2/alerts">[200]>;
const suppressed: boolean = am[0].status.state === "suppressed";

export const used = [tenant, progress, risk, stage, deadline, state, severity, why, code, silence, suppressed];
`

// TestOpenAPIDocumentGivesATypedTypeScriptClient: openapi-typescript, the
// generator platform teams use, makes types of the document that a strict
// TypeScript client reading the answers' fields compiles against.
func TestOpenAPIDocumentGivesATypedTypeScriptClient(t *testing.T) {
	gen, dir := lintTool(t, "openapi-typescript")
	tsc, _ := lintTool(t, "tsc")
	work := t.TempDir()
	if out, err := runLinter(t, dir, gen, "../../api/openapi.json", "--output", filepath.Join(work, "api.d.ts")); err != nil {
		t.Fatalf("openapi-typescript: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(work, "client.ts"), []byte(openAPIClientCheck), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runLinter(t, work, tsc, "--noEmit", "--strict", "--target", "es2020", "--module", "es2020", "--moduleResolution", "bundler", "client.ts")
	if err != nil {
		t.Fatalf("a client typed by the document does not compile: %v\n%s", err, out)
	}
}
