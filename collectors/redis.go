package collectors

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/redis/go-redis/v9"
)

// redisProbe measures a Redis server: PING's round trip, and from INFO the
// memory used against maxmemory, clients against maxclients, blocked
// clients, connections refused and keys evicted since the previous probe,
// and operations per second. It keeps one connection of its own, as a
// monitoring agent does, so a server that refuses new clients (maxclients)
// still answers the probe and shows the refusals.
type redisProbe struct {
	cfg     SourceConfig
	subject string
	rdb     *redis.Client
	mu      sync.Mutex
	prev    map[string]float64 // the previous probe's counters
	prevAt  time.Time
}

func newRedisProbe(c SourceConfig) (Collector, error) {
	r := c.Redis
	o := &redis.Options{Addr: r.Addr, Username: r.Username, Password: r.Password.Value(), DB: r.DB,
		DialTimeout: c.Timeout, ReadTimeout: c.Timeout, WriteTimeout: c.Timeout, ContextTimeoutEnabled: true,
		MaxRetries: -1, PoolSize: 1, MaxIdleConns: 1, DisableIdentity: true, Protocol: 2, ClientName: "etlhub-probe"}
	if r.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &redisProbe{cfg: c, subject: c.subject("redis:" + c.Name), rdb: redis.NewClient(o)}, nil
}

// Close drops the probe's connection.
func (p *redisProbe) Close() error { return p.rdb.Close() }

func (p *redisProbe) Collect(ctx context.Context, now time.Time) (Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.cfg.measurement(now, model.KindRedis, p.subject)
	start := time.Now()
	if err := p.rdb.Ping(ctx).Err(); err != nil {
		return down(m, fmt.Errorf("PING: %w", describeNetErr(err, p.cfg.Timeout)))
	}
	m.Values[model.ValueLatencyMs] = millis(time.Since(start))
	text, err := p.rdb.Info(ctx, "memory", "clients", "stats").Result()
	if err != nil {
		return down(m, fmt.Errorf("INFO: %w", describeNetErr(err, p.cfg.Timeout)))
	}
	info := parseRedisInfo(text)
	set := func(name, field string) {
		if v, ok := info[field]; ok {
			m.Values[name] = v
		}
	}
	set(model.ValueMemoryUsedBytes, "used_memory")
	set(model.ValueConnections, "connected_clients")
	set(model.ValueClientsBlocked, "blocked_clients")
	set(model.ValueOpsPerS, "instantaneous_ops_per_sec")
	if mx, ok := info["maxmemory"]; ok && mx > 0 {
		m.Values[model.ValueMemoryMaxBytes] = mx
		m.Values[model.ValueMemoryUsedRatio] = info["used_memory"] / mx
	}
	maxClients, ok := info["maxclients"]
	if !ok { // INFO has no maxclients before Redis 7
		if cfg, err := p.rdb.ConfigGet(ctx, "maxclients").Result(); err == nil {
			maxClients, _ = strconv.ParseFloat(cfg["maxclients"], 64)
		}
	}
	if maxClients > 0 {
		m.Values[model.ValueConnectionsUsedRatio] = info["connected_clients"] / maxClients
	}
	// Counters become what happened since the previous probe (a restart,
	// which resets them, counts from zero).
	if p.prev != nil {
		delta := func(field string) (float64, bool) {
			cur, ok := info[field]
			old, had := p.prev[field]
			if !ok || !had {
				return 0, false
			}
			if cur < old {
				return cur, true
			}
			return cur - old, true
		}
		if d, ok := delta("rejected_connections"); ok {
			m.Values[model.ValueRejectedConnections] = d
		}
		if d, ok := delta("evicted_keys"); ok {
			if secs := now.Sub(p.prevAt).Seconds(); secs > 0 {
				m.Values[model.ValueEvictionsPerS] = d / secs
			}
		}
	}
	p.prev, p.prevAt = info, now
	return Result{Measurements: []model.Measurement{m}}, nil
}

// parseRedisInfo reads INFO's "field:number" lines (others are skipped).
func parseRedisInfo(text string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[k] = f
		}
	}
	return out
}
