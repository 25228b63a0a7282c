package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
	"github.com/gin-gonic/gin"
)

// ExternalPoster takes alerts posted in Alertmanager's format; the hub's
// AlertActions implement it.
type ExternalPoster interface {
	PostExternal(xs []rules.External)
}

// Alertmanager's API v2 (the part amtool and Prometheus use): alerts in from
// Prometheus, alerts and silences out.
func (s *server) alertmanagerRoutes(r *gin.Engine) {
	v2 := r.Group("/api/v2")
	view, op := s.auth.require(RoleViewer), s.auth.require(RoleOperator)
	v2.GET("/status", view, s.amStatus)
	v2.GET("/alerts", view, s.amAlerts)
	v2.POST("/alerts", s.auth.require(parseRole(s.o.Auth.PushRole)), s.amPostAlerts)
	v2.GET("/silences", view, s.amSilences)
	v2.POST("/silences", op, s.amPostSilence)
	v2.DELETE("/silence/:id", op, s.amDeleteSilence)
	v2.GET("/receivers", view, func(c *gin.Context) { c.JSON(200, []gin.H{}) })
}

// amError answers in Alertmanager's error shape (a JSON string) with ours.
func amError(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(code, gin.H{"error": apiError{Code: http.StatusText(code), Message: msg}})
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

type amPostable struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// amResolveTimeout is how long a posted alert without endsAt stays active
// (Alertmanager's resolve_timeout).
const amResolveTimeout = 5 * time.Minute

func (s *server) amPostAlerts(c *gin.Context) {
	poster, ok := s.o.Actions.(ExternalPoster)
	if !ok {
		amError(c, 501, "this hub does not take alerts")
		return
	}
	var in []amPostable
	if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, s.o.MaxBodyBytes)).Decode(&in); err != nil {
		if tooLarge(err) {
			amError(c, 413, fmt.Sprintf("the body exceeds %d bytes; post fewer alerts at a time", s.o.MaxBodyBytes))
			return
		}
		amError(c, 400, "the body is not a list of alerts: "+err.Error())
		return
	}
	if len(in) > 1000 {
		amError(c, 400, fmt.Sprintf("%d alerts in one call; at most 1000", len(in)))
		return
	}
	p, now := who(c), s.o.Now().UTC()
	out := make([]rules.External, 0, len(in))
	for i, a := range in {
		if a.Labels["alertname"] == "" {
			amError(c, 400, fmt.Sprintf("[%d].labels.alertname: is required", i))
			return
		}
		for k, v := range a.Labels {
			if !labelName.MatchString(k) || len(k) > 128 || len(v) > 1024 {
				amError(c, 400, fmt.Sprintf("[%d].labels: %q is not a valid label (name [a-zA-Z_][a-zA-Z0-9_]*, at most 128 bytes; value at most 1024)", i, k))
				return
			}
		}
		for k, v := range a.Annotations {
			if len(k) > 128 || len(v) > 4096 {
				amError(c, 400, fmt.Sprintf("[%d].annotations.%s: too long (name 128, value 4096 bytes)", i, k))
				return
			}
		}
		if p.tenants != nil && !p.CanSee(a.Labels["tenant"]) {
			amError(c, 403, fmt.Sprintf("[%d].labels.tenant: a tenant-scoped token posts alerts of its tenants only", i))
			return
		}
		x := rules.External{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt.UTC(), EndsAt: a.EndsAt.UTC(), GeneratorURL: a.GeneratorURL}
		if x.StartsAt.IsZero() {
			x.StartsAt = now
		}
		if x.EndsAt.IsZero() {
			x.EndsAt = now.Add(amResolveTimeout)
		}
		if x.EndsAt.Before(x.StartsAt) {
			amError(c, 400, fmt.Sprintf("[%d].endsAt: is before startsAt", i))
			return
		}
		out = append(out, x)
	}
	poster.PostExternal(out)
	c.Status(200)
}

// amLabels are an alert's labels in Alertmanager's terms.
func amLabels(a *model.Alert) map[string]string {
	if l := rules.ExternalLabels(a); l != nil {
		return l
	}
	l := map[string]string{"alertname": a.Rule, "severity": string(a.Severity)}
	for k, v := range map[string]string{"tenant": a.Tenant, "job": a.Job, "run_id": a.RunID, "source": a.Source} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

func amAnnotations(a *model.Alert) map[string]string {
	if rules.IsExternal(a) {
		if m, ok := a.Details["annotations"].(map[string]any); ok {
			out := map[string]string{}
			for k, v := range m {
				out[k] = fmt.Sprint(v)
			}
			return out
		}
	}
	return map[string]string{"summary": a.Summary}
}

// amMatcher is one of amtool's filters: name=value, !=, =~ or !~.
type amMatcher struct {
	name, op, value string
	re              *regexp.Regexp
}

var matcherRE = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$`)

func parseMatcher(s string) (amMatcher, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}"))
	m := matcherRE.FindStringSubmatch(s)
	if m == nil {
		return amMatcher{}, fmt.Errorf("%q is not a matcher (name=value, name!=value, name=~regex, name!~regex)", s)
	}
	out := amMatcher{name: m[1], op: m[2], value: m[3]}
	if strings.HasPrefix(out.value, `"`) {
		v, err := strconv.Unquote(out.value)
		if err != nil {
			return amMatcher{}, fmt.Errorf("%q: %v", s, err)
		}
		out.value = v
	}
	if out.op == "=~" || out.op == "!~" {
		re, err := regexp.Compile("^(?:" + out.value + ")$")
		if err != nil {
			return amMatcher{}, fmt.Errorf("%q: %v", s, err)
		}
		out.re = re
	}
	return out, nil
}

func (m amMatcher) matches(labels map[string]string) bool {
	v := labels[m.name]
	switch m.op {
	case "=":
		return v == m.value
	case "!=":
		return v != m.value
	case "=~":
		return m.re.MatchString(v)
	}
	return !m.re.MatchString(v)
}

func boolParam(c *gin.Context, name string, def bool) (bool, bool) {
	v := c.Query(name)
	if v == "" {
		return def, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		amError(c, 400, name+": must be true or false")
		return false, false
	}
	return b, true
}

func (s *server) amAlerts(c *gin.Context) {
	ms, ok := amFilters(c)
	if !ok {
		return
	}
	active, ok1 := boolParam(c, "active", true)
	silenced, ok2 := boolParam(c, "silenced", true)
	inhibited, ok3 := boolParam(c, "inhibited", true)
	if !ok1 || !ok2 || !ok3 {
		return
	}
	p := who(c)
	af := store.AlertFilter{States: []model.AlertState{model.AlertFiring}, Limit: 1000, Tenants: p.tenants}
	list, err := s.o.Store.ListAlerts(c.Request.Context(), af)
	if err != nil {
		s.storeError(c, err)
		return
	}
	out := make([]gin.H, 0, len(list))
	for i := range list {
		a := &list[i]
		if !p.CanSee(a.Tenant) {
			continue
		}
		labels := amLabels(a)
		keep := true
		for _, m := range ms {
			keep = keep && m.matches(labels)
		}
		state := "active"
		if a.Silenced || a.Inhibited {
			state = "suppressed"
		}
		switch {
		case !keep, state == "active" && !active, a.Silenced && !silenced, a.Inhibited && !inhibited:
			continue
		}
		ends := a.LastSeen.Add(amResolveTimeout)
		if s, ok := a.Details["ends_at"].(string); ok && rules.IsExternal(a) {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				ends = t
			}
		}
		gen, _ := a.Details["generator_url"].(string)
		silencedBy, inhibitedBy := []string{}, []string{}
		if a.Silenced {
			silencedBy = append(silencedBy, "etlhub")
		}
		if a.Inhibited {
			inhibitedBy = append(inhibitedBy, "etlhub")
		}
		out = append(out, gin.H{"labels": labels, "annotations": amAnnotations(a), "startsAt": a.FiredAt, "endsAt": ends,
			"updatedAt": a.LastSeen, "fingerprint": a.ID, "generatorURL": gen, "receivers": []gin.H{{"name": "etlhub"}},
			"status": gin.H{"state": state, "silencedBy": silencedBy, "inhibitedBy": inhibitedBy, "mutedBy": []string{}}})
	}
	c.JSON(200, out)
}

// amName maps our silence label names to Alertmanager's and back.
func amName(ours string) string {
	if ours == "rule" {
		return "alertname"
	}
	return ours
}

func oursName(am string) string {
	if am == "alertname" {
		return "rule"
	}
	return am
}

// amFilters reads the filter query parameters (amtool's matchers).
func amFilters(c *gin.Context) ([]amMatcher, bool) {
	var ms []amMatcher
	for _, f := range c.QueryArray("filter") {
		m, err := parseMatcher(f)
		if err != nil {
			amError(c, 400, "filter: "+err.Error())
			return nil, false
		}
		ms = append(ms, m)
	}
	return ms, true
}

// silenceMatchesFilters is Alertmanager's test of a silence against query
// filters: each filter is matched against the value the silence's matcher of
// that label has; a filter for the empty value passes where the silence has
// no matcher of the label (or, negated, where it has one).
func silenceMatchesFilters(sl *rules.Silence, filters []amMatcher) bool {
	values := map[string]string{}
	for _, m := range sl.Matchers {
		values[amName(m.Name)] = m.Value
	}
	for _, f := range filters {
		v, has := values[f.name]
		negative := f.op == "!=" || f.op == "!~"
		if f.value == "" && has == negative {
			continue
		}
		if !f.matches(map[string]string{f.name: v}) {
			return false
		}
	}
	return true
}

// amDeleteSilence is DELETE /api/v2/silence/{id} (amtool silence expire).
func (s *server) amDeleteSilence(c *gin.Context) {
	code, msg, err := s.expireSilence(c, c.Param("id"))
	switch {
	case err != nil:
		s.storeError(c, err)
	case code != 0:
		amError(c, code, msg)
	default:
		c.Status(200)
	}
}

func (s *server) amSilences(c *gin.Context) {
	filters, ok := amFilters(c)
	if !ok {
		return
	}
	now := s.o.Now().UTC()
	list, err := s.o.Store.Silences(c.Request.Context(), now)
	if err != nil {
		s.storeError(c, err)
		return
	}
	p := who(c)
	out := make([]gin.H, 0, len(list))
	for i := range list {
		sl := &list[i]
		if !silenceInScope(p, sl) || !silenceMatchesFilters(sl, filters) {
			continue
		}
		state := "active"
		switch {
		case sl.StartsAt.After(now):
			state = "pending"
		case !sl.EndsAt.After(now):
			state = "expired"
		}
		ms := make([]gin.H, 0, len(sl.Matchers))
		for _, m := range sl.Matchers {
			ms = append(ms, gin.H{"name": amName(m.Name), "value": m.Value, "isRegex": m.IsRegex, "isEqual": !m.Negative()})
		}
		out = append(out, gin.H{"id": sl.ID, "status": gin.H{"state": state}, "updatedAt": sl.CreatedAt, "matchers": ms,
			"startsAt": sl.StartsAt, "endsAt": sl.EndsAt, "createdBy": sl.CreatedBy, "comment": sl.Comment})
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	c.JSON(200, out)
}

type amPostableSilence struct {
	ID       string `json:"id"`
	Matchers []struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual *bool  `json:"isEqual"`
	} `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
}

func (s *server) amPostSilence(c *gin.Context) {
	var in amPostableSilence
	if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)).Decode(&in); err != nil {
		if tooLarge(err) {
			amError(c, 413, "a silence is at most 64 KiB")
			return
		}
		amError(c, 400, "the body is not a silence: "+err.Error())
		return
	}
	if in.ID != "" {
		amError(c, 400, "id: updating a silence is not supported; expire it and create another")
		return
	}
	now := s.o.Now().UTC()
	sl := rules.Silence{StartsAt: in.StartsAt.UTC(), EndsAt: in.EndsAt.UTC(), Comment: in.Comment, CreatedBy: who(c).name, CreatedAt: now}
	if sl.StartsAt.IsZero() || sl.StartsAt.Before(now) {
		sl.StartsAt = now
	}
	if in.CreatedBy != "" && in.CreatedBy != sl.CreatedBy {
		sl.Comment = strings.TrimSpace(sl.Comment + " (by " + in.CreatedBy + ")")
	}
	for _, m := range in.Matchers {
		rm := rules.Matcher{Name: oursName(m.Name), Value: m.Value, IsRegex: m.IsRegex}
		if m.IsEqual != nil && !*m.IsEqual {
			rm.IsEqual = m.IsEqual // != and !~
		}
		sl.Matchers = append(sl.Matchers, rm)
	}
	if err := sl.Validate(); err != nil {
		amError(c, 400, err.Error())
		return
	}
	if !sl.EndsAt.After(now) {
		amError(c, 400, "endsAt: is in the past")
		return
	}
	if !silenceInScope(who(c), &sl) {
		amError(c, 403, "a tenant-scoped token must silence one of its tenants (an exact tenant matcher)")
		return
	}
	// The same cap as POST /api/v1/silences.
	if full, err := s.silencesFull(c, now); err != nil {
		s.storeError(c, err)
		return
	} else if full != "" {
		amError(c, 409, full)
		return
	}
	sl.ID = newID()
	if err := s.o.Store.SaveSilence(c.Request.Context(), sl); err != nil {
		s.storeError(c, err)
		return
	}
	c.JSON(200, gin.H{"silenceID": sl.ID})
}

func (s *server) amStatus(c *gin.Context) {
	c.JSON(200, gin.H{
		"cluster":     gin.H{"status": "disabled", "peers": []gin.H{}},
		"config":      gin.H{"original": ""},
		"uptime":      s.started,
		"versionInfo": gin.H{"version": "etlhub", "revision": "", "branch": "", "buildUser": "", "buildDate": "", "goVersion": ""},
	})
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
