package collectors

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	leakToken = "tok_live_7Hq2Z9xKp4Vw8RmN3sLc"
	leakKey   = "KEY-4d9a1f7c2e8b6053"
)

// An upstream that echoes the credentials it was sent (in its body, a
// header, a redirect's URL, a run's error) must not get them into the
// source's health (GET /api/v1/sources, the database), the logs or the
// stored observations: not whole, not encoded, not half of one.
func TestEchoedCredentialsAreScrubbed(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(leakToken))
	cases := map[string]http.HandlerFunc{
		// The token straddles byte 200, where the reason used to be cut.
		"body across the cut": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", token="`+leakToken+`"`)
			http.Error(w, strings.Repeat("é", 90)+" tok: "+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), 401)
		},
		"encoded forms": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad credentials "+url.QueryEscape(leakToken+"/")+" b64="+b64+" key="+r.URL.Query().Get("api_key"), 403)
		},
		"a fragment": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "token "+leakToken[:12]+"... unknown", 401)
		},
		"redirect loop": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/login?token="+leakToken+"&n="+r.URL.Query().Get("n")+"x", http.StatusFound)
		},
		"redirect elsewhere": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://sso.invalid/login?token="+leakToken, http.StatusFound)
		},
		"not JSON": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html>"+strings.Repeat("x", 50)+" your token "+leakToken+"</html>")
		},
		"run error": func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"data":{"pipelines":[{"id":"L-1","customer":{"slug":"dade"},"status":"ERROR","started":1788235200,
			  "error":"auth failed with %s"}, {"id":"L-2","customer":{"slug":"dade"},"status":"RUNNING","started":"%s"}]}}`,
				leakToken, "not a time "+leakToken)
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			var logs bytes.Buffer
			sink := &memSink{}
			cfg := legacyConfig(srv.URL + "/runs?tenant=all&api_key=" + leakKey)
			cfg.Headers = map[string]config.Secret{"Authorization": "Bearer " + leakToken}
			cfg.Timeout = 10 * time.Second // a loaded machine must not turn an answer into a timeout
			cfg.HTTPJSON.StateMap["ERROR"] = "failed"
			cfg.HTTPJSON.Fields["error"] = "error"
			var p config.Problems
			cfg.Validate(&p, "s")
			clock := time.Date(2026, 9, 1, 4, 0, 0, 0, time.UTC)
			r, err := NewRunner(RunnerConfig{Sources: []SourceConfig{cfg}}, sink, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				NewMetrics(prometheus.NewRegistry()), func() time.Time { return clock })
			if err != nil {
				t.Fatal(err)
			}
			r.RunOnce(context.Background(), "legacy")
			h := sink.health["legacy"]
			var stored []string
			for _, o := range sink.obs {
				stored = append(stored, o.Error, string(o.Stage), o.URL, o.RunID)
			}
			if name == "run error" && len(sink.obs) != 1 {
				t.Fatalf("stored %d observations, want the valid one", len(sink.obs))
			}
			if name != "run error" && h.LastError == "" {
				t.Fatalf("no reason recorded: %+v", h)
			}
			if !utf8.ValidString(h.LastError) {
				t.Errorf("reason is not valid UTF-8: %q", h.LastError)
			}
			for where, text := range map[string]string{"source health": h.LastError, "logs": logs.String(), "observations": strings.Join(stored, " ")} {
				for _, part := range []string{leakToken[:8], leakToken[8:16], leakToken[len(leakToken)-8:], b64[:12], leakKey[:8], leakKey[len(leakKey)-8:]} {
					if strings.Contains(text, part) {
						t.Errorf("%s shows %q of a secret: %s", where, part, text)
					}
				}
			}
		})
	}
}

// check-config names a bad URL without its secrets.
func TestConfigErrorHidesURLSecrets(t *testing.T) {
	c := SourceConfig{Name: "x", Kind: "importer", URL: "ftp://bob:hunter2hunter2@etl.example/runs?api_key=" + leakKey + "&tenant=dade"}
	var p config.Problems
	c.Validate(&p, "sources[0]")
	got := p.Err("etlhub.yaml").Error()
	if strings.Contains(got, "hunter2") || strings.Contains(got, leakKey[:8]) || !strings.Contains(got, "sources[0].url") {
		t.Fatalf("problem: %s", got)
	}
}

// An upstream's error page is outside text: its control characters (terminal
// escapes, newlines that forge log lines) do not reach the source's health.
func TestUpstreamErrorTextIsPrintable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "\x1b]0;pwned\x07boom\r\nlevel=error msg=forged\x9b2J", 502)
	}))
	defer srv.Close()
	sink := &memSink{}
	cfg := legacyConfig(srv.URL)
	var p config.Problems
	cfg.Validate(&p, "s")
	r, _ := NewRunner(RunnerConfig{Sources: []SourceConfig{cfg}}, sink, slog.New(slog.DiscardHandler), nil, time.Now)
	r.RunOnce(context.Background(), "legacy")
	e := sink.health["legacy"].LastError
	if !strings.Contains(e, "boom") || strings.ContainsAny(e, "\x1b\x07\r\n\u009b") {
		t.Fatalf("last error %q", e)
	}
}
