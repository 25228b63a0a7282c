package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Every subcommand: -h and --help print its usage on stdout and exit 0;
// an unknown flag or argument is a usage error (exit 2) saying what is wrong.
func TestEverySubcommandFollowsCLIConventions(t *testing.T) {
	names := []string{}
	for _, c := range commands {
		names = append(names, c.name)
	}
	if want := "demo serve check-config routes replay status run importer gen-roster validate-roster healthcheck version"; strings.Join(names, " ") != want {
		t.Fatalf("commands = %v; add the new one to this test's expectations", names)
	}
	for _, c := range commands {
		for _, help := range []string{"-h", "--help"} {
			t.Run(c.name+" "+help, func(t *testing.T) {
				var out, errb bytes.Buffer
				code := run([]string{c.name, help}, &out, &errb)
				if code != 0 || errb.Len() != 0 {
					t.Fatalf("exit %d, stderr %q", code, errb.String())
				}
				if !strings.HasPrefix(out.String(), "Usage: etlhub "+c.name) {
					t.Fatalf("stdout:\n%s", out.String())
				}
			})
		}
		t.Run(c.name+" unknown flag", func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run([]string{c.name, "--no-such-flag"}, &out, &errb)
			if code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), "flag provided but not defined: -no-such-flag") ||
				!strings.Contains(errb.String(), "usage: etlhub "+c.name) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
			}
		})
		t.Run(c.name+" extra argument", func(t *testing.T) {
			if c.maxArgs > c.minArgs+1 {
				t.Skip("takes any number of arguments")
			}
			args := []string{c.name}
			for i := 0; i < c.minArgs; i++ {
				args = append(args, "arg")
			}
			args = append(args, "extra")
			var out, errb bytes.Buffer
			code := run(args, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), `unexpected argument "extra"`) {
				t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
			}
		})
	}
	// The flags after an argument count (they used to be taken as arguments).
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "extra", "--config", "x.yaml"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unexpected argument "extra"`) {
		t.Fatalf("serve extra --config: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"check-config"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "missing argument") {
		t.Fatalf("check-config without a file: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"check-config", "--help"}, &out, &errb); code != 0 || strings.Contains(errb.String(), "--help") {
		t.Fatalf("check-config --help: exit %d, %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"help", "status"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--json") {
		t.Fatalf("help status: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "etlhub check-config") {
		t.Fatalf("--help: exit %d, %q", code, out.String())
	}
	errb.Reset()
	if code := run([]string{"run", "--job", "dade/export"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "missing the command to run") {
		t.Fatalf("run without a command: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"no-such-command"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "no-such-command"`) {
		t.Fatalf("unknown command: exit %d, %q", code, errb.String())
	}
}

// fakeStatus is a hub answering /api/v1/status with rows.
func fakeStatus(t *testing.T, rows string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/status" {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("tenant") == "nobody" {
			w.Write([]byte(`{"jobs": []}`))
			return
		}
		w.Write([]byte(`{"jobs": ` + rows + `}`))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("ETLHUB_URL", srv.URL)
	t.Setenv("ETLHUB_TOKEN", "x")
	return srv
}

const hostileRows = `[
 {"tenant": "dade", "job": "roster-import", "risk": "ok", "state": "succeeded"},
 {"tenant": "evil\u001b]0;pwned\u0007", "job": "j\u001b[2J\u009b31m", "risk": "breached", "state": "running", "stage": "load\nFAKE ROW\u202e"}
]`

// Issue 13 item 11: strings pushed by a tenant cannot drive the terminal.
func TestStatusStripsControlCharacters(t *testing.T) {
	fakeStatus(t, hostileRows)
	for _, args := range [][]string{{"status"}, {"status", "--color", "always"}, {"status", "--json"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		s := out.String()
		if args[len(args)-1] == "always" {
			s = strings.NewReplacer("\x1b[1;31m", "", "\x1b[32m", "", "\x1b[0m", "").Replace(s)
		}
		for _, bad := range []string{"\x1b", "\x07", "\u009b", "\u202e"} {
			if strings.Contains(s, bad) {
				t.Fatalf("%v printed %q raw:\n%q", args, bad, s)
			}
		}
		if args[len(args)-1] != "--json" && (strings.Count(s, "\n") != 3 || !strings.Contains(s, `evil\x1b]0;pwned\x07`)) {
			t.Fatalf("%v: rows forged or the text lost:\n%s", args, s)
		}
	}
}

// NO_COLOR and TERM=dumb keep colour off unless --color always; colour is
// added after alignment, so the columns line up either way.
func TestStatusColourAndAlignment(t *testing.T) {
	fakeStatus(t, `[{"tenant": "dade", "job": "roster-import", "risk": "breached", "state": "running"},
	 {"tenant": "broward-county", "job": "j", "risk": "ok", "state": "succeeded"}]`)
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--color", "always"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "\x1b[1;31mbreached\x1b[0m") {
		t.Fatalf("--color always is not coloured:\n%q", out.String())
	}
	plain := strings.NewReplacer("\x1b[1;31m", "", "\x1b[32m", "", "\x1b[0m", "").Replace(out.String())
	lines := strings.Split(strings.TrimSpace(plain), "\n")
	col := func(l, word string) int { return utf8.RuneCountInString(l[:strings.Index(l, word)]) }
	if col(lines[0], "STATE") != col(lines[1], "running") || col(lines[0], "STATE") != col(lines[2], "succeeded") {
		t.Fatalf("columns out of line:\n%s", plain)
	}
	for _, env := range [][2]string{{"NO_COLOR", "1"}, {"TERM", "dumb"}} {
		t.Run(env[0], func(t *testing.T) {
			t.Setenv(env[0], env[1])
			// auto: never on a pipe; the terminal case is colourMode's.
			if on, _ := colourMode("auto", os.Stdout); on {
				t.Fatalf("%s=%s: auto colours", env[0], env[1])
			}
			var out bytes.Buffer
			run([]string{"status"}, &out, &errb)
			if strings.Contains(out.String(), "\x1b[") {
				t.Fatalf("coloured:\n%q", out.String())
			}
			if on, _ := colourMode("always", os.Stdout); !on {
				t.Fatal("--color always is overridden")
			}
		})
	}
	if code := run([]string{"status", "--color", "sometimes"}, &out, &errb); code != 2 {
		t.Fatalf("--color sometimes: exit %d", code)
	}
}

func TestStatusJSONAndUnknownTenant(t *testing.T) {
	fakeStatus(t, `[{"tenant": "b", "job": "j", "risk": "ok", "p_breach": 0.1}, {"tenant": "a", "job": "j", "risk": "breached"}]`)
	var out, errb bytes.Buffer
	if code := run([]string{"status", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got struct {
		Jobs []map[string]any `json:"jobs"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Jobs) != 2 || got.Jobs[0]["tenant"] != "a" || got.Jobs[1]["p_breach"] != 0.1 {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	errb.Reset()
	if code := run([]string{"status", "--tenant", "nobody"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `no tenant "nobody"`) {
		t.Fatalf("unknown tenant: exit %d, %q", code, errb.String())
	}
}

// An importer config given to the hub's check (and the reverse) says which
// command to use; check-config --allow-missing-env checks without secrets.
func TestConfigOfTheOtherHalf(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"check-config", "../../examples/importer.yaml"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "this is an importer config") || !strings.Contains(errb.String(), "etlhub importer --config ../../examples/importer.yaml --check") ||
		strings.Contains(errb.String(), "unknown key") {
		t.Fatalf("exit %d:\n%s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"importer", "--config", "../../examples/etlhub.yaml", "--check"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "this is a hub config") || !strings.Contains(errb.String(), "etlhub check-config ../../examples/etlhub.yaml") {
		t.Fatalf("exit %d:\n%s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	for _, v := range []string{"ETLHUB_TOKEN_IC", "ETLHUB_TOKEN_PUSH", "ETLHUB_TOKEN_DADE", "PD_ROUTING_KEY", "SLACK_BOT_TOKEN"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	if code := run([]string{"check-config", "--allow-missing-env", "../../examples/etlhub.yaml"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "OK (") || !strings.Contains(out.String(), "allowed by --allow-missing-env") {
		t.Fatalf("--allow-missing-env: exit %d\n%s%s", code, out.String(), errb.String())
	}
}

// importer --check: key files must exist and be private; each problem is
// printed once; OK goes to stdout.
func TestImporterCheck(t *testing.T) {
	dir := t.TempDir()
	known := filepath.Join(dir, "known_hosts")
	key := filepath.Join(dir, "id")
	os.WriteFile(known, []byte("sftp.example ssh-ed25519 AAAA\n"), 0o644)
	cfg := func(keyFile string) string {
		p := filepath.Join(dir, "importer.yaml")
		os.WriteFile(p, []byte(`insecure_no_auth: true
redis: {addr: 127.0.0.1:6379}
mongo: {uri: "mongodb://127.0.0.1:27017"}
tenants:
  - name: a
    sftp: {host: sftp.example, user: a, private_key_file: `+keyFile+`, known_hosts: `+known+`}
  - name: b
    sftp: {host: sftp.example, user: b, private_key_file: `+keyFile+`, known_hosts: `+filepath.Join(dir, "missing_hosts")+`}
`), 0o600)
		return p
	}
	var out, errb bytes.Buffer
	code := run([]string{"importer", "--config", cfg(key), "--check"}, &out, &errb)
	if code != 1 || strings.Count(errb.String(), "private_key_file: "+key+" does not exist") != 2 ||
		strings.Count(errb.String(), "missing_hosts does not exist") != 1 || strings.Contains(out.String(), "OK") {
		t.Fatalf("missing key: exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
	os.WriteFile(key, []byte("not really a key"), 0o644)
	os.Chmod(key, 0o644)
	errb.Reset()
	code = run([]string{"importer", "--config", cfg(key), "--check"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "is readable by others (mode 0644): chmod 600 "+key) {
		t.Fatalf("world-readable key: exit %d\n%s", code, errb.String())
	}
	os.Chmod(key, 0o600)
	p := cfg(key)
	os.WriteFile(p, bytes.Replace(must(os.ReadFile(p)), []byte(filepath.Join(dir, "missing_hosts")), []byte(known), 1), 0o600)
	out.Reset()
	errb.Reset()
	if code := run([]string{"importer", "--config", p, "--check"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "OK (2 tenants)") || errb.Len() != 0 {
		t.Fatalf("good config: exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// etlhub status shows the dependencies after the board: state, latency and
// what matters of the rest, strings from outside cleaned; --tenant keeps
// that tenant's and the shared ones; --json carries them whole.
func TestStatusShowsDependencies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/status":
			w.Write([]byte(`{"jobs": [{"tenant": "dade", "job": "roster-import", "risk": "ok", "state": "succeeded"}]}`))
		case "/api/v1/dependencies":
			w.Write([]byte(`{"dependencies": [
			  {"at": "2026-12-03T03:10:00Z", "source": "mongo", "subject": "mongodb:roster", "kind": "mongodb", "up": true, "values": {"latency_ms": 240.4, "p95_ms": 310}, "age_s": 5},
			  {"at": "2026-12-03T03:10:00Z", "source": "bsftp", "subject": "sftp:broward\u001b[2J:22", "kind": "sftp", "tenant": "broward", "up": false, "error": "3 of 3 connections refused\n", "values": {"rejected_connections": 3}, "age_s": 5},
			  {"at": "2026-12-03T03:10:00Z", "source": "redis", "subject": "redis:main", "kind": "redis", "up": true, "values": {"latency_ms": 0.4, "memory_used_ratio": 0.93}, "age_s": 5}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("ETLHUB_URL", srv.URL)
	t.Setenv("ETLHUB_TOKEN", "x")
	var out, errb bytes.Buffer
	if code := run([]string{"status"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	for _, want := range []string{"DEPENDENCY", "mongodb:roster", "240.4 ms", "p95 310 ms", "memory 93%", `sftp:broward\x1b[2J:22`, "down", "3 refused"} {
		if !strings.Contains(s, want) {
			t.Fatalf("status lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\x1b") || strings.Count(s, "\n") != 7 {
		t.Fatalf("raw control characters or forged rows:\n%q", s)
	}
	out.Reset()
	run([]string{"status", "--tenant", "dade"}, &out, &errb)
	if strings.Contains(out.String(), "broward") || !strings.Contains(out.String(), "redis:main") {
		t.Fatalf("--tenant dade:\n%s", out.String())
	}
	out.Reset()
	run([]string{"status", "--json"}, &out, &errb)
	var got struct {
		Dependencies []map[string]any `json:"dependencies"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || len(got.Dependencies) != 3 {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
}
