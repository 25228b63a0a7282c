package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/gin-gonic/gin"
)

func (s *server) alerts(c *gin.Context) {
	f, ok := s.filter(c)
	if !ok {
		return
	}
	af := store.AlertFilter{Tenants: f.Tenants, Rule: c.Query("rule"), Severity: c.Query("severity")}
	if v := c.Query("state"); v != "" {
		for _, st := range strings.Split(v, ",") {
			switch st {
			case "pending", "firing", "resolved":
				af.States = append(af.States, st)
			default:
				abort(c, 400, "bad_request", "state must be pending, firing or resolved (comma-separated)")
				return
			}
		}
	} else {
		af.States = []string{"pending", "firing"}
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			abort(c, 400, "bad_request", "limit must be a whole number from 1 to 1000")
			return
		}
		af.Limit = n
	}
	list, err := s.o.Store.ListAlerts(c.Request.Context(), af)
	if err != nil {
		s.storeError(c, err)
		return
	}
	c.JSON(200, gin.H{"alerts": list})
}

func (s *server) listSilences(c *gin.Context) {
	list, err := s.o.Store.Silences(c.Request.Context(), s.o.Now().UTC())
	if err != nil {
		s.storeError(c, err)
		return
	}
	if list == nil {
		list = []rules.Silence{}
	}
	c.JSON(200, gin.H{"silences": list})
}

// silenceRequest is the body of POST /api/v1/silences.
type silenceRequest struct {
	Matchers []rules.Matcher `json:"matchers"`
	StartsAt *time.Time      `json:"starts_at"`
	EndsAt   time.Time       `json:"ends_at"`
	Comment  string          `json:"comment"`
}

func (s *server) createSilence(c *gin.Context) {
	var req silenceRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		abort(c, 400, "invalid_json", "the body is not a silence: "+err.Error())
		return
	}
	now := s.o.Now().UTC()
	sl := rules.Silence{Matchers: req.Matchers, StartsAt: now, EndsAt: req.EndsAt.UTC(), Comment: req.Comment,
		CreatedBy: who(c).name, CreatedAt: now}
	if req.StartsAt != nil {
		sl.StartsAt = req.StartsAt.UTC()
	}
	if err := sl.Validate(); err != nil {
		abort(c, 422, "invalid_silence", err.Error())
		return
	}
	if sl.EndsAt.Before(now) {
		abort(c, 422, "invalid_silence", "ends_at: is in the past")
		return
	}
	if p := who(c); p.tenants != nil {
		ok := false
		for _, m := range sl.Matchers {
			ok = ok || (m.Name == "tenant" && !m.IsRegex && p.CanSee(m.Value))
		}
		if !ok {
			abort(c, 403, "forbidden", "a tenant-scoped token must silence one of its tenants (an exact tenant matcher)")
			return
		}
	}
	var b [8]byte
	rand.Read(b[:])
	sl.ID = hex.EncodeToString(b[:])
	if err := s.o.Store.SaveSilence(c.Request.Context(), sl); err != nil {
		s.storeError(c, err)
		return
	}
	c.JSON(201, sl)
}

func (s *server) deleteSilence(c *gin.Context) {
	id := c.Param("id")
	if p := who(c); p.tenants != nil {
		list, err := s.o.Store.Silences(c.Request.Context(), s.o.Now().UTC())
		if err != nil {
			s.storeError(c, err)
			return
		}
		for _, sl := range list {
			if sl.ID == id {
				ok := false
				for _, m := range sl.Matchers {
					ok = ok || (m.Name == "tenant" && !m.IsRegex && p.CanSee(m.Value))
				}
				if !ok {
					abort(c, 403, "forbidden", "this silence is outside the token's tenants")
					return
				}
			}
		}
	}
	err := s.o.Store.ExpireSilence(c.Request.Context(), id, s.o.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		abort(c, 404, "not_found", "no active silence "+strconv.Quote(id))
		return
	}
	if err != nil {
		s.storeError(c, err)
		return
	}
	c.Status(204)
}
