// Package logship ships the importer's JSON log lines to a Sumo Logic HTTP
// Source: batched, gzipped, with X-Sumo-Category, X-Sumo-Name and
// X-Sumo-Host, from a bounded buffer that never blocks the import (a full
// buffer drops lines and counts them), retried with backoff.
package logship

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/retry"
)

// Config is one HTTP Source.
type Config struct {
	URL      config.Secret `yaml:"url"` // the source's collector URL holds its token
	Category string        `yaml:"category"`
	Name     string        `yaml:"name"`
	Host     string        `yaml:"host"`
	// Buffer is how many lines may wait; beyond it lines are dropped.
	Buffer int `yaml:"buffer"`
	// BatchLines and FlushEvery bound a batch.
	BatchLines int           `yaml:"batch_lines"`
	FlushEvery time.Duration `yaml:"flush_every"`
	Timeout    time.Duration `yaml:"timeout"`
	Attempts   int           `yaml:"attempts"`
}

func (c *Config) defaults() {
	if c.Buffer <= 0 {
		c.Buffer = 10000
	}
	if c.BatchLines <= 0 {
		c.BatchLines = 1000
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
}

// Stats count what the shipper did.
type Stats struct {
	Shipped, Dropped, FailedBatches int64
}

// Shipper is an io.Writer for slog.NewJSONHandler: each Write is one line.
type Shipper struct {
	cfg    Config
	lines  chan []byte
	client *http.Client
	policy retry.Policy
	done   chan struct{}
	quit   chan struct{}
	// sends is the context of every post; Close cancels it Timeout after
	// it is called, so a batch in flight finishes instead of being dropped.
	sends       context.Context
	cancelSends context.CancelFunc
	once        sync.Once

	shipped, dropped, failed atomic.Int64
}

// New starts a shipper; Close flushes and stops it.
func New(c Config) *Shipper {
	c.defaults()
	sends, cancel := context.WithCancel(context.Background())
	s := &Shipper{cfg: c, lines: make(chan []byte, c.Buffer), client: &http.Client{Timeout: c.Timeout},
		policy: retry.Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Jitter: 0.5},
		done:   make(chan struct{}), quit: make(chan struct{}), sends: sends, cancelSends: cancel}
	go s.run()
	return s
}

// Write queues one log line without blocking; a full buffer drops it.
func (s *Shipper) Write(p []byte) (int, error) {
	line := append([]byte(nil), bytes.TrimRight(p, "\n")...)
	select {
	case s.lines <- line:
	default:
		s.dropped.Add(1)
	}
	return len(p), nil
}

// Stats reads the counters.
func (s *Shipper) Stats() Stats {
	return Stats{Shipped: s.shipped.Load(), Dropped: s.dropped.Load(), FailedBatches: s.failed.Load()}
}

// Close sends what is buffered, the batch in flight included, and stops;
// whatever is not sent within the timeout is dropped and counted.
func (s *Shipper) Close() error {
	s.once.Do(func() {
		close(s.quit)
		deadline := time.AfterFunc(s.cfg.Timeout, s.cancelSends)
		<-s.done
		deadline.Stop()
		s.cancelSends()
	})
	return nil
}

func (s *Shipper) run() {
	defer close(s.done)
	tick := time.NewTicker(s.cfg.FlushEvery)
	defer tick.Stop()
	batch := make([][]byte, 0, s.cfg.BatchLines)
	flush := func() {
		if len(batch) > 0 {
			s.send(s.sends, batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case l := <-s.lines:
			batch = append(batch, l)
			if len(batch) >= s.cfg.BatchLines {
				flush()
			}
		case <-tick.C:
			flush()
		case <-s.quit:
			// Drain what is buffered; Close bounds this by the timeout.
			for {
				select {
				case l := <-s.lines:
					batch = append(batch, l)
					if len(batch) >= s.cfg.BatchLines {
						flush()
					}
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

// send posts one gzipped batch, retrying 429, 5xx and network errors.
func (s *Shipper) send(ctx context.Context, batch [][]byte) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(bytes.Join(batch, []byte("\n")))
	zw.Close()
	body := buf.Bytes()
	err := retry.Do(ctx, s.policy, s.cfg.Attempts, rand.Float64, func(err error) bool {
		return !strings.Contains(err.Error(), "refused by the source")
	}, func() error {
		req, err := http.NewRequestWithContext(ctx, "POST", s.cfg.URL.Value(), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Sumo-Category", s.cfg.Category)
		req.Header.Set("X-Sumo-Name", s.cfg.Name)
		req.Header.Set("X-Sumo-Host", s.cfg.Host)
		resp, err := s.client.Do(req)
		if err != nil {
			return fmt.Errorf("sumo http source: %v", strings.ReplaceAll(err.Error(), s.cfg.URL.Value(), "<source url>"))
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
			return nil
		case resp.StatusCode == 429 || resp.StatusCode >= 500:
			return fmt.Errorf("sumo http source: HTTP %d", resp.StatusCode)
		default:
			return fmt.Errorf("sumo http source: HTTP %d, refused by the source", resp.StatusCode)
		}
	})
	if err != nil {
		s.failed.Add(1)
		s.dropped.Add(int64(len(batch)))
		fmt.Fprintf(os.Stderr, "logship: a batch of %d lines was not shipped: %v\n", len(batch), err)
		return
	}
	s.shipped.Add(int64(len(batch)))
}
