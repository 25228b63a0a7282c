package email

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/testsrv"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) { testsrv.Main(m) }

const password = "smtp-pass-0123456789"

type server struct {
	*testsrv.Mailpit
	ca string
}

// startMailpit runs mailpit requiring STARTTLS and a password.
func startMailpit(t *testing.T) server {
	t.Helper()
	dir := t.TempDir()
	cert, key := testsrv.SelfSignedCert(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	auth := filepath.Join(dir, "auth")
	os.WriteFile(auth, []byte("etlhub:"+string(hash)+"\n"), 0o600)
	return server{testsrv.StartMailpit(t, testsrv.MailpitOptions{CertFile: cert, KeyFile: key, AuthFile: auth}), cert}
}

func newNotifier(t *testing.T, c Config) *Notifier {
	t.Helper()
	var p config.Problems
	c.Validate(&p, "receivers[0].email")
	if p.Len() != 0 {
		t.Fatal(p.Err("config"))
	}
	return New(c)
}

func (s server) config() Config {
	return Config{Smarthost: s.SMTP, From: "etlhub <etlhub@hub.test>", To: []string{"owners@district.test", "Data Team <data@district.test>"},
		Username: "etlhub", Password: password, CAFile: s.ca, Timeout: 5 * time.Second}
}

func (s server) get(t *testing.T, path string, out any) {
	t.Helper()
	resp, err := http.Get(s.API + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func (s server) chaos(t *testing.T, body string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", s.API+"/api/v1/chaos", bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("chaos %s: %v %v", body, err, resp)
	}
	resp.Body.Close()
}

type listed struct {
	Messages []struct {
		ID      string `json:"ID"`
		Subject string `json:"Subject"`
		To      []struct {
			Address string `json:"Address"`
		} `json:"To"`
	} `json:"messages"`
}

func hostile() model.Alert {
	at := time.Date(2026, 9, 1, 9, 30, 0, 0, time.UTC)
	return model.Alert{ID: "a1b2", Fingerprint: "fp", Rule: "files-late", Severity: "warning", Tenant: "dade", Job: "roster-import",
		Summary: "dade/roster-import: files late <script>alert(1)</script>\r\nBcc: victim@evil.test", State: model.AlertFiring,
		FiredAt: at, Details: map[string]any{"expected_by": "02:00 <b>"}}
}

// TestDeliversOverSTARTTLSWithAuth: a firing and its resolve reach every
// recipient through a server that requires STARTTLS and a password, with a
// text and an HTML body in which nothing from outside is markup, and the
// resolve threads under the firing.
func TestDeliversOverSTARTTLSWithAuth(t *testing.T) {
	s := startMailpit(t)
	n := newNotifier(t, s.config())
	ctx := context.Background()
	a := hostile()
	ref, err := n.Notify(ctx, notifier.Message{Event: "firing", Alert: a, DashboardURL: "https://hub.test/"})
	if err != nil {
		t.Fatalf("firing: %v", err)
	}
	r := a
	r.State, r.ResolvedAt = model.AlertResolved, a.FiredAt.Add(time.Hour)
	if _, err := n.Notify(ctx, notifier.Message{Event: "resolved", Alert: r, Ref: ref}); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	var l listed
	s.get(t, "/api/v1/messages", &l)
	if len(l.Messages) != 2 {
		t.Fatalf("mailpit has %d messages: %+v", len(l.Messages), l)
	}
	// Newest first: the resolve, then the firing.
	fire := l.Messages[1]
	if !strings.HasPrefix(fire.Subject, "[etlhub] FIRING warning: dade/roster-import: files late") || strings.ContainsAny(fire.Subject, "\r\n") ||
		len(fire.To) != 2 || fire.To[0].Address != "owners@district.test" || fire.To[1].Address != "data@district.test" {
		t.Fatalf("firing = %+v", fire)
	}
	var msg struct {
		Text, HTML string
		Bcc        []any
		MessageID  string
	}
	s.get(t, "/api/v1/message/"+fire.ID, &msg)
	if "<"+msg.MessageID+">" != ref || len(msg.Bcc) != 0 {
		t.Fatalf("message id %q, ref %q, bcc %v", msg.MessageID, ref, msg.Bcc)
	}
	if !strings.Contains(msg.Text, "files late <script>") || !strings.Contains(msg.Text, "expected_by: 02:00 <b>") {
		t.Fatalf("text body:\n%s", msg.Text)
	}
	if strings.Contains(msg.HTML, "<script>") || strings.Contains(msg.HTML, "02:00 <b>") || !strings.Contains(msg.HTML, "&lt;script&gt;") ||
		!strings.Contains(msg.HTML, `href="https://hub.test/"`) {
		t.Fatalf("HTML body is not escaped:\n%s", msg.HTML)
	}
	var headers map[string][]string
	s.get(t, "/api/v1/message/"+l.Messages[0].ID+"/headers", &headers)
	if got := headers["In-Reply-To"]; len(got) != 1 || got[0] != ref || !strings.HasPrefix(l.Messages[0].Subject, "[etlhub] RESOLVED") {
		t.Fatalf("resolve headers %v, subject %q; want In-Reply-To %s", headers["In-Reply-To"], l.Messages[0].Subject, ref)
	}
}

// TestRetryVerdicts: what the mail server answers decides whether the
// outbox retries; the password is in no error.
func TestRetryVerdicts(t *testing.T) {
	s := startMailpit(t)
	ctx := context.Background()
	msg := notifier.Message{Event: "firing", Alert: hostile()}
	verdict := func(n *Notifier) (*notifier.Error, error) {
		_, err := n.Notify(ctx, msg)
		var ne *notifier.Error
		if !errors.As(err, &ne) {
			t.Fatalf("err = %v, want a verdict", err)
		}
		if strings.Contains(err.Error(), password) {
			t.Fatalf("the error leaks the password: %v", err)
		}
		return ne, err
	}
	// A temporary refusal (451) is retried; a permanent one (550) is not.
	s.chaos(t, `{"Recipient":{"ErrorCode":451,"Probability":100}}`)
	if ne, err := verdict(newNotifier(t, s.config())); !ne.Retry || !strings.Contains(err.Error(), "451") {
		t.Fatalf("451: %v retry=%v", err, ne.Retry)
	}
	s.chaos(t, `{"Recipient":{"ErrorCode":550,"Probability":100}}`)
	if ne, err := verdict(newNotifier(t, s.config())); ne.Retry || !strings.Contains(err.Error(), "550") {
		t.Fatalf("550: %v retry=%v", err, ne.Retry)
	}
	s.chaos(t, `{}`)
	// A wrong password is refused for good.
	c := s.config()
	c.Password = "wrong-password-000"
	if ne, err := verdict(newNotifier(t, c)); ne.Retry {
		t.Fatalf("wrong password retried: %v", err)
	}
	// A certificate nobody vouches for: no message, and it says why.
	c = s.config()
	c.CAFile = ""
	if _, err := verdict(newNotifier(t, c)); !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	// A server without STARTTLS gets no message under tls: starttls.
	plain := testsrv.StartMailpit(t, testsrv.MailpitOptions{})
	c = s.config()
	c.Smarthost, c.Username, c.Password = plain.SMTP, "", ""
	if ne, err := verdict(newNotifier(t, c)); ne.Retry || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("no STARTTLS: %v", err)
	}
	// Nothing listening: retried.
	c = s.config()
	c.Smarthost = "127.0.0.1:1"
	if ne, err := verdict(newNotifier(t, c)); !ne.Retry {
		t.Fatalf("refused connection: %v", err)
	}
	var l listed
	s.get(t, "/api/v1/messages", &l)
	if len(l.Messages) != 0 {
		t.Fatalf("refused deliveries reached the mailbox: %+v", l)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	c := Config{Smarthost: "nohost", From: "not an address", To: []string{"ok@x.test", "bad"}, TLS: "none", Username: "u", Password: "p",
		CAFile: "/nonexistent/ca.pem"}
	var p config.Problems
	c.Validate(&p, "notify.receivers[1].email")
	msg := p.Err("etlhub.yaml").Error()
	for _, want := range []string{".email.smarthost", ".email.from", ".email.to[1]", ".email.tls", ".email.ca_file"} {
		if !strings.Contains(msg, "notify.receivers[1]"+want) {
			t.Errorf("%q lacks %s", msg, want)
		}
	}
}
