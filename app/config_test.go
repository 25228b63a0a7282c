package app

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/etlhub/etlhub/internal/config"
)

// base is a valid config; cases append to it.
const base = `listen: 127.0.0.1:8080
auth:
  tokens:
    - {name: admin, token: "0123456789abcdef0123", role: admin}
jobs:
  - tenant: dade
    job: roster-import
    timezone: UTC
    schedule: "0 2 * * *"
    deadline: "05:00"
    stale_after: 20m
`

func parse(t *testing.T, doc string) (*Config, []config.Problem) {
	t.Helper()
	var c Config
	err := config.Parse("etlhub.yaml", []byte(doc), &c)
	if err == nil {
		return &c, nil
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error is not a list of problems: %v", err)
	}
	return &c, ce.Problems
}

func TestConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // "LINE KEY: MSG" substrings, one per problem, in order
	}{
		{"valid", base, nil},
		// Issue 13 item 15: the log rules are rules like the others.
		{"log rules' timings", base + "rules:\n  timings:\n    log-error-spike: {for: 5m}\n    log-silence: {keep_firing_for: 10m}\n", nil},
		{"misspelled timing", base + "rules:\n  timings:\n    stalld: {for: 5m}\n", []string{"14 rules.timings.stalld: is not a rule"}},
		// A misspelled rule in a job's severity: the escalation would be lost.
		{"misspelled severity", base + "    severity: {stalld: critical}\n", []string{"12 jobs[0].severity.stalld: is not a rule (missed-start,"}},
		{"severity of log rules", base + "    severity: {log-silence: critical, log-error-spike: off, freshness: off}\n", nil},
		// Issue 13 item 3: an empty scope is not "every tenant".
		{"empty token scope", strings.Replace(base, "role: admin}", "role: admin, tenants: []}", 1),
			[]string{"4 auth.tokens[0].tenants: an empty list would mean every tenant"}},
		{"scoped token", strings.Replace(base, "role: admin}", "role: admin, tenants: [dade]}", 1), nil},
		{"empty digest scope", base + "notify:\n  default_receiver: s\n  receivers:\n    - {name: s, slack: {webhook_url: \"https://hooks.example/x\"}}\n  digests:\n    - {name: d, receiver: s, schedule: \"0 7 * * *\", timezone: UTC, tenants: []}\n",
			[]string{"17 notify.digests[0].tenants: an empty list would mean every tenant"}},
		// Type errors in plain words with their key; the rest is still checked.
		{"every problem after a type error", strings.Replace(base, "listen: 127.0.0.1:8080", "listen: 127.0.0.1:8080\nrules: {tick: 30 seconds}\ningest: {max_body_bytes: lots}", 1) +
			"  - {tenant: dade, job: b, timezone: Mars/Olympus, schedule: \"0 2 * * *\", deadline: \"05:00\", stale_after: 5 minutes}\n" +
			"  - {tenant: dade, job: c, timezone: UTC, schedule: \"0 2 * * *\", deadline: \"05:00\", stale_after: -5m}\n",
			[]string{
				`2 rules.tick: "30 seconds" is not a duration (use 30s, 5m, 1h)`,
				`3 ingest.max_body_bytes: "lots" is not a whole number`,
				`14 jobs[1].stale_after: "5 minutes" is not a duration (use 30s, 5m, 1h)`,
				`14 jobs[1].timezone: "Mars/Olympus" is not an IANA time zone`,
				`15 jobs[2].stale_after: "-5m" is negative`,
			}},
		{"unknown key with its path", base + "    colour: blue\n", []string{"12 jobs[0].colour: unknown key"}},
		{"list where a value goes", base + "log: {level: [debug]}\n", []string{"12 log.level: is a list; a single value is expected (text)"}},
		{"value where a list goes", strings.Replace(base, "role: admin}", "role: admin, tenants: dade}", 1), []string{`4 auth.tokens[0].tenants: "dade" is a single value; a list is expected`}},
		{"shutdown grace", base + "shutdown_grace: 1h\n", []string{"12 shutdown_grace: 1h0m0s is outside 0s..10m"}},
		{"cluster", base + "cluster: {lease_ttl: 10s}\n", nil},
		{"watchdog", base + "notify:\n  watchdog: {url: \"https://hc-ping.example/abc\"}\n", nil},
		{"bad watchdog", base + "notify:\n  watchdog:\n    url: \"ftp://x\"\n    method: PUT\n    interval: 2h\n",
			[]string{"14 notify.watchdog.url: is not an http(s) URL", "15 notify.watchdog.method: \"PUT\" is not GET or POST", "16 notify.watchdog.interval: 2h0m0s is outside 1s..1h"}},
		{"lease too short", base + "cluster: {lease_ttl: 1s}\n", []string{"12 cluster.lease_ttl: 1s is outside 3s..5m"}},
		{"renewal too rare", base + "cluster:\n  lease_ttl: 10s\n  lease_renew: 6s\n", []string{"14 cluster.lease_renew: 6s is outside 500ms..lease_ttl/2 (5s)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, probs := parse(t, tc.doc)
			var got []string
			for _, p := range probs {
				got = append(got, strings.TrimSpace(strings.Join([]string{strconv.Itoa(p.Line), p.Key + ":", p.Msg}, " ")))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d = %q, want %q...", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// With AllowMissingEnv a config checks in CI without its secrets: the unset
// variables are notes, and what follows from their empty values is not a
// problem; everything else still is.
func TestAllowMissingEnv(t *testing.T) {
	doc := strings.Replace(base, `"0123456789abcdef0123"`, `"${ETLHUB_TEST_UNSET_TOKEN}"`, 1)
	os.Unsetenv("ETLHUB_TEST_UNSET_TOKEN")
	var c Config
	err := config.Parse("etlhub.yaml", []byte(doc), &c)
	if err == nil || !strings.Contains(err.Error(), "etlhub.yaml:4: auth.tokens[0].token: environment variable ETLHUB_TEST_UNSET_TOKEN is not set") {
		t.Fatalf("without the option: %v", err)
	}
	if strings.Contains(err.Error(), "16 characters") {
		t.Fatalf("the empty value's consequence is reported too: %v", err)
	}
	notes, err := config.ParseWith("etlhub.yaml", []byte(doc), &Config{}, config.Options{AllowMissingEnv: true})
	if err != nil {
		t.Fatalf("with the option: %v", err)
	}
	if len(notes) != 1 || notes[0].Line != 4 {
		t.Fatalf("notes = %+v", notes)
	}
	_, err = config.ParseWith("etlhub.yaml", []byte(doc+"    deadline: \"25:00\"\n"), &Config{}, config.Options{AllowMissingEnv: true})
	if err == nil || !strings.Contains(err.Error(), "jobs[0].deadline") {
		t.Fatalf("other problems must still count: %v", err)
	}
}

// FuzzConfigParse: no document makes the loader panic, and every problem it
// reports is plain text with a line inside the document (or none).
//
//	go test -run '^$' -fuzz FuzzConfigParse -fuzztime 10m ./app/
func FuzzConfigParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte("rules: {tick: 30 seconds}\njobs: [{stale_after: -5m, severity: {stalld: off}}]\n"))
	f.Add([]byte("auth: {tokens: [{tenants: []}]}\nlisten: [1, 2]\n&a b: *a\n"))
	for _, glob := range []string{"../../examples/*.yaml", "../../cmd/etlhub/testdata/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		lines := strings.Count(string(doc), "\n") + 1
		var c Config
		err := config.Parse("fuzz.yaml", doc, &c)
		if err == nil {
			return
		}
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Fatalf("not a list of problems: %v", err)
		}
		if len(ce.Problems) == 0 {
			t.Fatal("an error without problems")
		}
		for _, p := range ce.Problems {
			if p.Msg == "" || p.Line < 0 || p.Line > lines {
				t.Fatalf("problem %+v (document of %d lines)", p, lines)
			}
			if strings.Contains(p.Msg, "!!") || strings.Contains(p.Msg, "unmarshal") {
				t.Fatalf("decoder jargon: %q", p.Msg)
			}
			if !utf8.ValidString(p.Key) {
				t.Fatalf("key %q", p.Key)
			}
		}
	})
}
