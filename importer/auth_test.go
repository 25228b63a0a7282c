package importer

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/etlhub/etlhub/importer/inbox"
	"github.com/etlhub/etlhub/internal/config"
)

// emptyKnownHosts is a known_hosts file (a file, as the config requires)
// that pins nothing: for configs that never connect.
func emptyKnownHosts(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// minimal is a config that validates but for its auth settings.
func minimal(t *testing.T, workDir string) *Config {
	c := &Config{WorkDir: workDir, Tenants: []TenantConfig{{Name: "dade",
		SFTP: inbox.Config{Host: "h", User: "u", PrivateKey: "k", KnownHosts: emptyKnownHosts(t)}}}}
	c.Redis.Addr, c.Mongo.URI = "127.0.0.1:1", "mongodb://127.0.0.1:1"
	return c
}

// The importer's API serves rosters' data-quality reports with values from
// the files: it needs a token unless the config says, in so many words, that
// it does not.
func TestConfigRequiresAStatusToken(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml string
		want string // a problem containing this, or "" for none
	}{
		"no token":            {"", "status_token: is required"},
		"short token":         {`status_token: "short"`, "status_token: must be at least 16 characters"},
		"token":               {`status_token: "status-token-0123456789"`, ""},
		"explicitly open":     {`insecure_no_auth: true`, ""},
		"open and a token":    {"insecure_no_auth: true\nstatus_token: \"status-token-0123456789\"", "insecure_no_auth: is true but status_token is set"},
		"explicitly not open": {`insecure_no_auth: false`, "status_token: is required"},
	} {
		t.Run(name, func(t *testing.T) {
			doc := tc.yaml + `
redis: {addr: "127.0.0.1:6379"}
mongo: {uri: "mongodb://127.0.0.1"}
tenants:
  - name: dade
    sftp: {host: h, user: u, private_key: k, known_hosts: ` + emptyKnownHosts(t) + `}
`
			var c Config
			err := config.Parse("importer.yaml", []byte(doc), &c)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), "insecure_no_auth"):
				t.Fatalf("the error does not name the way out (insecure_no_auth): %v", err)
			}
		})
	}
}

func TestAPIRequiresABearerToken(t *testing.T) {
	const tok = "status-token-0123456789"
	c := minimal(t, t.TempDir())
	c.StatusToken = tok
	var p config.Problems
	c.Validate(&p)
	if p.Len() != 0 {
		t.Fatal(p.Err("cfg"))
	}
	im, err := New(context.Background(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(im.handler())
	defer srv.Close()
	call := func(path, auth string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, path := range []string{"/api/v1/runs", "/api/v1/report?run_id=x", "/api/v1/breakers", "/metrics"} {
		for _, auth := range []string{"", tok, "Basic " + tok, "Bearer wrong-token-0123456789", "bearer" + tok, "Bearer " + tok + "x"} {
			resp, body := call(path, auth)
			if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with %q: %d %q, WWW-Authenticate %q; want 401 with a Bearer challenge", path, auth, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
			}
			if strings.Contains(body, tok) {
				t.Errorf("%s: the answer shows the token", path)
			}
		}
	}
	for _, path := range []string{"/api/v1/breakers", "/metrics"} {
		if resp, body := call(path, "Bearer "+tok); resp.StatusCode != 200 {
			t.Errorf("%s with the token: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := call("/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("/healthz is for probes and needs no token: %d", resp.StatusCode)
	}

	open := minimal(t, t.TempDir())
	open.InsecureNoAuth = true
	open.Validate(&p)
	im2, err := New(context.Background(), open, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	im2.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Errorf("insecure_no_auth: /metrics answered %d", rec.Code)
	}
}

// Downloads (student data) land in folders that are the importer's alone.
func TestWorkDirIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data", "importer")
	c := minimal(t, dir)
	c.InsecureNoAuth = true
	var p config.Problems
	c.Validate(&p)
	if _, err := New(context.Background(), c, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o700 {
			t.Errorf("%s is %04o, want 0700", d, m)
		}
	}
	run, err := privateDir(filepath.Join(dir, "dade-run-1"))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(run); st.Mode().Perm() != 0o700 {
		t.Errorf("a run's download folder is %04o, want 0700", st.Mode().Perm())
	}
}

// The example config keeps a token, and the hub's example sends the same one.
func TestExampleRequiresAToken(t *testing.T) {
	for k, v := range map[string]string{"IMPORTER_STATUS_TOKEN": "importer-token-0123456789", "REDIS_PASSWORD": "p",
		"MONGO_URI": "mongodb://127.0.0.1", "SUMO_HTTP_SOURCE_URL": "https://collectors.example/receiver/v1/http/x"} {
		t.Setenv(k, v)
	}
	var c Config
	// The example names key files of a real machine; only auth matters here.
	if err := config.Load("../examples/importer.yaml", &c); err != nil &&
		(strings.Contains(err.Error(), "status_token") || strings.Contains(err.Error(), "insecure_no_auth")) {
		t.Fatal(err)
	}
	if c.InsecureNoAuth || c.StatusToken.Value() != "importer-token-0123456789" {
		t.Fatalf("the example importer is not protected by IMPORTER_STATUS_TOKEN")
	}
	hub, err := os.ReadFile("../examples/etlhub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hub), `Authorization: "Bearer ${IMPORTER_STATUS_TOKEN}"`) {
		t.Fatal("examples/etlhub.yaml's importer source does not send IMPORTER_STATUS_TOKEN")
	}
}
