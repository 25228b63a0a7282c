package sumologic

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
)

// Sumo Logic answers that echo the access id and key (in a JSON message, in
// a body that is not JSON, or the basic-auth header itself) never bring
// them into the search's error (shown as the log source's health).
func TestErrorsHoldNoAccessKey(t *testing.T) {
	const id, key = "suAccessId9876", "sumo-access-key-0123456789abcdef"
	basic := base64.StdEncoding.EncodeToString([]byte(id + ":" + key))
	for name, h := range map[string]http.HandlerFunc{
		"json message": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(401)
			w.Write([]byte(`{"status":401,"code":"unauthorized","message":"Credential could not be verified: ` + r.Header.Get("Authorization") + ` key ` + key + `"}`))
		},
		"not json": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(403)
			w.Write([]byte(`<html>forbidden for ` + id + ":" + key[:20] + `</html>`))
		},
		"ok but not json": func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`oops ` + basic + strings.Repeat(" ", 40) + key))
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			c := Config{BaseURL: srv.URL, AccessID: config.Secret(id), AccessKey: config.Secret(key), PollInterval: time.Millisecond, Timeout: 5 * time.Second}
			var p config.Problems
			c.Validate(&p, "sumo")
			_, err := New(c).Search(context.Background(), q)
			if err == nil {
				t.Fatal("no error")
			}
			for _, part := range []string{id[:8], key[:8], key[len(key)-8:], key[12:20], basic[:8], basic[len(basic)-10:]} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error shows %q: %v", part, err)
				}
			}
		})
	}
}
