package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/etlhub/etlhub/api"
	"github.com/etlhub/etlhub/internal/config"
)

// Reloading the config (SIGHUP, POST /api/v1/reload): the new config is
// read and validated; with problems (each logged with its line and key) the
// running config stays; without, this replica's hub is rebuilt with it on
// the same store: its services stopped (the leader gives its lease up), the
// new ones started, the API handler swapped. On PostgreSQL a reload that
// runs is announced in the store (store.AnnounceReload), and every other
// replica, polling for it (serve.go), reloads from its own config file the
// same way. The store and listen keys are not changed by a reload (a
// restart is needed).

// reloadReq is one reload asked for, answered on reply.
type reloadReq struct {
	why   string
	reply chan api.ReloadResult
}

// swapHandler serves with the current hub's handler.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

// problemsOf turns a config error into the problems the API lists.
func problemsOf(err error) []api.ConfigProblem {
	var ce *config.Error
	if errors.As(err, &ce) {
		out := make([]api.ConfigProblem, 0, len(ce.Problems))
		for _, p := range ce.Problems {
			out = append(out, api.ConfigProblem{Line: p.Line, Key: p.Key, Message: p.Msg})
		}
		return out
	}
	return []api.ConfigProblem{{Message: err.Error()}}
}

// fixedKeys are the problems of a new config that a reload cannot apply.
func fixedKeys(old, next *Config) []api.ConfigProblem {
	var out []api.ConfigProblem
	if old.Listen != next.Listen {
		out = append(out, api.ConfigProblem{Key: "listen", Message: "changing the API's address needs a restart"})
	}
	if old.Store.Driver != next.Store.Driver || old.Store.Path != next.Store.Path || old.Store.DSN.Value() != next.Store.DSN.Value() ||
		old.Store.MaxOpenConns != next.Store.MaxOpenConns || old.Store.BusyTimeout != next.Store.BusyTimeout {
		out = append(out, api.ConfigProblem{Key: "store", Message: "changing the store needs a restart"})
	}
	return out
}

// reloader rebuilds the hub of Serve with a new config.
type reloader struct {
	log     *slog.Logger
	load    func() (*Config, error)
	build   func(ctx context.Context, c *Config) (*Hub, error)
	handler *swapHandler
	cur     *Hub
}

// reload applies a new config, or keeps the running one and says why.
func (r *reloader) reload(ctx context.Context, why string) api.ReloadResult {
	next, err := r.load()
	if err != nil {
		probs := problemsOf(err)
		for _, p := range probs {
			r.log.Error("config reload refused: the running config stays", "trigger", why, "line", p.Line, "key", p.Key, "problem", p.Message)
		}
		return api.ReloadResult{Status: "refused", Problems: probs}
	}
	if probs := fixedKeys(r.cur.Config, next); len(probs) > 0 {
		for _, p := range probs {
			r.log.Error("config reload refused: the running config stays", "trigger", why, "key", p.Key, "problem", p.Message)
		}
		return api.ReloadResult{Status: "refused", Problems: probs}
	}
	next.Version = r.cur.Config.Version
	next.Cluster.ReplicaID = r.cur.Config.Cluster.ReplicaID // the same replica
	nh, err := r.build(ctx, next)
	if err != nil {
		r.log.Error("config reload failed: the running config stays", "trigger", why, "error", err)
		return api.ReloadResult{Status: "refused", Problems: []api.ConfigProblem{{Message: err.Error()}}}
	}
	old := r.cur
	old.Stop() // the services; the store is Serve's
	if err := nh.Start(ctx); err != nil {
		r.log.Error("the reloaded config's services did not start; going back to the running config", "error", err)
		back, berr := r.build(ctx, old.Config)
		if berr == nil {
			berr = back.Start(ctx)
		}
		if berr != nil {
			r.log.Error("the running config's services did not start again", "error", berr)
		}
		if back != nil {
			r.cur = back
			r.handler.set(back.Handler)
		}
		return api.ReloadResult{Status: "refused", Problems: []api.ConfigProblem{{Message: fmt.Sprintf("the services did not start: %v", err)}}}
	}
	r.cur = nh
	r.handler.set(nh.Handler)
	r.log.Info("config reloaded", "trigger", why, "jobs", len(next.Jobs), "sources", len(next.Sources))
	return api.ReloadResult{Status: "reloaded", Problems: []api.ConfigProblem{}}
}
