package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/etlhub/etlhub/internal/config"
)

// The static keys the tests sign with; none of them may show in an error.
const (
	testKeyID  = "AKIAETLHUBTEST7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYetlhubSECRET"
	testRegion = "us-east-1"
)

// testSource is a source with static keys against endpoint, retrying fast.
func testSource(endpoint string) Source {
	s := Source{Name: "aws-test", Region: testRegion, Endpoint: endpoint, Timeout: 5 * time.Second,
		Credentials: &Credentials{AccessKeyID: config.Secret(testKeyID), SecretAccessKey: config.Secret(testSecret)},
		Retry:       Retry{MaxAttempts: 3, MaxBackoff: 20 * time.Millisecond}}
	var p config.Problems
	ValidateSource(&p, "src", &s.Region, &s.Endpoint, s.Credentials, &s.Retry)
	if p.Len() > 0 {
		panic(fmt.Sprint(p))
	}
	return s
}

// fakeAWS is a local AWS endpoint: it checks every request's SigV4
// signature (recomputed with the SDK's signer from the secret key, over
// the headers the client signed) for the service's signing name, and hands
// valid ones to handle. Problems are test failures.
type fakeAWS struct {
	t       *testing.T
	service string // the signing name in the credential scope: states, batch, monitoring
	srv     *httptest.Server
	mu      sync.Mutex
	calls   []string
	handle  func(w http.ResponseWriter, r *http.Request, op string, body []byte)
	opOf    func(r *http.Request) string
}

func newFakeAWS(t *testing.T, service string, opOf func(*http.Request) string,
	handle func(w http.ResponseWriter, r *http.Request, op string, body []byte)) *fakeAWS {
	f := &fakeAWS{t: t, service: service, handle: handle, opOf: opOf}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("reading the request: %v", err)
		return
	}
	op := f.opOf(r)
	if err := checkSigV4(r, body, f.service, testRegion); err != nil {
		f.t.Errorf("%s: %v", op, err)
		w.WriteHeader(403)
		io.WriteString(w, `{"__type":"InvalidSignatureException","message":"signature"}`)
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, op)
	f.mu.Unlock()
	f.handle(w, r, op, body)
}

// Calls is the operations served, in order.
func (f *fakeAWS) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeAWS) count(op string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == op {
			n++
		}
	}
	return n
}

// checkSigV4 verifies an AWS Signature Version 4 Authorization header:
// the algorithm, the credential scope (key, region, service) and the
// signature itself, signed again here over the same headers and payload.
func checkSigV4(r *http.Request, body []byte, service, region string) error {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("not signed with AWS4-HMAC-SHA256: Authorization %q", auth)
	}
	parts := map[string]string{}
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		parts[k] = v
	}
	scope := strings.Split(parts["Credential"], "/")
	if len(scope) != 5 || scope[0] != testKeyID || scope[2] != region || scope[3] != service || scope[4] != "aws4_request" {
		return fmt.Errorf("credential scope %q, want %s/DATE/%s/%s/aws4_request", parts["Credential"], testKeyID, region, service)
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("X-Amz-Date %q: %v", r.Header.Get("X-Amz-Date"), err)
	}
	if scope[1] != at.Format("20060102") {
		return fmt.Errorf("credential date %s is not X-Amz-Date's", scope[1])
	}
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range strings.Split(parts["SignedHeaders"], ";") {
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), sdk.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
		again, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		return err
	}
	if want := again.Header.Get("Authorization"); want != auth {
		return fmt.Errorf("signature does not verify:\n got %s\nwant %s", auth, want)
	}
	return nil
}

// awsError answers an AWS JSON error (JSON 1.0 and REST-JSON alike).
func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-ErrorType", code)
	body := fmt.Sprintf(`{"__type":%q,"message":%q}`, code, msg)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// assertNoSecret fails when text shows any part of the test keys.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{testKeyID, testSecret} {
		for i := 0; i+8 <= len(s); i += 4 {
			if strings.Contains(text, s[i:i+8]) {
				t.Errorf("%s shows part of a key (%q): %s", what, s[i:i+8], text)
				return
			}
		}
	}
}
