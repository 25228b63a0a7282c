package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/lifecycle"
	"github.com/etlhub/etlhub/store"
	"github.com/prometheus/client_golang/prometheus"
)

// ClusterConfig is the cluster section: how replicas on one PostgreSQL
// store elect their leader. SQLite is one hub, always the leader: the
// section does not apply there.
type ClusterConfig struct {
	// LeaseTTL is how long the leader's lease lasts without a renewal: after
	// a leader dies, another replica takes over within about this long.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// LeaseRenew is how often the leader renews (default lease_ttl/3) and
	// how often a follower tries to take an expired lease.
	LeaseRenew time.Duration `yaml:"lease_renew"`
	// Advertise is this replica's address as others reach it, shown in
	// GET /api/v1/cluster (default: listen).
	Advertise string `yaml:"advertise"`
	// ReplicaID names this replica (default: host name, process id and a
	// random suffix; a restarted process is a new replica).
	ReplicaID string `yaml:"replica_id"`
}

// Validate sets defaults and checks the section.
func (c *ClusterConfig) Validate(p *config.Problems, key string) {
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.LeaseTTL < 3*time.Second || c.LeaseTTL > 5*time.Minute {
		p.Add(key+".lease_ttl", "%v is outside 3s..5m", c.LeaseTTL)
		return
	}
	if c.LeaseRenew == 0 {
		c.LeaseRenew = c.LeaseTTL / 3
	}
	if c.LeaseRenew < 500*time.Millisecond || c.LeaseRenew > c.LeaseTTL/2 {
		p.Add(key+".lease_renew", "%v is outside 500ms..lease_ttl/2 (%v): the leader must get at least two tries to renew before its lease expires",
			c.LeaseRenew, c.LeaseTTL/2)
	}
	if len(c.ReplicaID) > 200 {
		p.Add(key+".replica_id", "is longer than 200 characters")
	}
}

// margin is how long before its lease expires a leader that could not renew
// stops leading: its writes are refused from then on, and its singletons
// stop, while the lease is still its own.
func (c *ClusterConfig) margin() time.Duration { return max(c.LeaseRenew/2, 250*time.Millisecond) }

// leaderLease names the one lease.
const leaderLease = "leader"

func newReplicaID() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// cluster is the leadership of one replica. The lease service (run) takes or
// renews the leader's lease every lease_renew; while this replica holds it,
// the singletons (built afresh for each term) run and the store's fence
// carries the lease's token; when it loses the lease, or cannot renew it
// before the margin, the fence goes first (every leader's write fails from
// then on), then the singletons stop. A follower keeps its rules' views
// current from the store (follow).
type cluster struct {
	cfg        ClusterConfig
	st         *store.Store
	loop       *alerting.Loop
	log        *slog.Logger
	now        func() time.Time
	tick       time.Duration
	self       store.Replica
	singletons func() []lifecycle.Service
	gauge      prometheus.Gauge
	// renewed is when the last successful renewal was sent (monotonic).
	renewed time.Time

	leader atomic.Bool
	// leaderAddr is the leader's advertised address, as a follower last
	// read it (requests that change the alert lifecycle go there).
	leaderAddr atomic.Value
	mu         sync.Mutex
	lease      store.Lease
	group      *lifecycle.Group
	cancel     context.CancelFunc
	svc        []*lifecycle.Loop
}

// newCluster takes its section (cluster), this replica (self: its id, and
// its address and version to advertise) and the rules' tick.
func newCluster(cc ClusterConfig, self store.Replica, tick time.Duration, st *store.Store, loop *alerting.Loop, log *slog.Logger,
	now func() time.Time, gauge prometheus.Gauge, singletons func() []lifecycle.Service) *cluster {
	if self.ID == "" {
		self.ID = newReplicaID()
	}
	if cc.Advertise != "" {
		self.Address = cc.Advertise
	}
	self.StartedAt = now()
	c := &cluster{cfg: cc, st: st, loop: loop, log: log.With("replica", self.ID), now: now, tick: tick,
		self: self, singletons: singletons, gauge: gauge}
	c.svc = []*lifecycle.Loop{lifecycle.NewLoop("lease", c.run), lifecycle.NewLoop("follower", c.follow)}
	return c
}

// Name implements lifecycle.Service.
func (c *cluster) Name() string { return "cluster" }

// Start implements lifecycle.Service.
func (c *cluster) Start(ctx context.Context) error {
	c.st.EnableFencing()
	for _, s := range c.svc {
		if err := s.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Stop implements lifecycle.Service: the singletons stop and the lease is
// released, so another replica takes over at once.
func (c *cluster) Stop() {
	for i := len(c.svc) - 1; i >= 0; i-- {
		c.svc[i].Stop()
	}
}

// Leader says whether this replica leads now.
func (c *cluster) Leader() bool { return c.leader.Load() }

func (c *cluster) run(ctx context.Context) {
	defer c.stepDown("shutting down", true)
	for {
		wait := c.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// pass takes or renews the lease once and says when to try next.
func (c *cluster) pass(ctx context.Context) time.Duration {
	renew := c.cfg.LeaseRenew
	sent := time.Now()
	timeout := renew
	leading := c.leader.Load()
	deadline := c.renewed.Add(c.cfg.LeaseTTL - c.cfg.margin())
	if leading {
		timeout = min(timeout, time.Until(deadline))
	}
	next := renew
	renewed := false
	if timeout > 0 {
		actx, cancel := context.WithTimeout(ctx, timeout)
		l, ok, err := c.st.AcquireLease(actx, leaderLease, c.self.ID, c.now(), c.cfg.LeaseTTL)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return 0
		case err != nil:
			c.log.Warn("renewing the leader's lease failed", "error", err, "leader", leading)
			if leading {
				// Try again soon, but stop leading in time.
				next = min(renew/4, max(time.Until(deadline), 0))
			}
		case ok:
			c.renewed, renewed = sent, true
			if !leading || l.Token != c.current().Token {
				c.lead(ctx, l)
			} else {
				c.mu.Lock()
				c.lease = l
				c.mu.Unlock()
			}
		default:
			if leading {
				c.stepDown("another replica holds the lease", false)
			}
			// Try again as soon as the holder's lease expires.
			if cur, found, err := c.st.ReadLease(ctx, leaderLease); err == nil && found {
				if d := cur.ExpiresAt.Sub(c.now()); d > 0 && d < renew {
					next = d + 20*time.Millisecond
				}
				c.noteLeader(ctx, cur.Holder)
			}
		}
	}
	if c.leader.Load() && !renewed && !time.Now().Before(deadline) {
		c.stepDown(fmt.Sprintf("could not renew the lease within %v", c.cfg.LeaseTTL-c.cfg.margin()), false)
	}
	hctx, cancel := context.WithTimeout(ctx, renew)
	self := c.self
	self.LastSeen = c.now()
	if err := c.st.SeeReplica(hctx, self, self.LastSeen.Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
		c.log.Debug("recording this replica failed", "error", err)
	}
	cancel()
	return max(next, 10*time.Millisecond)
}

// noteLeader remembers where the leader is.
func (c *cluster) noteLeader(ctx context.Context, holder string) {
	reps, err := c.st.Replicas(ctx, c.now().Add(-10*c.cfg.LeaseTTL))
	if err != nil {
		return
	}
	for _, r := range reps {
		if r.ID == holder {
			c.leaderAddr.Store(r.Address)
			return
		}
	}
}

// forwardedHeader marks a request a follower passed to the leader (it is
// not passed on again).
const forwardedHeader = "X-Etlhub-Forwarded-By"

// leaderOnly says whether a request changes the alert lifecycle, which only
// the leader's rules hold: acknowledgements, PagerDuty's webhooks and
// alerts posted in Alertmanager's API.
func leaderOnly(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	p := r.URL.Path
	return p == "/api/v1/webhooks/pagerduty" || p == "/api/v2/alerts" ||
		(strings.HasPrefix(p, "/api/v1/alerts/") && strings.HasSuffix(p, "/ack"))
}

// forward passes the leader's requests from a follower to the leader (at
// its cluster.advertise address); with no leader known, or a leader that
// does not answer, the client is told to retry (503, Retry-After).
func (c *cluster) forward(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !leaderOnly(r) || c.Leader() {
			next.ServeHTTP(w, r)
			return
		}
		addr, _ := c.leaderAddr.Load().(string)
		if addr == "" || r.Header.Get(forwardedHeader) != "" {
			w.Header().Set("Retry-After", fmt.Sprint(int(c.cfg.LeaseTTL.Seconds())))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"store_error","message":"no leader is known yet (a failover?); retry"}}`))
			return
		}
		target := &url.URL{Scheme: "http", Host: addr}
		p := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = r.Host
				pr.Out.Header.Set(forwardedHeader, c.self.ID)
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				c.log.Warn("passing a request to the leader failed", "leader", addr, "error", err)
				w.Header().Set("Retry-After", fmt.Sprint(int(c.cfg.LeaseRenew.Seconds())+1))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"error":{"code":"store_error","message":"the leader did not answer; retry"}}`))
			},
		}
		p.ServeHTTP(w, r)
	})
}

func (c *cluster) current() store.Lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lease
}

// lead begins a term: fence, alert state from the store, singletons.
func (c *cluster) lead(ctx context.Context, l store.Lease) {
	if c.leader.Load() {
		c.stepDown("a new term", false)
	}
	c.st.SetFence(&store.Fence{Name: l.Name, Holder: l.Holder, Token: l.Token})
	tctx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL)
	err := c.loop.TakeOver(tctx, c.now())
	cancel()
	if err != nil {
		c.st.SetFence(nil)
		c.log.Error("taking over as the leader failed; will try again", "error", err)
		return
	}
	gctx, gcancel := context.WithCancel(ctx)
	g := &lifecycle.Group{Log: c.log}
	g.Add(c.singletons()...)
	if err := g.Start(gctx); err != nil {
		gcancel()
		c.st.SetFence(nil)
		c.log.Error("starting the leader's services failed; will try again", "error", err)
		return
	}
	c.mu.Lock()
	c.lease, c.group, c.cancel = l, g, gcancel
	c.mu.Unlock()
	c.leader.Store(true)
	c.gauge.Set(1)
	c.log.Info("this replica is the leader", "token", l.Token, "lease_ttl", c.cfg.LeaseTTL)
}

// stepDown ends a term: writes refused first, then the singletons stopped;
// release gives the lease back (a clean shutdown).
func (c *cluster) stepDown(why string, release bool) {
	if !c.leader.Load() {
		return
	}
	c.st.SetFence(nil)
	c.leader.Store(false)
	c.gauge.Set(0)
	c.mu.Lock()
	g, cancel, l := c.group, c.cancel, c.lease
	c.group, c.cancel = nil, nil
	c.mu.Unlock()
	c.log.Warn("this replica no longer leads", "reason", why, "token", l.Token)
	if cancel != nil {
		cancel()
	}
	if g != nil {
		g.Stop()
	}
	if release {
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer rcancel()
		if err := c.st.ReleaseLease(rctx, leaderLease, c.self.ID, l.Token, c.now()); err != nil {
			c.log.Warn("releasing the lease failed; another replica takes over when it expires", "error", err)
		}
	}
}

// follow keeps a follower's rules' views current, every rules tick.
func (c *cluster) follow(ctx context.Context) {
	t := time.NewTicker(c.tick)
	defer t.Stop()
	for {
		if !c.leader.Load() {
			if err := c.loop.Follow(ctx, c.now()); err != nil && ctx.Err() == nil {
				c.log.Warn("following the leader's state failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// status is GET /api/v1/cluster's answer.
func (c *cluster) status(ctx context.Context) (api.ClusterStatus, error) {
	now := c.now()
	out := api.ClusterStatus{Self: c.self.ID, Store: c.st.Dialect(), LeaseTTL: c.cfg.LeaseTTL.String(), LeaseRenew: c.cfg.LeaseRenew.String()}
	l, found, err := c.st.ReadLease(ctx, leaderLease)
	if err != nil {
		return out, err
	}
	holder := ""
	if found {
		out.Lease = &api.LeaseStatus{Holder: l.Holder, Token: l.Token, ExpiresAt: l.ExpiresAt, RenewedAt: l.RenewedAt,
			AcquiredAt: l.AcquiredAt, Valid: l.ExpiresAt.After(now)}
		if out.Lease.Valid {
			holder = l.Holder
		}
	}
	reps, err := c.st.Replicas(ctx, now.Add(-10*c.cfg.LeaseTTL))
	if err != nil {
		return out, err
	}
	for _, r := range reps {
		role := "follower"
		if r.ID == holder {
			role = "leader"
		}
		if r.ID == c.self.ID && c.Leader() {
			role = "leader"
		}
		out.Replicas = append(out.Replicas, api.ReplicaStatus{ID: r.ID, Address: r.Address, Version: r.Version, Role: role,
			StartedAt: r.StartedAt, LastSeen: r.LastSeen, Self: r.ID == c.self.ID})
	}
	return out, nil
}

// single is the cluster of one: SQLite (always the leader).
type single struct {
	self store.Replica
	st   *store.Store
	now  func() time.Time
}

func (s single) status(context.Context) (api.ClusterStatus, error) {
	r := s.self
	return api.ClusterStatus{Self: r.ID, Store: s.st.Dialect(), Replicas: []api.ReplicaStatus{{ID: r.ID, Address: r.Address,
		Version: r.Version, Role: "leader", StartedAt: r.StartedAt, LastSeen: s.now(), Self: true}}}, nil
}

// clusterView adapts a status function to the API.
type clusterView func(ctx context.Context) (api.ClusterStatus, error)

func (f clusterView) Cluster(ctx context.Context) (api.ClusterStatus, error) { return f(ctx) }
