package api

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
)

// ReloadResult is POST /api/v1/reload's answer.
type ReloadResult struct {
	// Status is reloaded (the new config runs) or refused (it has problems:
	// the running config stays).
	Status string `json:"status"`
	// Problems are the new config's, each with its line and key.
	Problems []ConfigProblem `json:"problems"`
	// Replicas says whether the other replicas (PostgreSQL) were told to
	// read their config files again; empty on a single hub.
	Replicas string `json:"replicas,omitempty"`
}

// ConfigProblem is one problem of a config file.
type ConfigProblem struct {
	Line    int    `json:"line"`
	Key     string `json:"key"`
	Message string `json:"message"`
}

func (s *server) reload(c *gin.Context) {
	if s.o.Reload == nil {
		abort(c, 404, "not_found", "this hub was not started from a config file it can read again")
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Minute)
	defer cancel()
	res, err := s.o.Reload(ctx)
	if err != nil {
		s.o.Log.Error("reload failed", "error", err)
		abort(c, 500, "reload_failed", "the reload failed; the hub logs say why")
		return
	}
	if res.Problems == nil {
		res.Problems = []ConfigProblem{}
	}
	code := 200
	if res.Status != "reloaded" {
		code = 422
	}
	c.JSON(code, res)
}
