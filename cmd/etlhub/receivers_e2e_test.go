package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/notifier/webhook"
	"golang.org/x/crypto/bcrypt"
)

const (
	hookSecret = "webhook-hmac-secret-0123456789"
	smtpPass   = "smtp-password-0123456789"
)

// hookServer is a webhook receiver that refuses the first fails calls with
// 503 and keeps the bodies it accepted (signature checked).
type hookServer struct {
	mu       sync.Mutex
	fails    int
	calls    int
	accepted []webhook.Payload
	badSig   int
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if !webhook.Verify([]byte(hookSecret), r.Header.Get(webhook.TimestampHeader), body, r.Header.Get(webhook.SignatureHeader)) {
		h.badSig++
		w.WriteHeader(401)
		return
	}
	if h.calls <= h.fails {
		w.WriteHeader(503)
		return
	}
	var p webhook.Payload
	json.Unmarshal(body, &p)
	h.accepted = append(h.accepted, p)
}

func (h *hookServer) snapshot() (int, []webhook.Payload, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, append([]webhook.Payload(nil), h.accepted...), h.badSig
}

// TestWebhookAndEmailThroughTheOutbox: a failed night reaches a webhook
// receiver that refuses twice (retried until it takes it, once) and mailpit
// over STARTTLS with a password; the night's recovery resolves in both, and
// the resolve mail replies to the firing one.
func TestWebhookAndEmailThroughTheOutbox(t *testing.T) {
	hook := &hookServer{fails: 2}
	hs := httptest.NewServer(hook)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	cert, key := testsrv.SelfSignedCert(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte(smtpPass), bcrypt.MinCost)
	os.WriteFile(filepath.Join(dir, "auth"), []byte("etlhub:"+string(hash)+"\n"), 0o600)
	mp := testsrv.StartMailpit(t, testsrv.MailpitOptions{CertFile: cert, KeyFile: key, AuthFile: filepath.Join(dir, "auth")})
	t.Setenv("HOOK_SECRET", hookSecret)
	t.Setenv("SMTP_PASSWORD", smtpPass)
	notify := fmt.Sprintf(`rules: {tick: 1s, timings: {failed: {keep_firing_for: 0s}}}
notify:
  retry: {base: 100ms, max: 300ms}
  receivers:
    - {name: bridge, webhook: {url: %q, hmac_secret: "${HOOK_SECRET}"}}
    - name: owners
      email: {smarthost: %q, from: "etlhub <etlhub@hub.test>", to: [owners@district.test], username: etlhub, password: "${SMTP_PASSWORD}", ca_file: %q}
  routes:
    - {receiver: bridge, continue: true}
    - {receiver: owners}
`, hs.URL+"/alerts", mp.SMTP, cert)
	h := startHubIn(t, t.TempDir(), "  []", nowJobs("", "dade"), notify)
	now := time.Now().UTC()
	push := func(state, runID string, at time.Time) {
		obs := fmt.Sprintf(`{"at":%q,"tenant":"dade","job":"roster-import","run_id":%q,"state":%q,"started_at":%q,"updated_at":%q,"finished_at":%q,"rows_done":5,"rows_total":5}`,
			at.Format(time.RFC3339), runID, state, at.Add(-10*time.Minute).Format(time.RFC3339), at.Format(time.RFC3339), at.Format(time.RFC3339))
		if code, body := h.call("POST", "/api/v1/observations", opTok, []byte(obs)); code != 200 {
			t.Fatalf("push: %d %v", code, body)
		}
	}
	type mails struct {
		Messages []struct {
			ID, Subject string
		} `json:"messages"`
	}
	inbox := func() mails {
		var m mails
		resp, err := http.Get(mp.API + "/api/v1/messages")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
		}
		return m
	}
	push("failed", "dade/1", now.Add(-20*time.Minute))
	h.eventually("the webhook took the firing after two refusals, and the mail arrived", 30*time.Second, func() bool {
		_, acc, _ := hook.snapshot()
		return len(acc) == 1 && len(inbox().Messages) == 1
	})
	calls, acc, bad := hook.snapshot()
	if calls != 3 || bad != 0 {
		t.Fatalf("webhook calls %d (bad signatures %d), want 3: two refused, one taken", calls, bad)
	}
	a := acc[0]
	if a.Version != "4" || a.Status != "firing" || a.Receiver != "bridge" || len(a.Alerts) != 1 ||
		a.Alerts[0].Labels["alertname"] != "failed" || a.Alerts[0].Labels["tenant"] != "dade" {
		t.Fatalf("webhook body = %+v", a)
	}
	if s := inbox().Messages[0].Subject; !strings.HasPrefix(s, "[etlhub] FIRING warning: ") || !strings.Contains(s, "dade/roster-import") {
		t.Fatalf("mail subject %q", s)
	}
	_, body := h.call("GET", "/api/v1/notifications", viewTok, nil)
	attempts := map[string]float64{}
	for _, x := range body["notifications"].([]any) {
		n := x.(map[string]any)
		if n["status"] != "delivered" {
			t.Fatalf("notification not delivered: %v", n)
		}
		attempts[n["receiver"].(string)] = n["attempts"].(float64)
	}
	if attempts["bridge"] != 3 || attempts["owners"] != 1 {
		t.Fatalf("attempts = %v", attempts)
	}

	// The night recovers: both get the resolve, and the mail threads.
	push("succeeded", "dade/2", time.Now().UTC())
	h.eventually("the resolve reached both", 30*time.Second, func() bool {
		_, acc, _ := hook.snapshot()
		return len(acc) == 2 && len(inbox().Messages) == 2
	})
	_, acc, _ = hook.snapshot()
	if acc[1].Status != "resolved" || acc[1].Alerts[0].EndsAt.IsZero() {
		t.Fatalf("resolve body = %+v", acc[1])
	}
	m := inbox()
	var firing struct{ MessageID string }
	var headers map[string][]string
	for path, out := range map[string]any{"/api/v1/message/" + m.Messages[1].ID: &firing, "/api/v1/message/" + m.Messages[0].ID + "/headers": &headers} {
		resp, err := http.Get(mp.API + path)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(out)
		resp.Body.Close()
	}
	if got := headers["In-Reply-To"]; len(got) != 1 || got[0] != "<"+firing.MessageID+">" || !strings.HasPrefix(m.Messages[0].Subject, "[etlhub] RESOLVED") {
		t.Fatalf("resolve mail %q replies to %v, want <%s>", m.Messages[0].Subject, got, firing.MessageID)
	}
	if strings.Contains(h.logs.String(), smtpPass) || strings.Contains(h.logs.String(), hookSecret) {
		t.Fatal("a secret is in the hub's logs")
	}
}
