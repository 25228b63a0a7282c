package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/gin-gonic/gin"
)

func (s *server) alerts(c *gin.Context) {
	f, ok := s.filter(c)
	if !ok {
		return
	}
	af := store.AlertFilter{Tenants: f.Tenants, Rule: c.Query("rule"), Severity: model.Severity(c.Query("severity"))}
	if v := c.Query("state"); v != "" {
		for _, st := range strings.Split(v, ",") {
			switch st := model.AlertState(st); st {
			case model.AlertPending, model.AlertFiring, model.AlertResolved:
				af.States = append(af.States, st)
			default:
				abort(c, 400, "bad_request", "state must be pending, firing or resolved (comma-separated)")
				return
			}
		}
	} else {
		af.States = []model.AlertState{model.AlertPending, model.AlertFiring}
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
	out := make([]AlertView, len(list))
	for i := range list {
		out[i] = alertView(list[i])
	}
	c.JSON(200, gin.H{"alerts": out})
}

func (s *server) listSilences(c *gin.Context) {
	list, err := s.o.Store.Silences(c.Request.Context(), s.o.Now().UTC())
	if err != nil {
		s.storeError(c, err)
		return
	}
	// A tenant-scoped token sees the silences pinned to its tenants only.
	p := who(c)
	out := make([]rules.Silence, 0, len(list))
	for i := range list {
		if silenceInScope(p, &list[i]) {
			out = append(out, list[i])
		}
	}
	c.JSON(200, gin.H{"silences": out})
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
		if tooLarge(err) {
			abort(c, 413, "body_too_large", "a silence is at most 64 KiB")
			return
		}
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
	if !silenceInScope(who(c), &sl) {
		abort(c, 403, "forbidden", "a tenant-scoped token must silence one of its tenants (an exact tenant matcher)")
		return
	}
	if full, err := s.silencesFull(c, now); err != nil {
		s.storeError(c, err)
		return
	} else if full != "" {
		abort(c, 409, "too_many_silences", full)
		return
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

// tooLarge reports whether a body was cut off at its size limit.
func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// silenceInScope: a tenant-scoped token may only manage silences with an
// exact matcher on one of its tenants.
func silenceInScope(p *principal, sl *rules.Silence) bool {
	if p.tenants == nil {
		return true
	}
	for _, m := range sl.Matchers {
		if m.Name == "tenant" && !m.IsRegex && !m.Negative() && p.CanSee(m.Value) {
			return true
		}
	}
	return false
}

// silencesFull says why a new silence would pass silences.max_active ("" if
// it would not). Active and future silences count, within the token's
// tenants for a scoped token, so that one tenant cannot fill the list.
func (s *server) silencesFull(c *gin.Context, now time.Time) (string, error) {
	active, err := s.o.Store.Silences(c.Request.Context(), now)
	if err != nil {
		return "", err
	}
	n := 0
	for i := range active {
		if silenceInScope(who(c), &active[i]) {
			n++
		}
	}
	if n < s.o.MaxSilences {
		return "", nil
	}
	return fmt.Sprintf("%d silences are active or planned (silences.max_active: %d); expire some first", n, s.o.MaxSilences), nil
}

func (s *server) deleteSilence(c *gin.Context) {
	code, msg, err := s.expireSilence(c, c.Param("id"))
	switch {
	case err != nil:
		s.storeError(c, err)
	case code == 403:
		abort(c, 403, "forbidden", msg)
	case code == 404:
		abort(c, 404, "not_found", msg)
	default:
		c.Status(204)
	}
}

// expireSilence expires silence id for the caller: 0 when done, else the
// status of the refusal and why (err: the store failed).
func (s *server) expireSilence(c *gin.Context, id string) (int, string, error) {
	if p := who(c); p.tenants != nil {
		list, err := s.o.Store.Silences(c.Request.Context(), s.o.Now().UTC())
		if err != nil {
			return 0, "", err
		}
		for _, sl := range list {
			if sl.ID == id && !silenceInScope(p, &sl) {
				return 403, "this silence is outside the token's tenants", nil
			}
		}
	}
	err := s.o.Store.ExpireSilence(c.Request.Context(), id, s.o.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return 404, "no active silence " + strconv.Quote(id), nil
	}
	return 0, "", err
}

// AlertActions are what people do to alerts.
type AlertActions interface {
	Ack(ctx context.Context, id, who string) (model.Alert, error)
	PagerDutyWebhook(ctx context.Context, body []byte, signature string) error
}

// Errors an AlertActions may return.
var (
	ErrBadSignature = errors.New("the signature does not verify")
	ErrBadPayload   = errors.New("the payload is not a webhook event")
	// ErrStaleEvent: signed, but from outside the accepted time window (a replay).
	ErrStaleEvent = errors.New("the event is too old or too far ahead")
	// ErrDuplicateEvent: an event id already taken; answered 200, not acted on.
	ErrDuplicateEvent = errors.New("the event was already taken")
)

func (s *server) ack(c *gin.Context) {
	id := c.Param("id")
	found, err := s.o.Store.ListAlerts(c.Request.Context(), store.AlertFilter{ID: id, Limit: 1})
	if err != nil {
		s.storeError(c, err)
		return
	}
	if len(found) == 0 || !who(c).CanSee(found[0].Tenant) {
		abort(c, 404, "not_found", "no alert "+strconv.Quote(id))
		return
	}
	a, err := s.o.Actions.Ack(c.Request.Context(), id, "etlhub:"+who(c).name)
	if errors.Is(err, rules.ErrNoAlert) {
		abort(c, 409, "not_firing", "alert "+strconv.Quote(id)+" is not firing")
		return
	}
	if err != nil {
		s.storeError(c, err)
		return
	}
	c.JSON(200, a)
}

func (s *server) pagerdutyWebhook(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20))
	if err != nil {
		abort(c, 413, "body_too_large", "webhook bodies are at most 1 MiB")
		return
	}
	err = s.o.Actions.PagerDutyWebhook(c.Request.Context(), body, c.GetHeader("X-PagerDuty-Signature"))
	switch {
	case errors.Is(err, ErrBadSignature):
		abort(c, 401, "bad_signature", "X-PagerDuty-Signature does not verify")
	case errors.Is(err, ErrBadPayload):
		abort(c, 400, "invalid_json", err.Error())
	case errors.Is(err, ErrStaleEvent):
		abort(c, 400, "stale_event", err.Error())
	case errors.Is(err, ErrDuplicateEvent):
		c.JSON(200, gin.H{"status": "duplicate"})
	case err != nil:
		s.storeError(c, err)
	default:
		c.Status(204)
	}
}

func (s *server) notifications(c *gin.Context) {
	st := c.Query("status")
	if st != "" && st != store.OutboxPending && st != store.OutboxDelivered && st != store.OutboxFailed {
		abort(c, 400, "bad_request", "status must be pending, delivered or failed")
		return
	}
	items, err := s.o.Store.ListOutbox(c.Request.Context(), st, 200)
	if err != nil {
		s.storeError(c, err)
		return
	}
	p := who(c)
	out := make([]store.OutboxItem, 0, len(items))
	for _, it := range items {
		if p.CanSee(it.Alert.Tenant) {
			out = append(out, it)
		}
	}
	c.JSON(200, gin.H{"notifications": out})
}
