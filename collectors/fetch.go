package collectors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/redact"
)

// fetcher makes one bounded HTTP request to a source.
type fetcher struct {
	cfg    SourceConfig
	client *http.Client
	red    *redact.Scrubber // the source's secrets, scrubbed from every error
}

// maxRedirects bounds the redirects a source may send a collector through.
const maxRedirects = 5

func newFetcher(c SourceConfig) *fetcher {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: c.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	f := &fetcher{cfg: c, red: c.scrubber()}
	f.client = &http.Client{Transport: tr, Timeout: c.Timeout, CheckRedirect: f.checkRedirect}
	return f
}

// checkRedirect follows a few redirects on the source's own host only: the
// configured headers (credentials) must not travel to another host.
func (f *fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if first := via[0].URL; req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		return fmt.Errorf("refused a redirect to another host (%s://%s): credentials stay with the source",
			req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// HTTPError is a source's non-2xx answer.
type HTTPError struct {
	Status int
	Body   string // the first bytes, for the reason
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// get fetches url and returns the body, at most MaxBodyBytes of it.
func (f *fetcher) get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, f.cfg.Method, url, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "etlhub-collector")
	for k, v := range f.cfg.Headers {
		req.Header.Set(k, v.Value())
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.red.Error(describeNetErr(err, f.cfg.Timeout))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, f.red.Error(fmt.Errorf("read response: %w", describeNetErr(err, f.cfg.Timeout)))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Scrubbed before the cut, so no part of an echoed secret survives it.
		return nil, &HTTPError{Status: resp.StatusCode, Body: f.red.Cut(redact.Printable(strings.TrimSpace(string(body[:min(len(body), 64<<10)]))), 200)}
	}
	if int64(len(body)) > f.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("response body exceeds the %d-byte limit (max_body_bytes)", f.cfg.MaxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("empty response body")
	}
	return body, nil
}

func describeNetErr(err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return fmt.Errorf("no answer within %v (timeout)", timeout)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
