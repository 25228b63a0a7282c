// Package email sends alert transitions by SMTP: STARTTLS (or TLS from the
// first byte), authentication, and a text and an HTML body in one
// multipart/alternative message. A resolve replies to its firing's message,
// so mail clients thread them.
package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
)

// TLS modes.
const (
	// TLSStartTLS upgrades the connection with STARTTLS and refuses a server
	// that does not offer it (port 587). The default.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit = "implicit"
	// TLSNone sends in the clear: only for a relay on the same host, and
	// never with a password.
	TLSNone = "none"
)

// Config is one email receiver.
type Config struct {
	// Smarthost is the SMTP server, host:port.
	Smarthost string   `yaml:"smarthost"`
	From      string   `yaml:"from"`
	To        []string `yaml:"to"`
	// Username and Password authenticate (AUTH PLAIN, only over TLS).
	Username string        `yaml:"username"`
	Password config.Secret `yaml:"password"`
	// TLS is starttls (default), implicit or none.
	TLS string `yaml:"tls"`
	// CAFile adds the certificates that may sign the server's (a private CA).
	CAFile string `yaml:"ca_file"`
	// Hello is the name given in EHLO (default: this host's name).
	Hello   string        `yaml:"hello"`
	Timeout time.Duration `yaml:"timeout"`
	// SubjectPrefix starts every subject (default "[etlhub]").
	SubjectPrefix string `yaml:"subject_prefix"`

	roots *x509.CertPool
}

// Validate sets defaults and checks the section at key.
func (c *Config) Validate(p *config.Problems, key string) {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = "[etlhub]"
	}
	if c.Hello == "" {
		c.Hello, _ = os.Hostname()
		if c.Hello == "" {
			c.Hello = "localhost"
		}
	}
	if host, port, err := net.SplitHostPort(c.Smarthost); err != nil || host == "" || port == "" {
		p.Add(key+".smarthost", "%q is not host:port", c.Smarthost)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		p.Add(key+".from", "%q is not an address: %v", c.From, err)
	}
	if len(c.To) == 0 {
		p.Add(key+".to", "at least one address is required")
	}
	for i, a := range c.To {
		if _, err := mail.ParseAddress(a); err != nil {
			p.Add(fmt.Sprintf("%s.to[%d]", key, i), "%q is not an address: %v", a, err)
		}
	}
	switch c.TLS {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if c.Password != "" {
			p.Add(key+".tls", "none would send the password in the clear; use starttls or implicit")
		}
	default:
		p.Add(key+".tls", "%q is not starttls, implicit or none", c.TLS)
	}
	if (c.Username == "") != (c.Password == "") {
		p.Add(key+".password", "username and password go together")
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		switch {
		case err != nil:
			p.Add(key+".ca_file", "%v", err)
		default:
			c.roots = x509.NewCertPool()
			if !c.roots.AppendCertsFromPEM(pem) {
				p.Add(key+".ca_file", "%s holds no PEM certificate", c.CAFile)
			}
		}
	}
}

// Notifier is an email receiver.
type Notifier struct {
	cfg Config
	now func() time.Time
}

// New builds a receiver from a validated config.
func New(c Config) *Notifier { return &Notifier{cfg: c, now: time.Now} }

// Notify sends one message to every recipient and returns its Message-ID.
// Transient failures (network, TLS handshake, 4xx replies) are retried;
// 5xx replies (a refused recipient or sender) are not.
func (n *Notifier) Notify(ctx context.Context, m notifier.Message) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	id, msg, err := n.Compose(m)
	if err != nil {
		return "", &notifier.Error{Err: fmt.Errorf("email: %w", err)}
	}
	if err := n.send(ctx, msg); err != nil {
		return "", notifier.Scrub(classify(fmt.Errorf("email via %s: %w", n.cfg.Smarthost, err)), n.cfg.Password.Value())
	}
	return id, nil
}

func classify(err error) *notifier.Error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &notifier.Error{Retry: te.Code < 500, Err: err}
	}
	return notifier.Transport(err)
}

func (n *Notifier) send(ctx context.Context, msg []byte) error {
	host, _, _ := net.SplitHostPort(n.cfg.Smarthost)
	tc := &tls.Config{ServerName: host, RootCAs: n.cfg.roots, MinVersion: tls.VersionTLS12}
	d := &net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", n.cfg.Smarthost)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if n.cfg.TLS == TLSImplicit {
		conn = tls.Client(conn, tc)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(n.cfg.Hello); err != nil {
		return err
	}
	if n.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return &textproto.Error{Code: 554, Msg: "the server does not offer STARTTLS (tls: starttls requires it)"}
		}
		if err := c.StartTLS(tc); err != nil {
			return err
		}
	}
	if n.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", n.cfg.Username, n.cfg.Password.Value(), host)); err != nil {
			return err
		}
	}
	from, _ := mail.ParseAddress(n.cfg.From)
	if err := c.Mail(from.Address); err != nil {
		return err
	}
	for _, a := range n.cfg.To {
		to, _ := mail.ParseAddress(a)
		if err := c.Rcpt(to.Address); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// Subject is the message's subject line: status, severity and what.
func (n *Notifier) Subject(m notifier.Message) string {
	what := m.Alert.Summary
	if m.Grouped() && len(m.Group) > 1 {
		what = m.GroupSummary()
	}
	return oneLine(fmt.Sprintf("%s %s %s: %s", n.cfg.SubjectPrefix, strings.ToUpper(string(m.Event)), m.Alert.Severity, what), 200)
}

// oneLine removes line breaks (no header injection) and cuts to n bytes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r < 0x20 {
			return ' '
		}
		return r
	}, s)
	return notifier.Clip(s, n)
}

// Compose builds the message (headers, text and HTML) and its Message-ID.
func (n *Notifier) Compose(m notifier.Message) (string, []byte, error) {
	var rnd [12]byte
	rand.Read(rnd[:])
	from, _ := mail.ParseAddress(n.cfg.From)
	domain := from.Address[strings.LastIndex(from.Address, "@")+1:]
	id := "<" + hex.EncodeToString(rnd[:]) + "." + m.Alert.ID + "@" + domain + ">"
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from.String())
	var to []string
	for _, a := range n.cfg.To {
		x, _ := mail.ParseAddress(a)
		to = append(to, x.String())
	}
	h("To", strings.Join(to, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", n.Subject(m)))
	h("Date", n.now().UTC().Format(time.RFC1123Z))
	h("Message-ID", id)
	if m.Ref != "" && strings.HasPrefix(m.Ref, "<") && !strings.ContainsAny(m.Ref, "\r\n") {
		h("In-Reply-To", m.Ref)
		h("References", m.Ref)
	}
	h("MIME-Version", "1.0")
	h("X-Etlhub-Status", string(m.Event))
	mw := multipart.NewWriter(&b)
	h("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{{"text/plain", Text(m)}, {"text/html", HTML(m)}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ctype + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return "", nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		qp.Write([]byte(part.body))
		qp.Close()
	}
	if err := mw.Close(); err != nil {
		return "", nil, err
	}
	return id, b.Bytes(), nil
}

func alertsOf(m notifier.Message) []model.Alert {
	if len(m.Group) > 0 {
		return m.Group
	}
	return []model.Alert{m.Alert}
}

// facts are an alert's labelled details, sorted.
func facts(a model.Alert) [][2]string {
	d := notifier.Details(a)
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k, fmt.Sprint(d[k])})
	}
	return out
}

// Text is the plain-text body.
func Text(m notifier.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n\n", strings.ToUpper(string(m.Event)), m.GroupSummary())
	for _, a := range alertsOf(m) {
		fmt.Fprintf(&b, "%s [%s] %s\n", a.Rule, a.Severity, a.Summary)
		for _, f := range facts(a) {
			fmt.Fprintf(&b, "  %s: %s\n", f[0], f[1])
		}
		if a.AckedBy != "" {
			fmt.Fprintf(&b, "  acknowledged by: %s\n", a.AckedBy)
		}
		b.WriteString("\n")
	}
	if m.DashboardURL != "" {
		fmt.Fprintf(&b, "Dashboard: %s\n", m.DashboardURL)
	}
	return b.String()
}

var page = template.Must(template.New("mail").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body style="font-family: sans-serif">
<h2 style="color: {{if .Resolved}}#1a7f37{{else}}#b42318{{end}}">{{.Title}}</h2>
{{range .Alerts}}<h3>{{.Rule}} <small>({{.Severity}})</small></h3>
<p>{{.Summary}}</p>
<table cellpadding="4" style="border-collapse: collapse">
{{range .Facts}}<tr><th align="left">{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{end}}{{if .URL}}<p><a href="{{.URL}}">Open the dashboard</a></p>{{end}}
</body></html>
`))

// HTML is the HTML body; everything from outside is escaped.
func HTML(m notifier.Message) string {
	type al struct {
		Rule, Severity, Summary string
		Facts                   [][2]string
	}
	data := struct {
		Title, URL string
		Resolved   bool
		Alerts     []al
	}{Title: strings.ToUpper(string(m.Event)) + ": " + m.GroupSummary(), Resolved: m.Event == model.TransitionResolved}
	if strings.HasPrefix(m.DashboardURL, "https://") || strings.HasPrefix(m.DashboardURL, "http://") {
		data.URL = m.DashboardURL
	}
	for _, a := range alertsOf(m) {
		f := facts(a)
		if a.AckedBy != "" {
			f = append(f, [2]string{"acknowledged by", a.AckedBy})
		}
		data.Alerts = append(data.Alerts, al{Rule: a.Rule, Severity: string(a.Severity), Summary: a.Summary, Facts: f})
	}
	var b bytes.Buffer
	if err := page.Execute(&b, data); err != nil {
		return template.HTMLEscapeString(Text(m))
	}
	return b.String()
}
