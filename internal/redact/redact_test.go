package redact

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

const tok = "tok_9f8e7d6c5b4a39281706"

func TestScrubsSecretsTheirFormsAndParts(t *testing.T) {
	s := New(tok, "short", "abc")
	for name, in := range map[string]string{
		"whole":          "invalid token " + tok + " for you",
		"query escaped":  "next=" + url.QueryEscape(tok+"&x"),
		"base64":         "echo " + base64.StdEncoding.EncodeToString([]byte(tok)),
		"the first half": "invalid token " + tok[:11] + "...",
		"the last part":  "..." + tok[len(tok)-9:] + " was refused",
		"upper case":     "INVALID TOKEN " + strings.ToUpper(tok),
		"a short secret": "password short refused",
	} {
		out := s.String(in)
		for _, part := range []string{tok[:8], tok[len(tok)-8:], strings.ToUpper(tok[:8]), "short", base64.StdEncoding.EncodeToString([]byte(tok))[:8]} {
			if strings.Contains(out, part) {
				t.Errorf("%s: %q still shows %q", name, out, part)
			}
		}
		if !strings.Contains(out, Mark) {
			t.Errorf("%s: nothing marked in %q", name, out)
		}
	}
	// Text without secrets, and secrets too short to scrub safely, are kept.
	if out := s.String("abc: nothing to hide here"); out != "abc: nothing to hide here" {
		t.Errorf("changed clean text: %q", out)
	}
}

func TestBasicAuthAndBearerHeaderParts(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("sumo-id:sumo-secret-key-123"))
	s := New(HeaderSecrets(basic)...)
	for _, in := range []string{"bad key sumo-secret-key-123", "user sumo-id:sumo-secret-key-123", "header " + basic} {
		if out := s.String(in); strings.Contains(out, "secret-key") || strings.Contains(out, basic[6:]) {
			t.Errorf("%q -> %q", in, out)
		}
	}
	s = New(HeaderSecrets("Bearer " + tok)...)
	if out := s.String("token " + tok); strings.Contains(out, tok[:8]) {
		t.Errorf("bearer credential kept: %q", out)
	}
	// The scheme is not a secret: ordinary text about it stays readable.
	if out := s.String("Bearer token required"); out != "Bearer token required" {
		t.Errorf("scrubbed the scheme: %q", out)
	}
}

func TestURLSecrets(t *testing.T) {
	u := "https://bob:hunter2hunter2@etl.example/runs?tenant=dade&api_key=KEY0123456789&sig=abcdef123456"
	s := New(URLSecrets(u)...)
	out := s.String(`Get "` + u + `": dial tcp: refused`)
	for _, v := range []string{"hunter2hunter2", "KEY0123456789", "abcdef123456"} {
		if strings.Contains(out, v) {
			t.Errorf("%s kept in %q", v, out)
		}
	}
	if !strings.Contains(out, "tenant=dade") {
		t.Errorf("a plain query value was scrubbed: %q", out)
	}
}

func TestCutAfterScrubOnACharacter(t *testing.T) {
	s := New(tok)
	in := strings.Repeat("é", 95) + " " + tok + " tail"
	out := s.Cut(in, 200)
	if len(out) > 203 || strings.Contains(out, tok[:8]) || !strings.HasSuffix(out, "...") {
		t.Fatalf("cut %q", out)
	}
	if strings.ToValidUTF8(out, "") != out {
		t.Fatalf("cut inside a character: %q", out)
	}
}

func TestSecretURLKeepsTheHost(t *testing.T) {
	s := New(SecretURL("https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX")...)
	out := s.String(`Post "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX": 404; see https://api.slack.com/`)
	if strings.Contains(out, "SECRET") || strings.Contains(out, "T000/B000") || !strings.Contains(out, "https://api.slack.com/") {
		t.Fatalf("%q", out)
	}
}

// BenchmarkScrub is the cost of scrubbing a collector's error snippet and a
// 64 KiB error page with three configured secrets.
func BenchmarkScrub(b *testing.B) {
	s := New(append(HeaderSecrets("Bearer "+tok), URLSecrets("https://u:p4ssw0rd-long@x.example/?api_key=KEY0123456789")...)...)
	for _, n := range []int{200, 64 << 10} {
		text := strings.Repeat("upstream said no; ", n/18+1)[:n]
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for i := 0; i < b.N; i++ {
				s.Cut(text, 200)
			}
		})
	}
}

// A secret that starts just before the cut is scrubbed from what is kept.
func TestCutNearTheBoundary(t *testing.T) {
	s := New(tok)
	for start := 180; start <= 205; start++ {
		in := strings.Repeat("x", start) + tok + strings.Repeat("y", 5000)
		out := s.Cut(in, 200)
		for i := 0; i+8 <= len(tok); i++ {
			if strings.Contains(out, tok[i:i+8]) {
				t.Fatalf("start %d: %q kept in %q", start, tok[i:i+8], out)
			}
		}
	}
}
