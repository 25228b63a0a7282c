// Package sumologic is a client for the Sumo Logic Search Job API: create a
// search job, poll it until it is done gathering results, page its messages
// and records, and delete it afterwards, also after errors. It keeps the
// session cookies the API requires, stays under the request rate limit and a
// bound of concurrent jobs, and backs off on 429 rate.limit.exceeded.
package sumologic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/redact"
	"github.com/etlhub/etlhub/internal/retry"
	"golang.org/x/time/rate"
)

// Config is one Sumo Logic deployment.
type Config struct {
	// BaseURL is the deployment's API, e.g. https://api.us2.sumologic.com.
	BaseURL   string        `yaml:"base_url"`
	AccessID  config.Secret `yaml:"access_id"`
	AccessKey config.Secret `yaml:"access_key"`
	// RequestsPerSecond stays under Sumo's limit of 4 a second per user.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// MaxJobs bounds concurrent search jobs (Sumo allows 200 per org).
	MaxJobs int `yaml:"max_jobs"`
	// Timeout bounds one whole search, from creation to the last page.
	Timeout time.Duration `yaml:"timeout"`
	// PollInterval is how often a running job is polled.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Validate sets defaults and checks the section at key.
func (c *Config) Validate(p *config.Problems, key string) {
	if c.RequestsPerSecond == 0 {
		c.RequestsPerSecond = 4
	}
	if c.MaxJobs == 0 {
		c.MaxJobs = 4
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = 2 * time.Second
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.Add(key+".base_url", "%q is not an http(s) URL", c.BaseURL)
	}
	if c.AccessID == "" || c.AccessKey == "" {
		p.Add(key, "access_id and access_key are required")
	}
	if c.RequestsPerSecond < 0 || c.RequestsPerSecond > 4 {
		p.Add(key+".requests_per_second", "%v is outside 0..4 (Sumo's limit)", c.RequestsPerSecond)
	}
	if c.MaxJobs < 1 {
		p.Add(key+".max_jobs", "must be at least 1")
	}
}

// Client talks to one deployment.
type Client struct {
	cfg     Config
	http    *http.Client
	limiter *rate.Limiter
	jobs    chan struct{}
	backoff retry.Policy
	red     *redact.Scrubber // the access id and key, out of every error
}

// New builds a client from a validated config.
func New(c Config) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{cfg: c, http: &http.Client{Jar: jar, Timeout: 60 * time.Second},
		limiter: rate.NewLimiter(rate.Limit(c.RequestsPerSecond), 1),
		jobs:    make(chan struct{}, c.MaxJobs),
		backoff: retry.Policy{Base: time.Second, Max: 30 * time.Second, Factor: 2, Jitter: 0.5},
		red:     redact.New(redact.BasicSecrets(c.AccessID.Value(), c.AccessKey.Value())...)}
}

// Query is one search.
type Query struct {
	Query         string
	From, To      time.Time
	TimeZone      string
	ByReceiptTime bool
}

// Result is what a search found: raw messages and aggregate records, each a
// map of field to value.
type Result struct {
	Messages []map[string]string
	Records  []map[string]string
}

// Error is an answer of the API that is not success.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("sumo logic: HTTP %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("sumo logic: HTTP %d %s", e.Status, e.Message)
}

// ErrCancelled is a job Sumo cancelled before it was done.
var ErrCancelled = errors.New("sumo logic: the search job was cancelled")

const pageLimit = 10000

// Search runs q to completion and returns every message and record. Its
// errors hold no part of the access id or key, whatever Sumo answered.
func (c *Client) Search(ctx context.Context, q Query) (Result, error) {
	res, err := c.search(ctx, q)
	return res, c.red.Error(err)
}

func (c *Client) search(ctx context.Context, q Query) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	select {
	case c.jobs <- struct{}{}:
		defer func() { <-c.jobs }()
	case <-ctx.Done():
		return Result{}, fmt.Errorf("sumo logic: waiting for a job slot: %w", ctx.Err())
	}
	tz := q.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	body, _ := json.Marshal(map[string]any{"query": q.Query, "from": q.From.UTC().Format("2006-01-02T15:04:05"),
		"to": q.To.UTC().Format("2006-01-02T15:04:05"), "timeZone": tz, "byReceiptTime": q.ByReceiptTime})
	var created struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, "POST", "/api/v1/search/jobs", body, &created); err != nil {
		return Result{}, err
	}
	if created.ID == "" {
		return Result{}, errors.New("sumo logic: the created job has no id")
	}
	jobPath := "/api/v1/search/jobs/" + url.PathEscape(created.ID)
	defer func() {
		// Delete the job whatever happened; a fresh context, as ctx may be done.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer dcancel()
		_ = c.call(dctx, "DELETE", jobPath, nil, nil)
	}()
	var st struct {
		State        string `json:"state"`
		MessageCount int    `json:"messageCount"`
		RecordCount  int    `json:"recordCount"`
	}
	for {
		if err := c.call(ctx, "GET", jobPath, nil, &st); err != nil {
			return Result{}, err
		}
		switch st.State {
		case "DONE GATHERING RESULTS":
			var res Result
			var err error
			if res.Messages, err = c.pages(ctx, jobPath+"/messages", "messages", st.MessageCount); err != nil {
				return Result{}, err
			}
			if res.Records, err = c.pages(ctx, jobPath+"/records", "records", st.RecordCount); err != nil {
				return Result{}, err
			}
			return res, nil
		case "CANCELLED":
			return Result{}, ErrCancelled
		case "NOT STARTED", "GATHERING RESULTS", "FORCE PAUSED", "GATHERING RESULTS FROM SUBQUERIES":
		default:
			return Result{}, fmt.Errorf("sumo logic: unknown job state %q", st.State)
		}
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("sumo logic: search not done within %v: %w", c.cfg.Timeout, ctx.Err())
		case <-time.After(c.cfg.PollInterval):
		}
	}
}

// pages reads total items of kind ("messages" or "records") a page at a time.
func (c *Client) pages(ctx context.Context, path, kind string, total int) ([]map[string]string, error) {
	var out []map[string]string
	for offset := 0; offset < total; offset += pageLimit {
		var page map[string]json.RawMessage
		if err := c.call(ctx, "GET", fmt.Sprintf("%s?offset=%d&limit=%d", path, offset, pageLimit), nil, &page); err != nil {
			return nil, err
		}
		var items []struct {
			Map map[string]string `json:"map"`
		}
		if err := json.Unmarshal(page[kind], &items); err != nil {
			return nil, fmt.Errorf("sumo logic: %s page at offset %d is not a list: %v", kind, offset, err)
		}
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			out = append(out, it.Map)
		}
	}
	return out, nil
}

// call makes one request under the rate limit, retrying 429s and 5xx with
// backoff, and decodes a JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	for attempt := 1; ; attempt++ {
		if err := c.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("sumo logic: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.cfg.BaseURL, "/")+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.SetBasicAuth(c.cfg.AccessID.Value(), c.cfg.AccessKey.Value())
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("sumo logic: %s %s: %w", method, path, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("sumo logic: read %s: %w", path, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if out == nil || len(bytes.TrimSpace(data)) == 0 && method == "DELETE" {
				return nil
			}
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("sumo logic: %s %s answered something that is not JSON: %q", method, path, c.red.Cut(string(data[:min(len(data), 4096)]), 80))
			}
			return nil
		}
		apiErr := &Error{Status: resp.StatusCode}
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) == nil {
			apiErr.Code, apiErr.Message = c.red.Cut(redact.Printable(e.Code), 80), c.red.Cut(redact.Printable(e.Message), 1024)
		} else {
			apiErr.Message = fmt.Sprintf("%q", c.red.Cut(string(data[:min(len(data), 4096)]), 80))
		}
		if (resp.StatusCode == 429 || resp.StatusCode >= 500) && attempt < 6 {
			wait := c.backoff.Delay(attempt, rand.Float64())
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (then %v)", apiErr, ctx.Err())
			case <-time.After(wait):
			}
			continue
		}
		return apiErr
	}
}
