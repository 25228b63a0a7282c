package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
)

// api/openapi.json is generated, not written by hand: the schemas of what the
// handlers answer with come from the Go types (reflection over their json
// tags: names, types, which fields are always present, which may be null),
// with the limits and vocabularies the code enforces taken from the same
// constants; the operations (paths, parameters, status codes) come from the
// table in openAPIOperations. The answers the handlers build as maps (gin.H)
// are described here by hand, and the contract test (openapi_contract_test.go)
// checks every answer of every route against the document, undeclared fields
// included. Rewrite the document after changing a type or a route with
//
//	go test ./api -run TestOpenAPIDocumentIsGenerated -update-openapi
var updateOpenAPI = flag.Bool("update-openapi", false, "rewrite api/openapi.json from the Go types and the operation table")

func TestOpenAPIDocumentIsGenerated(t *testing.T) {
	got, err := buildOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	if *updateOpenAPI {
		if err := os.WriteFile("openapi.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, openAPI) {
		gl, wl := strings.Split(string(openAPI), "\n"), strings.Split(string(got), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(ls []string) string {
			if i < len(ls) {
				return ls[i]
			}
			return "(end of file)"
		}
		t.Fatalf("api/openapi.json is not what the Go types and the operation table say (first difference at line %d:\n  file: %s\n  want: %s)\n"+
			"rewrite it with: go test ./api -run TestOpenAPIDocumentIsGenerated -update-openapi, and review the diff", i+1, line(gl), line(wl))
	}
}

type obj = map[string]any

// fieldDoc adds to the schema reflected for one field ("Component.json_name"):
// a description, constraints the code enforces, or a whole schema.
type fieldDoc struct {
	desc    string
	extra   obj // merged into the reflected schema
	replace obj // used instead of the reflected schema
}

func enumOf[T ~string](vs ...T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

var (
	runStates   = enumOf(model.StateWaiting, model.StateRunning, model.StateSucceeded, model.StateFailed)
	alertStates = enumOf(model.AlertPending, model.AlertFiring, model.AlertResolved)
	severities  = []string{string(model.SeverityCritical), string(model.SeverityWarning), string(model.SeverityInfo)}
	risks       = []string{string(model.RiskBreached), string(model.RiskPredicted), string(model.RiskAtRisk), string(model.RiskRunning), string(model.RiskOK), string(model.RiskIdle)}
	outcomes    = []string{rules.OutcomeOnTime, rules.OutcomeLate, rules.OutcomeMissed, rules.OutcomeFailed, rules.OutcomeRunning,
		rules.OutcomeWaiting, rules.OutcomeScheduled}
	outboxStates = []string{store.OutboxPending, store.OutboxDelivered, store.OutboxFailed}
)

func maxLen(n int) obj { return obj{"maxLength": n} }

var nonNegative = obj{"minimum": 0}

// inheritsDocs are the types that embed another and only add fields to it:
// its fields' docs apply to theirs (NightRecord embeds Outcome but has
// kinds of its own).
var inheritsDocs = map[string]bool{"AlertView": true}

// whyPartsDoc is why_parts' (a job's view, and a status row, which has it).
var whyPartsDoc = fieldDoc{desc: "why cut into its text and its times: the parts' texts joined are why; a part that is a time has at, the instant it names."}

// fieldDocs: the limits are the constants the validation uses.
var fieldDocs = map[string]fieldDoc{
	"Observation.at":                 {desc: "When the source observed the run."},
	"Observation.source":             {desc: "The status source that reported it.", extra: maxLen(model.MaxNameLen)},
	"Observation.tenant":             {extra: maxLen(model.MaxNameLen)},
	"Observation.job":                {extra: maxLen(model.MaxNameLen)},
	"Observation.run_id":             {extra: maxLen(model.MaxRunIDLen)},
	"Observation.stage":              {desc: "Free text; the importer uses awaiting_files, downloading, validating, loading, publishing.", extra: maxLen(model.MaxStageLen)},
	"Observation.updated_at":         {desc: "The job's own last heartbeat or progress; a running run whose updated_at stops moving is hung."},
	"Observation.rows_done":          {extra: nonNegative},
	"Observation.rows_total":         {extra: nonNegative},
	"Observation.error":              {extra: maxLen(model.MaxErrorLen)},
	"Observation.attempt":            {extra: nonNegative},
	"Observation.url":                {desc: "A link to the run in its own system.", extra: maxLen(model.MaxURLLen)},
	"ObservationIn.at":               {desc: "When the source observed the run; at most 10 minutes after the hub's clock."},
	"ObservationIn.source":           {desc: "The status source; push:TOKEN-NAME when absent.", extra: maxLen(model.MaxNameLen)},
	"ObservationIn.tenant":           {extra: obj{"maxLength": model.MaxNameLen, "minLength": 1}},
	"ObservationIn.job":              {extra: obj{"maxLength": model.MaxNameLen, "minLength": 1}},
	"ObservationIn.run_id":           {extra: obj{"maxLength": model.MaxRunIDLen, "minLength": 1}},
	"ObservationIn.stage":            {extra: maxLen(model.MaxStageLen)},
	"ObservationIn.started_at":       {desc: "At most 10 minutes after at and 30 days before it, as are updated_at and finished_at."},
	"ObservationIn.updated_at":       {desc: "The job's own last heartbeat or progress time."},
	"ObservationIn.files_arrived_at": {desc: "When the run's input files had all arrived; at most 366 days before at."},
	"ObservationIn.rows_done":        {extra: nonNegative},
	"ObservationIn.rows_total":       {extra: nonNegative},
	"ObservationIn.error":            {extra: maxLen(model.MaxErrorLen)},
	"ObservationIn.attempt":          {extra: nonNegative},
	"ObservationIn.url":              {extra: maxLen(model.MaxURLLen)},
	"QualityIn.errors":               {extra: nonNegative},
	"QualityIn.warnings":             {extra: nonNegative},
	"Run.run_id":                     {extra: maxLen(model.MaxRunIDLen)},
	"Run.first_seen_at":              {desc: "When the hub first heard of the run."},
	"Run.last_seen_at":               {desc: "When the hub last heard of the run."},
	"Run.quality_errors":             {extra: nonNegative},
	"Run.quality_warnings":           {extra: nonNegative},
	"StatusRow.configured":           {desc: "Whether the job is in the hub's configuration (false: known from pushes or collectors only)."},
	"StatusRow.run_id":               {desc: "The current run; absent when the job has none yet."},
	"StatusRow.progress_pct":         {desc: "rows_done over rows_total in percent (one decimal); null when unknown.", extra: obj{"minimum": 0, "maximum": 100}},
	"StatusRow.elapsed_s":            {desc: "Seconds from start to finish, or to now while it runs; null without a start."},
	"StatusRow.last_success_at":      {desc: "When the job last succeeded; null if never."},
	"StatusRow.risk":                 {extra: obj{"enum": risks}},
	"StatusRow.p_breach":             {desc: "Probability that tonight's deadline is missed.", extra: obj{"minimum": 0, "maximum": 1}},
	"StatusRow.prediction_basis":     {desc: "What the prediction rests on (history, insufficient history, retry expected, ...)."},
	"StatusRow.learned_from":         {desc: "How many past nights the prediction learned from.", extra: nonNegative},
	"StatusRow.active_alerts":        {extra: nonNegative},
	"StatusRow.finish_lo":            {desc: "The early end of the predicted finish's band."},
	"StatusRow.finish_hi":            {desc: "The late end of the predicted finish's band."},
	"StatusRow.outcome":              {desc: "Tonight's result against the deadline."},
	"StatusRow.last_night":           {desc: "The previous night's result."},
	"JobView.risk":                   {extra: obj{"enum": risks}},
	"JobView.p_breach":               {desc: "Probability that tonight's deadline is missed.", extra: obj{"minimum": 0, "maximum": 1}},
	"JobView.why_parts":              whyPartsDoc,
	"StatusRow.why_parts":            whyPartsDoc,
	"AlertView.summary_parts":        {desc: "summary cut into its text and its times, as why_parts is of a job's why."},
	"TextPart.at":                    {desc: "The instant this part names, when it is a time (a clock such as 11:00Z resolved among the job's or the alert's own times)."},
	"JobView.learned_from":           {extra: nonNegative},
	"JobView.active_alerts":          {extra: nonNegative},
	"Outcome.kind":                   {extra: obj{"enum": outcomes}},
	"Outcome.late_by_s":              {desc: "Late: how long after the deadline it succeeded; missed or failed: how long past the deadline it is."},
	"Outcome.spare_s":                {desc: "On time: how long before the deadline it succeeded."},
	"Outcome.failed_attempts":        {extra: nonNegative},
	"JobSpec.timezone":               {desc: "IANA time zone of schedule and deadline."},
	"JobSpec.schedule":               {desc: "5-field cron, local time."},
	"JobSpec.deadline":               {desc: "HH:MM local; the next day when not after the start.", extra: obj{"pattern": `^[0-2][0-9]:[0-5][0-9]$`}},
	"JobSpec.files_expected_by":      {extra: obj{"pattern": `^[0-2][0-9]:[0-5][0-9]$`}},
	"JobSpec.severity":               {desc: "Severity overrides by rule name; off silences the rule for this job.", replace: obj{"type": "object", "additionalProperties": obj{"type": "string", "enum": append(slices.Clone(severities), string(model.SeverityOff))}}},
	"SourceView.kind":                {desc: "The collector kind (http_json, sumo, importer, ...)."},
	"DependencyView.at":              {desc: "When it was measured."},
	"DependencyView.source":          {desc: "The collector source that measured it.", extra: maxLen(model.MaxNameLen)},
	"DependencyView.subject":         {desc: "What was measured: KIND or KIND:NAME (redis:main, mongodb:roster, sftp:HOST:PORT, store).", extra: maxLen(model.MaxSubjectLen)},
	"DependencyView.kind":            {extra: obj{"enum": enumOf(model.DependencyKinds...)}},
	"DependencyView.tenant":          {desc: "The tenant whose dependency it is; absent for shared infrastructure.", extra: maxLen(model.MaxNameLen)},
	"DependencyView.job":             {desc: "The job it serves, when one.", extra: maxLen(model.MaxNameLen)},
	"DependencyView.up":              {desc: "False when the probe could not reach or use it (error says why)."},
	"DependencyView.error":           {extra: maxLen(model.MaxErrorLen)},
	"DependencyView.values": {desc: "What the probe measured, by name (latency_ms, memory_used_ratio, connections_used_ratio, clients_blocked, rejected_connections, evictions_per_s, ops_per_s, p50_ms, p95_ms, error_rate, breaker_open, in_flight, ...); a name that is absent was not measured.",
		replace: obj{"type": "object", "maxProperties": model.MaxValues, "additionalProperties": obj{"type": "number", "minimum": 0}}},
	"DependencyView.age_s":            {desc: "Seconds since it was measured.", extra: nonNegative},
	"SourceView.tenants":              {desc: "The tenants the source feeds that the token may see."},
	"SourceView.last_duration_ms":     {extra: nonNegative},
	"SourceView.consecutive_failures": {extra: nonNegative},
	"Alert.id":                        {desc: "Names this life of the alert; the fingerprint may fire again later as a new alert."},
	"Alert.rule":                      {desc: "The rule (missed-start, stalled, predicted-breach, ...) or a posted alert's alertname."},
	"Alert.severity":                  {extra: obj{"enum": severities}},
	"Alert.source":                    {desc: "The status source the alert rests on; alertmanager for alerts posted to /api/v2/alerts."},
	"Alert.night":                     {desc: "The scheduled night the alert is about."},
	"Alert.details":                   {desc: "Rule-specific facts; for a posted alert its labels and annotations."},
	"Alert.scope":                     {desc: "shared: the alert is about a cause many tenants or jobs share (tenant and job then empty); affected lists them.", extra: obj{"enum": []string{model.ScopeShared}}},
	"Alert.affected":                  {desc: "What a shared alert covers."},
	"Alert.grouped_under":             {desc: "The fingerprint of the shared alert whose page this alert is folded into (not notified on its own)."},
	"Alert.silenced":                  {desc: "The firing was silenced: neither it nor its resolve is notified."},
	"Alert.inhibited":                 {desc: "A more important alert covers this one."},
	"Matcher.name":                    {extra: obj{"enum": slices.Clone(rules.SilenceLabels)}},
	"Matcher.value":                   {desc: "The value, or with is_regex an RE2 expression anchored at both ends."},
	"Matcher.is_equal":                {desc: "false: the matcher passes labels that do not match (!=, !~); true when absent."},
	"MatcherIn.name":                  {extra: obj{"enum": slices.Clone(rules.SilenceLabels)}},
	"MatcherIn.value":                 {desc: "Required unless is_regex or negative; with is_regex an RE2 expression anchored at both ends."},
	"MatcherIn.is_equal":              {desc: "false: the matcher passes labels that do not match (!=, !~); true when absent."},
	"Silence.comment":                 {extra: maxLen(1024)},
	"Silence.created_by":              {desc: "The name of the token that created it."},
	"SilenceRequest.matchers":         {desc: "An alert is silenced when every matcher matches; at least one must not match an empty label; a tenant-scoped token needs an exact, positive tenant matcher on one of its tenants.", extra: obj{"minItems": 1}},
	"SilenceRequest.starts_at":        {desc: "Now when absent; a silence that starts later is a maintenance window."},
	"SilenceRequest.ends_at":          {desc: "Must be after starts_at and not in the past."},
	"SilenceRequest.comment":          {extra: maxLen(1024)},
	"Notification.event":              {extra: obj{"enum": []string{"firing", "resolved", string(model.TransitionAcknowledged)}}},
	"Notification.status":             {extra: obj{"enum": outboxStates}},
	"Notification.attempts":           {extra: nonNegative},
	"Notification.ref":                {desc: "The receiver's id for the message (a Slack message ts)."},
	"Notification.group_key":          {desc: "Notifications of one key are sent together."},
	"PushResult.errors":               {desc: "Why items were rejected; at most the first 100.", extra: obj{"maxItems": maxItemErrors}},
	"ItemError.index":                 {desc: "The item's position in the body, from 0.", extra: nonNegative},
	"ItemError.line":                  {desc: "The line of a JSON-lines body, from 1.", extra: obj{"minimum": 1}},
	"PostableAlert.labels": {desc: "Label names match [a-zA-Z_][a-zA-Z0-9_]* (at most 128 bytes); tenant and etl_job place the alert on a job.",
		replace: obj{"type": "object", "required": []string{"alertname"}, "properties": obj{"alertname": obj{"type": "string", "minLength": 1, "maxLength": 1024}},
			"additionalProperties": obj{"type": "string", "maxLength": 1024}}},
	"PostableAlert.annotations": {desc: "summary (or description) becomes the alert's summary.", replace: obj{"type": "object", "additionalProperties": obj{"type": "string", "maxLength": 4096}}},
	"PostableAlert.startsAt":    {desc: "Now when absent."},
	"PostableAlert.endsAt":      {desc: "When absent, five minutes after now (the alert resolves unless posted again)."},
	"PostableSilence.id":        {desc: "Must be empty: updating a silence is not supported.", extra: obj{"maxLength": 0}},
	"PostableSilence.matchers":  {extra: obj{"minItems": 1}},
	"PostableSilence.startsAt":  {desc: "Now when absent or in the past."},
	"PostableSilence.createdBy": {desc: "Kept in the comment when it differs from the token's name."},
	"PostableSilence.comment":   {extra: maxLen(1024)},
	"PostableMatcher.name":      {desc: "alertname, tenant, job, severity, run_id or source.", extra: obj{"enum": []string{"alertname", "tenant", "job", "severity", "run_id", "source"}}},
	"PostableMatcher.isEqual":   {desc: "false: a negative matcher (!=, !~); true when absent."},
	"PingResult.run_id":         {desc: "The run the ping opened, kept alive or closed (?rid=, or derived from the start time).", extra: maxLen(model.MaxRunIDLen)},
	"PingResult.duplicate":      {desc: "The run was already in this state (a retried ping): nothing was stored."},
	"ErrorBody.code":            {desc: "A machine-readable reason; each answer lists the ones it can carry."},
	"ErrorBody.details":         {desc: "More about the error, when there is more."},
}

// requestRequired are the fields a request schema requires (the handlers'
// validation, not json tags, decides); each request schema is listed.
var requestRequired = map[string][]string{
	"ObservationIn":   {"at", "tenant", "job", "run_id", "state"},
	"QualityIn":       nil,
	"SilenceRequest":  {"matchers", "ends_at"},
	"MatcherIn":       {"name", "value"},
	"PostableAlert":   {"labels"},
	"PostableSilence": {"matchers", "endsAt"},
	"PostableMatcher": {"name", "value"},
}

// closedRequests refuse unknown fields (their decoders disallow them).
var closedRequests = map[string]bool{"ObservationIn": true, "QualityIn": true, "SilenceRequest": true, "MatcherIn": true}

// componentNames names the types whose Go name is not the component's;
// anonNames the anonymous struct types of fields.
var componentNames = map[reflect.Type]string{
	reflect.TypeFor[store.OutboxItem]():  "Notification",
	reflect.TypeFor[silenceRequest]():    "SilenceRequest",
	reflect.TypeFor[amPostable]():        "PostableAlert",
	reflect.TypeFor[amPostableSilence](): "PostableSilence",
	reflect.TypeFor[model.Quality]():     "Quality",
	reflect.TypeFor[model.Observation](): "Observation",
}

var anonNames = map[string]string{"PostableSilence.matchers": "PostableMatcher"}

var typeDocs = map[string]string{
	"Observation":     "What a source saw of one run at one moment.",
	"ObservationIn":   "One pushed observation. Unknown fields are refused; times are RFC 3339 (an empty string counts as absent).",
	"Run":             "A run as the hub knows it from its observations.",
	"StatusRow":       "One tenant/job: its current run and what the rules know of it.",
	"JobView":         "What the rules know of a job beyond its runs: risk, prediction, active alerts.",
	"Outcome":         "A night's result against its deadline.",
	"JobSpec":         "A configured job.",
	"SourceView":      "One status source's health and the tenants it feeds.",
	"DependencyView":  "The latest measurement of one dependency or queue, and its age.",
	"Alert":           "One alert (one life of a fingerprint).",
	"AlertView":       "One alert (one life of a fingerprint), with its summary's parts.",
	"TextPart":        "A piece of a reason or a summary: its text, and the instant it names when it is a time.",
	"Silence":         "Mutes the alerts that match all its matchers between starts_at and ends_at.",
	"SilenceRequest":  "A new silence.",
	"Notification":    "One notification in the outbox (to one receiver).",
	"PushResult":      "How a push went, item by item.",
	"PingResult":      "The run a ping reported on.",
	"PostableAlert":   "An alert in Alertmanager's API v2 format, as Prometheus posts it.",
	"PostableSilence": "A silence in Alertmanager's API v2 format, as amtool posts it.",
	"ErrorBody":       "What went wrong.",
}

// typeExamples show a request as a user would send it (the linters check
// them against their schemas).
var typeExamples = map[string]obj{
	"ObservationIn": {"at": "2026-09-01T05:02:00Z", "source": "importer", "tenant": "miami-dade", "job": "roster-import",
		"run_id": "miami-dade/roster-import/2026-09-01#1", "state": "running", "stage": "loading",
		"started_at": "2026-09-01T04:15:00Z", "updated_at": "2026-09-01T05:01:40Z", "rows_done": 120000, "rows_total": 3000000,
		"finished_at": nil, "error": ""},
	"SilenceRequest": {"matchers": []obj{{"name": "tenant", "value": "miami-dade"}, {"name": "rule", "value": "stalled|running-too-long", "is_regex": true}},
		"starts_at": "2026-09-01T02:00:00Z", "ends_at": "2026-09-01T07:00:00Z", "comment": "SIS maintenance window"},
	"PostableAlert": {"labels": obj{"alertname": "SFTPDiskFull", "severity": "critical", "instance": "sftp-1"},
		"annotations": obj{"summary": "the SFTP host's disk is 97% full"}, "startsAt": "2026-09-01T03:10:00Z",
		"generatorURL": "http://prometheus:9090/graph?g0.expr=..."},
	"PostableSilence": {"matchers": []obj{{"name": "alertname", "value": "SFTPDiskFull", "isRegex": false, "isEqual": true}},
		"startsAt": "2026-09-01T06:15:00Z", "endsAt": "2026-09-01T08:00:00Z", "createdBy": "oncall", "comment": "disk swap"},
}

// typeSchemas are the types with a JSON form of their own.
var typeSchemas = map[reflect.Type]obj{
	reflect.TypeFor[time.Time]():        {"type": "string", "format": "date-time"},
	reflect.TypeFor[model.Duration]():   {"type": "string", "description": "A Go duration (20m, 1h30m0s).", "pattern": `^(0s|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`},
	reflect.TypeFor[model.State]():      {"type": "string", "enum": runStates},
	reflect.TypeFor[model.AlertState](): {"type": "string", "enum": alertStates},
}

type docGen struct {
	schemas  obj
	types    map[string]reflect.Type
	request  map[string]bool
	usedDocs map[string]bool
	errBody  obj
	err      error
}

func (g *docGen) fail(format string, args ...any) {
	if g.err == nil {
		g.err = fmt.Errorf(format, args...)
	}
}

func clone(s obj) obj {
	b, _ := json.Marshal(s)
	var out obj
	json.Unmarshal(b, &out)
	return out
}

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

// answer and request are the components for Go type t as answered and as
// accepted in a request body.
func (g *docGen) answer(t reflect.Type) obj    { return g.component(t, false) }
func (g *docGen) requestOf(t reflect.Type) obj { return g.component(t, true) }

func (g *docGen) component(t reflect.Type, request bool) obj {
	name := componentNames[t]
	if name == "" {
		name = t.Name()
	}
	if request && !strings.HasPrefix(name, "Postable") && name != "SilenceRequest" {
		name += "In"
	}
	return g.named(name, t, request)
}

func (g *docGen) named(name string, t reflect.Type, request bool) obj {
	if prev, ok := g.types[name]; ok {
		if prev != t || g.request[name] != request {
			g.fail("component %s: two types (%v and %v)", name, prev, t)
		}
		return ref(name)
	}
	g.types[name], g.request[name] = t, request
	g.schemas[name] = obj{} // a placeholder against recursion
	g.schemas[name] = g.object(name, t, request)
	return ref(name)
}

func (g *docGen) object(name string, t reflect.Type, request bool) obj {
	props, order := obj{}, []string{}
	var required []string
	g.fields(name, t, request, props, &order, &required)
	s := obj{"type": "object", "properties": props}
	if request {
		want, ok := requestRequired[name]
		if !ok {
			g.fail("request schema %s: list its required fields in requestRequired", name)
		}
		for _, f := range want {
			if props[f] == nil {
				g.fail("request schema %s: required field %s is not one of its fields", name, f)
			}
		}
		required = want
		if closedRequests[name] {
			s["additionalProperties"] = false
		}
	}
	if len(required) > 0 {
		s["required"] = required
	}
	if d := typeDocs[name]; d != "" {
		s["description"] = d
	}
	if ex, ok := typeExamples[name]; ok {
		s["example"] = ex
	}
	return s
}

func (g *docGen) fields(owner string, t reflect.Type, request bool, props obj, order, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			// The embedded type's fields keep its docs ("Owner|Embedded")
			// where the owner only adds to it.
			if inheritsDocs[owner] {
				g.fields(owner+"|"+ft.Name(), ft, request, props, order, required)
			} else {
				g.fields(owner, ft, request, props, order, required)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := slices.Contains(strings.Split(opts, ","), "omitempty") || slices.Contains(strings.Split(opts, ","), "omitzero")
		owners := strings.Split(owner, "|")
		key := owners[0] + "." + name
		var s obj
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && ft.Elem().Name() == "" {
			an := anonNames[key]
			if an == "" {
				g.fail("%s: name its anonymous element type in anonNames", key)
				an = owners[0] + f.Name
			}
			s = obj{"type": "array", "items": g.named(an, ft.Elem(), request)}
		} else {
			s = g.schema(ft, request)
		}
		nullable := ft.Kind() == reflect.Pointer && (request || !omit)
		docKey := key
		d, ok := fieldDocs[key]
		for _, o := range owners[1:] {
			if ok {
				break
			}
			docKey = o + "." + name
			d, ok = fieldDocs[docKey]
		}
		if ok {
			g.usedDocs[docKey] = true
			if d.replace != nil {
				s = clone(d.replace)
			}
			if _, isRef := s["$ref"]; isRef && (d.desc != "" || len(d.extra) > 0) {
				s = obj{"allOf": []any{s}}
			}
			for k, v := range d.extra {
				s[k] = v
			}
			if d.desc != "" {
				s["description"] = d.desc
			}
		}
		if nullable {
			if _, isRef := s["$ref"]; isRef {
				s = obj{"allOf": []any{s}}
			}
			if _, ok := s["allOf"]; ok {
				s["type"] = "object"
			}
			s["nullable"] = true
		}
		props[name] = s
		*order = append(*order, name)
		if !request && !omit {
			*required = append(*required, name)
		}
	}
}

func (g *docGen) schema(t reflect.Type, request bool) obj {
	if s, ok := typeSchemas[t]; ok {
		return clone(s)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem(), request)
	case reflect.Struct:
		if t.Name() == "" {
			g.fail("anonymous struct %v: name it in anonNames", t)
			return obj{"type": "object"}
		}
		return g.component(t, request)
	case reflect.String:
		return obj{"type": "string"}
	case reflect.Bool:
		return obj{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return obj{"type": "integer", "format": "int64"}
	case reflect.Int32:
		return obj{"type": "integer", "format": "int32"}
	case reflect.Uint64, reflect.Uint:
		return obj{"type": "integer", "format": "int64", "minimum": 0}
	case reflect.Float64:
		return obj{"type": "number", "format": "double"}
	case reflect.Slice:
		return obj{"type": "array", "items": g.schema(t.Elem(), request)}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			g.fail("map %v: keys must be strings", t)
		}
		if t.Elem().Kind() == reflect.Interface {
			return obj{"type": "object", "additionalProperties": true}
		}
		return obj{"type": "object", "additionalProperties": g.schema(t.Elem(), request)}
	case reflect.Interface:
		return obj{}
	}
	g.fail("type %v has no JSON schema here", t)
	return obj{}
}

// Operations.

type resp struct {
	code    int
	desc    string
	ctype   string // application/json when empty and schema is set
	schema  obj    // nil: no body
	errs    []string
	headers obj
}

type op struct {
	method, path string
	id, tag      string
	summary      string
	desc         string
	role         string // the least role; "" with public
	public       bool
	params       []obj
	body         obj
	bodyDesc     string
	bodyType     string // the body's media type; application/json when empty
	bodyOptional bool
	resps        []resp
}

func okR(code int, desc string, schema obj) resp { return resp{code: code, desc: desc, schema: schema} }
func errR(code int, desc string, codes ...string) resp {
	return resp{code: code, desc: desc, errs: codes}
}

var (
	r401 = resp{code: 401, desc: "No bearer token, or one the hub does not know.", errs: []string{"unauthorized"},
		headers: obj{"WWW-Authenticate": obj{"description": "Bearer realm=\"etlhub\"", "schema": obj{"type": "string"}}}}
	r503 = resp{code: 503, desc: "The store did not answer; retry after Retry-After seconds.", errs: []string{"store_error"},
		headers: obj{"Retry-After": obj{"description": "Seconds to wait before retrying.", "schema": obj{"type": "integer"}}}}
)

func r403Role(role string) resp {
	return errR(403, "The token's role is below "+role+".", "forbidden")
}

func pathParam(name, desc string, s obj) obj {
	return obj{"name": name, "in": "path", "required": true, "description": desc, "schema": s}
}

func queryParam(name, desc string, s obj) obj {
	return obj{"name": name, "in": "query", "description": desc, "schema": s}
}

func str() obj                 { return obj{"type": "string"} }
func strEnum(vs ...string) obj { return obj{"type": "string", "enum": vs} }
func arrOf(items obj) obj      { return obj{"type": "array", "items": items} }
func strMap() obj              { return obj{"type": "object", "additionalProperties": str()} }
func dateTime() obj            { return obj{"type": "string", "format": "date-time"} }
func closed(required []string, props obj) obj {
	s := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func openAPIOperations(g *docGen) []op {
	var (
		run         = g.answer(reflect.TypeFor[model.Run]())
		observation = g.answer(reflect.TypeFor[model.Observation]())
		alert       = g.answer(reflect.TypeFor[model.Alert]())
		silence     = g.answer(reflect.TypeFor[rules.Silence]())
		jobView     = g.answer(reflect.TypeFor[JobView]())
		jobSpec     = g.answer(reflect.TypeFor[model.JobSpec]())
		pushResult  = g.answer(reflect.TypeFor[PushResult]())
		tenantPath  = pathParam("tenant", "The tenant.", obj{"type": "string", "maxLength": model.MaxNameLen})
		jobPath     = pathParam("job", "The job.", obj{"type": "string", "maxLength": model.MaxNameLen})
		tenantQuery = queryParam("tenant", "Only these tenants, each one the token may see: repeat the parameter for several (tenant=a&tenant=b), at most "+strconv.Itoa(maxTenantsAsked)+".",
			obj{"type": "array", "maxItems": maxTenantsAsked, "items": obj{"type": "string", "maxLength": model.MaxNameLen}})
	)
	g.schemas["StatusPage"] = closed([]string{"generated_at", "jobs"}, obj{
		"generated_at": dateTime(),
		"jobs":         arrOf(g.answer(reflect.TypeFor[StatusRow]())),
		"stale_since": obj{"type": "string", "format": "date-time",
			"description": "Present when the store did not answer: the jobs are the last ones read, at this time."},
	})
	g.schemas["JobDetail"] = closed([]string{"tenant", "job", "spec"}, obj{
		"tenant":       str(),
		"job":          str(),
		"spec":         obj{"type": "object", "nullable": true, "allOf": []any{jobSpec}, "description": "The job's configuration; null for a job known from pushes or collectors only."},
		"current_run":  obj{"allOf": []any{run}, "description": "The current run; absent when there is none."},
		"last_success": obj{"allOf": []any{run}, "description": "The last successful run; absent if none."},
		"view":         obj{"allOf": []any{jobView}, "description": "What the rules know of the job; absent on a hub without rules."},
	})
	g.schemas["DistrictPage"] = closed([]string{"tenant", "generated_at", "jobs"}, obj{
		"tenant":       str(),
		"generated_at": dateTime(),
		"jobs":         arrOf(g.answer(reflect.TypeFor[DistrictJob]())),
	})
	g.schemas["RunPage"] = closed([]string{"runs", "next"}, obj{
		"runs": arrOf(run),
		"next": obj{"type": "string", "description": "Pass as before= for the next (older) page; empty on the last page."},
	})
	g.schemas["RunDetail"] = closed([]string{"run", "observations"}, obj{
		"run":          run,
		"observations": obj{"type": "array", "items": observation, "maxItems": 5000, "description": "The run's observations (at most 5000)."},
	})
	amAlert := closed([]string{"labels", "annotations", "startsAt", "endsAt", "updatedAt", "fingerprint", "generatorURL", "receivers", "status"}, obj{
		"labels":       strMap(),
		"annotations":  strMap(),
		"startsAt":     dateTime(),
		"endsAt":       dateTime(),
		"updatedAt":    dateTime(),
		"fingerprint":  obj{"type": "string", "description": "The alert's id in this hub (the id of POST /api/v1/alerts/{id}/ack)."},
		"generatorURL": str(),
		"receivers":    arrOf(closed([]string{"name"}, obj{"name": str()})),
		"status": closed([]string{"state", "silencedBy", "inhibitedBy", "mutedBy"}, obj{
			"state":       strEnum("active", "suppressed"),
			"silencedBy":  arrOf(str()),
			"inhibitedBy": arrOf(str()),
			"mutedBy":     arrOf(str()),
		}),
	})
	amAlert["description"] = "A firing alert in Alertmanager's API v2 format."
	g.schemas["GettableAlert"] = amAlert
	amSilence := closed([]string{"id", "status", "updatedAt", "matchers", "startsAt", "endsAt", "createdBy", "comment"}, obj{
		"id":        str(),
		"status":    closed([]string{"state"}, obj{"state": strEnum("active", "pending", "expired")}),
		"updatedAt": dateTime(),
		"matchers": arrOf(closed([]string{"name", "value", "isRegex", "isEqual"}, obj{
			"name": str(), "value": str(), "isRegex": obj{"type": "boolean"}, "isEqual": obj{"type": "boolean"},
		})),
		"startsAt":  dateTime(),
		"endsAt":    dateTime(),
		"createdBy": str(),
		"comment":   str(),
	})
	amSilence["description"] = "A silence in Alertmanager's API v2 format."
	g.schemas["GettableSilence"] = amSilence

	list := func(field string, items obj) obj { return closed([]string{field}, obj{field: arrOf(items)}) }
	viewer, operator := "viewer", "operator"
	pushRole := "the push role (ingest: auth.push_role, operator by default)"
	return append(append([]op{
		{method: "GET", path: "/healthz", id: "getHealth", tag: "operations", public: true,
			summary: "Liveness", desc: "Answers while the process serves HTTP; touches nothing else.",
			resps: []resp{okR(200, "The process is alive.", closed([]string{"status"}, obj{"status": strEnum("ok")}))}},
		{method: "GET", path: "/readyz", id: "getReadiness", tag: "operations", public: true,
			summary: "Readiness", desc: "Answers 200 when the store answers a ping within 2 seconds; 503 while it does not, saying since when and why (the hub pings it every second).",
			resps: []resp{okR(200, "Ready to serve.", closed([]string{"status"}, obj{"status": strEnum("ready")})),
				resp{code: 503, desc: "The store does not answer.", errs: []string{"store_unreachable"},
					headers: obj{"Retry-After": obj{"description": "Seconds to wait before retrying.", "schema": obj{"type": "integer"}}}}}},
		{method: "GET", path: "/metrics", id: "getMetrics", tag: "operations", role: viewer,
			summary: "Prometheus metrics", desc: "The hub's metrics in the Prometheus text format. Needs a token without tenants, unless auth.metrics_public serves it to anyone.",
			resps: []resp{{code: 200, desc: "The metrics.", ctype: "text/plain", schema: str()}, r401,
				errR(403, "The token is scoped to tenants; the metrics cover every tenant.", "forbidden")}},
		{method: "GET", path: "/api/v1/openapi.json", id: "getOpenAPI", tag: "operations", public: true,
			summary: "This document", desc: "The OpenAPI document of this API.",
			resps: []resp{okR(200, "The document.", obj{"type": "object", "additionalProperties": true})}},
		{method: "GET", path: "/", id: "getDashboard", tag: "dashboard", public: true,
			summary: "The dashboard", desc: "The dashboard's page; it reads the API with the token the user enters.",
			resps: []resp{{code: 200, desc: "The page.", ctype: "text/html", schema: str()}}},
		{method: "GET", path: "/ui/{file}", id: "getDashboardFile", tag: "dashboard", public: true,
			summary: "The dashboard's files", desc: "The dashboard's scripts, styles and pages, served from the binary.",
			params: []obj{pathParam("file", "The file's path under ui/ (app.js, style.css, index.html).", str())},
			resps: []resp{{code: 200, desc: "The file.", ctype: "*/*", schema: str()},
				{code: 404, desc: "No such file.", ctype: "text/plain", schema: str()}}},

		{method: "GET", path: "/api/v1/status", id: "getStatus", tag: "status", role: viewer,
			summary: "Every job's current state", desc: "One row per tenant/job the token may see: configured jobs and those known from pushes or collectors, sorted by tenant and job.",
			params: []obj{tenantQuery, queryParam("state", "Only jobs whose current run is in this state (none: no run yet). Other values match nothing.",
				strEnum(append(slices.Clone(runStates), "none")...))},
			resps: []resp{okR(200, "The board.", ref("StatusPage")), r401,
				errR(403, "The tenant asked for is outside the token's scope.", "forbidden"), r503}},
		{method: "GET", path: "/api/v1/jobs/{tenant}/{job}", id: "getJob", tag: "jobs", role: viewer,
			summary: "One job", desc: "The job's spec, current run, last success and what the rules know of it.",
			params: []obj{tenantPath, jobPath},
			resps: []resp{okR(200, "The job.", ref("JobDetail")), r401,
				errR(403, "The tenant is outside the token's scope.", "forbidden"),
				errR(404, "No such job: not configured and never seen.", "not_found"), r503}},
		{method: "GET", path: "/api/v1/jobs/{tenant}/{job}/runs", id: "listJobRuns", tag: "jobs", role: viewer,
			summary: "A job's runs", desc: "The job's runs, newest first, a page at a time.",
			params: []obj{tenantPath, jobPath,
				queryParam("limit", "Runs per page.", obj{"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
				queryParam("before", "The next value of the previous page.", str())},
			resps: []resp{okR(200, "A page of runs.", ref("RunPage")),
				errR(400, "limit is not 1 to 500, or before is not a cursor this API returned.", "bad_request"), r401,
				errR(403, "The tenant is outside the token's scope.", "forbidden"), r503}},
		{method: "GET", path: "/api/v1/jobs/{tenant}/{job}/nights", id: "listJobNights", tag: "jobs", role: viewer,
			summary: "A job's last nights against its deadline",
			desc:    "A configured job's last nights, newest first, each judged against its deadline (on time, late, missed, failed, or still running), with files arrived and data quality, and the on-time rate over the judged nights and the last seven.",
			params:  []obj{tenantPath, jobPath, queryParam("limit", "How many nights.", obj{"type": "integer", "minimum": 1, "maximum": 90, "default": 30})},
			resps: []resp{okR(200, "The nights.", g.answer(reflect.TypeFor[NightsView]())),
				errR(400, "limit is not 1 to 90.", "bad_request"), r401,
				errR(403, "The tenant is outside the token's scope.", "forbidden"),
				errR(404, "No such configured job (nights need its schedule and deadline).", "not_found"), r503}},
		{method: "GET", path: "/api/v1/district/{tenant}", id: "getDistrict", tag: "status", role: viewer,
			summary: "The district's own page",
			desc:    "Per job of the tenant: tonight's upload step by step (first file seen, upload complete, validated, loaded, published) with their times, the data-quality report with what each finding means and how to fix it, and the last 14 nights.",
			params:  []obj{tenantPath},
			resps: []resp{okR(200, "The district's page.", ref("DistrictPage")), r401,
				errR(403, "The tenant is outside the token's scope.", "forbidden"),
				errR(404, "The tenant has no jobs.", "not_found"), r503}},
		{method: "GET", path: "/api/v1/events", id: "streamEvents", tag: "status", role: viewer,
			summary: "Changes as server-sent events",
			desc:    "A text/event-stream: hello first, then change events whose data names the tenants (those the token may see) with something new (or says all: true: read everything): observations stored, or, with nothing observed, what the rules and the alert lifecycle changed (a risk, an alert firing, acknowledged or resolved, tonight's outcome, a notification delivered; checked every second while a stream is open; shared alerts under the tenant \"\"); a comment every 10 s; the stream ends after 50 s and the client reconnects. Every event has an id; reconnecting with the last one heard in Last-Event-ID starts the stream with what changed since (all: true when the hub cannot tell: it restarted, or too much changed).",
			params:  []obj{{"name": "Last-Event-ID", "in": "header", "description": "The id of the last event heard on an earlier stream.", "schema": str()}},
			resps:   []resp{{code: 200, desc: "The stream.", ctype: "text/event-stream", schema: str()}, r401}},
		{method: "GET", path: "/api/v1/runs/{run_id}", id: "getRun", tag: "runs", role: viewer,
			summary: "One run and its observations", desc: "A run by its run_id. Run ids may hold / and #: percent-encode them. A run_id several jobs use needs tenant and job.",
			params: []obj{pathParam("run_id", "The run's id, percent-encoded.", obj{"type": "string", "maxLength": model.MaxRunIDLen}),
				queryParam("tenant", "The run's tenant.", obj{"type": "string", "maxLength": model.MaxNameLen}),
				queryParam("job", "The run's job.", obj{"type": "string", "maxLength": model.MaxNameLen})},
			resps: []resp{okR(200, "The run.", ref("RunDetail")), r401,
				errR(404, "No such run the token may see.", "not_found"),
				errR(409, "Several jobs have a run of this id; add tenant and job.", "ambiguous_run_id"), r503}},
		{method: "GET", path: "/api/v1/sources", id: "listSources", tag: "sources", role: viewer,
			summary: "Status sources and their health", desc: "Every collector's source; a tenant-scoped token sees those that feed its tenants.",
			resps: []resp{okR(200, "The sources.", list("sources", g.answer(reflect.TypeFor[SourceView]()))), r401, r503}},
		{method: "GET", path: "/api/v1/dependencies", id: "listDependencies", tag: "sources", role: viewer,
			summary: "Dependencies and their latest measurements",
			desc: "The latest probe of every dependency (Redis, MongoDB, SFTP endpoints, the hub's store, queues), by subject. " +
				"A tenant-scoped token sees its tenants' dependencies only; shared infrastructure is for tokens of every tenant.",
			resps: []resp{okR(200, "The dependencies.", list("dependencies", g.answer(reflect.TypeFor[DependencyView]()))), r401, r503}},
		{method: "GET", path: "/api/v1/alerts", id: "listAlerts", tag: "alerts", role: viewer,
			summary: "Alerts", desc: "Alerts the token may see, pending and firing by default.",
			params: []obj{tenantQuery,
				queryParam("state", "Comma-separated states.", obj{"type": "string", "pattern": "^(pending|firing|resolved)(,(pending|firing|resolved))*$", "default": "pending,firing"}),
				queryParam("rule", "Only this rule.", str()),
				queryParam("severity", "Only this severity.", strEnum(severities...)),
				queryParam("limit", "At most this many.", obj{"type": "integer", "minimum": 1, "maximum": 1000})},
			resps: []resp{okR(200, "The alerts.", list("alerts", g.answer(reflect.TypeFor[AlertView]()))),
				errR(400, "state or limit is not valid.", "bad_request"), r401,
				errR(403, "The tenant asked for is outside the token's scope.", "forbidden"), r503}},
		{method: "POST", path: "/api/v1/alerts/{id}/ack", id: "ackAlert", tag: "alerts", role: operator,
			summary: "Acknowledge an alert", desc: "Marks a firing alert acknowledged (in PagerDuty too).",
			params: []obj{pathParam("id", "The alert's id.", str())},
			resps: []resp{okR(200, "The acknowledged alert.", alert), r401, r403Role(operator),
				errR(404, "No such alert the token may see.", "not_found"),
				errR(409, "The alert is not firing.", "not_firing"), r503}},
		{method: "GET", path: "/api/v1/silences", id: "listSilences", tag: "silences", role: viewer,
			summary: "Active and planned silences", desc: "A tenant-scoped token sees the silences pinned to its tenants.",
			resps: []resp{okR(200, "The silences.", list("silences", silence)), r401, r503}},
		{method: "POST", path: "/api/v1/silences", id: "createSilence", tag: "silences", role: operator,
			summary: "Create a silence", desc: "Silences matching alerts between starts_at and ends_at. Active and planned silences are capped (silences.max_active).",
			body: g.requestOf(reflect.TypeFor[silenceRequest]()),
			resps: []resp{okR(201, "The silence.", silence),
				errR(400, "The body is not a silence (bad JSON, an unknown field).", "invalid_json"), r401,
				errR(403, "The token's role is below operator, or a tenant-scoped token did not pin one of its tenants.", "forbidden"),
				errR(409, "As many silences as silences.max_active are active or planned.", "too_many_silences"),
				errR(413, "The body is over 64 KiB.", "body_too_large"),
				errR(422, "The silence is not valid (no matchers, an unknown label, a bad regex, ends_at not after starts_at or in the past).", "invalid_silence"), r503}},
		{method: "DELETE", path: "/api/v1/silences/{id}", id: "expireSilence", tag: "silences", role: operator,
			summary: "Expire a silence", desc: "Ends an active or planned silence now.",
			params: []obj{pathParam("id", "The silence's id.", str())},
			resps: []resp{{code: 204, desc: "Expired."}, r401,
				errR(403, "The token's role is below operator, or the silence is outside its tenants.", "forbidden"),
				errR(404, "No active or planned silence of this id.", "not_found"), r503}},
		{method: "GET", path: "/api/v1/notifications", id: "listNotifications", tag: "notifications", role: viewer,
			summary: "The outbox", desc: "The latest 200 notifications (to PagerDuty, Slack, ...) the token may see.",
			params: []obj{queryParam("status", "Only this status.", strEnum(outboxStates...))},
			resps: []resp{okR(200, "The notifications.", list("notifications", g.answer(reflect.TypeFor[store.OutboxItem]()))),
				errR(400, "status is not pending, delivered or failed.", "bad_request"), r401, r503}},
		{method: "GET", path: "/api/v1/cluster", id: "getCluster", tag: "operations", role: "admin",
			summary: "The replicas and the leader's lease",
			desc:    "Every replica sharing the store (seen in the last ten lease_ttl), its role (leader or follower) and when it was last seen, and the leader's lease with its fencing token. On SQLite the one hub, always the leader. Needs an admin token without tenants.",
			resps: []resp{okR(200, "The cluster.", g.answer(reflect.TypeFor[ClusterStatus]())), r401,
				errR(403, "The token's role is below admin, or it is scoped to tenants.", "forbidden"), r503}},
		{method: "POST", path: "/api/v1/reload", id: "reloadConfig", tag: "operations", role: "admin",
			summary: "Re-read the config",
			desc:    "Reads the config file again and, when it has no problems, rebuilds this replica's services with it (as SIGHUP does); with problems the running config stays, and they are listed with their lines and keys. With replicas on PostgreSQL, a reload that runs is announced in the store (replicas says whether that worked) and every other replica reads its own config file again within a few seconds, with the same checks (each logs its outcome). The store and listen keys need a restart. Needs an admin token without tenants.",
			resps: []resp{okR(200, "The new config runs.", g.answer(reflect.TypeFor[ReloadResult]())), r401,
				errR(403, "The token's role is below admin, or it is scoped to tenants.", "forbidden"),
				errR(404, "This hub was not started from a config file.", "not_found"),
				okR(422, "The new config has problems; the running one stays.", g.answer(reflect.TypeFor[ReloadResult]())),
				errR(500, "The reload failed; the logs say why.", "reload_failed")}},
		{method: "POST", path: "/api/v1/webhooks/pagerduty", id: "receivePagerDutyWebhook", tag: "webhooks", public: true,
			summary: "PagerDuty webhook", desc: "PagerDuty's V3 webhook events (acknowledge, resolve); signed with X-PagerDuty-Signature instead of a bearer token.",
			params: []obj{{"name": "X-PagerDuty-Signature", "in": "header", "required": true, "description": "v1=HMAC-SHA256 of the body with the webhook's secret.", "schema": str()}},
			body:   obj{"type": "object", "description": "A PagerDuty V3 webhook payload.", "properties": obj{"event": obj{"type": "object", "additionalProperties": true}}},
			resps: []resp{{code: 204, desc: "Taken."},
				okR(200, "An event already taken; not acted on again.", closed([]string{"status"}, obj{"status": strEnum("duplicate")})),
				errR(400, "Not a webhook event, or signed too long ago or too far ahead (a replay).", "invalid_json", "stale_event"),
				errR(401, "The signature does not verify.", "bad_signature"),
				errR(413, "The body is over 1 MiB.", "body_too_large"), r503}},
		{method: "POST", path: "/api/v1/observations", id: "pushObservations", tag: "ingest", role: "push",
			summary: "Push observations", desc: "One observation, a JSON array of them, or JSON lines. Each item is judged on its own; the good ones are stored in one transaction. Needs " + pushRole + ".",
			bodyDesc: "application/json: one observation or an array of them; application/x-ndjson: one observation a line (the media type is not checked: the body's shape tells).",
			body:     obj{"oneOf": []any{g.requestOf(reflect.TypeFor[model.Observation]()), obj{"type": "array", "items": ref("ObservationIn"), "minItems": 1, "maxItems": DefaultMaxItems}}},
			resps: []resp{okR(200, "At least one item was accepted (or was a duplicate); rejected lists the others.", pushResult),
				errR(400, "The body is none of the three shapes, or holds no observation.", "invalid_json", "bad_request", "empty"), r401,
				errR(403, "The token's role is below the push role.", "forbidden"),
				errR(413, "The body is over ingest.max_body_bytes, or holds more than ingest.max_items observations.", "body_too_large", "too_many_items"),
				okR(422, "No item was accepted; errors says why.", pushResult), r503}},
	}, pingOperations(g)...), []op{
		{method: "GET", path: "/api/v2/status", id: "getAlertmanagerStatus", tag: "alertmanager", role: viewer,
			summary: "Alertmanager status (amtool)", desc: "Alertmanager's API v2 status, so amtool can talk to the hub.",
			resps: []resp{okR(200, "The status.", closed([]string{"cluster", "config", "uptime", "versionInfo"}, obj{
				"cluster": closed([]string{"status", "peers"}, obj{"status": strEnum("disabled"), "peers": obj{"type": "array", "maxItems": 0, "description": "Always empty: a hub has no Alertmanager cluster.",
					"items": closed([]string{"name", "address"}, obj{"name": str(), "address": str()})}}),
				"config": closed([]string{"original"}, obj{"original": str()}),
				"uptime": obj{"type": "string", "format": "date-time", "description": "When the API started."},
				"versionInfo": closed([]string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}, obj{
					"version": str(), "revision": str(), "branch": str(), "buildUser": str(), "buildDate": str(), "goVersion": str()}),
			})), r401}},
		{method: "GET", path: "/api/v2/alerts", id: "getAlertmanagerAlerts", tag: "alertmanager", role: viewer,
			summary: "Firing alerts, Alertmanager's format (amtool alert query)", desc: "Firing alerts the token may see, with their labels in Alertmanager's terms (alertname is the rule).",
			params: []obj{
				{"name": "filter", "in": "query", "style": "form", "explode": true, "description": "Matchers: name=value, name!=value, name=~regex, name!~regex.", "schema": arrOf(str())},
				queryParam("active", "Include alerts that are neither silenced nor inhibited.", obj{"type": "boolean", "default": true}),
				queryParam("silenced", "Include silenced alerts.", obj{"type": "boolean", "default": true}),
				queryParam("inhibited", "Include inhibited alerts.", obj{"type": "boolean", "default": true}),
				queryParam("unprocessed", "Accepted and ignored (every alert is processed).", obj{"type": "boolean"}),
				queryParam("receiver", "Accepted and ignored.", str())},
			resps: []resp{okR(200, "The alerts.", arrOf(ref("GettableAlert"))),
				errR(400, "A filter is not a matcher, or a flag is not true or false.", "Bad Request"), r401, r503}},
		{method: "POST", path: "/api/v2/alerts", id: "postAlertmanagerAlerts", tag: "alertmanager", role: "push",
			summary: "Post alerts, Alertmanager's format (Prometheus)", desc: "Alerts from Prometheus alert rules join the hub's alerts, routing and silences. Needs " + pushRole + "; a tenant-scoped token posts alerts labelled with its tenants only.",
			body: obj{"type": "array", "items": g.requestOf(reflect.TypeFor[amPostable]()), "maxItems": 1000},
			resps: []resp{{code: 200, desc: "Taken."},
				errR(400, "Not a list of alerts, more than 1000, no alertname, a bad label, or endsAt before startsAt.", "Bad Request"), r401,
				errR(403, "The token's role is below the push role, or an alert's tenant label is outside the token's tenants.", "forbidden", "Forbidden"),
				errR(413, "The body is over ingest.max_body_bytes.", "Request Entity Too Large"),
				errR(501, "This hub takes no alerts.", "Not Implemented")}},
		{method: "GET", path: "/api/v2/silences", id: "getAlertmanagerSilences", tag: "alertmanager", role: viewer,
			summary: "Silences, Alertmanager's format (amtool silence query)", desc: "Active and planned silences the token may see that match every filter, sorted by id (the rule label is named alertname). A filter is matched, as Alertmanager does, against the value of the silence's matcher of that label.",
			params: []obj{{"name": "filter", "in": "query", "style": "form", "explode": true, "description": "Matchers: name=value, name!=value, name=~regex, name!~regex.", "schema": arrOf(str())}},
			resps:  []resp{okR(200, "The silences.", arrOf(ref("GettableSilence"))), errR(400, "A filter is not a matcher.", "Bad Request"), r401, r503}},
		{method: "DELETE", path: "/api/v2/silence/{id}", id: "deleteAlertmanagerSilence", tag: "alertmanager", role: operator,
			summary: "Expire a silence, Alertmanager's format (amtool silence expire)", desc: "Expires an active or planned silence, as DELETE /api/v1/silences/{id}.",
			params: []obj{{"name": "id", "in": "path", "required": true, "description": "The silence's id.", "schema": str()}},
			resps: []resp{{code: 200, desc: "Expired."}, r401,
				errR(403, "The token's role is below operator, or the silence is outside a tenant-scoped token's tenants.", "forbidden", "Forbidden"),
				errR(404, "No active or planned silence has this id.", "Not Found"), r503}},
		{method: "POST", path: "/api/v2/silences", id: "postAlertmanagerSilence", tag: "alertmanager", role: operator,
			summary: "Create a silence, Alertmanager's format (amtool silence add)", desc: "Creates a silence; the same cap as POST /api/v1/silences.",
			body: g.requestOf(reflect.TypeFor[amPostableSilence]()),
			resps: []resp{okR(200, "Created.", closed([]string{"silenceID"}, obj{"silenceID": str()})),
				errR(400, "Not a silence, an id (updates are not supported), a negative matcher, an unknown label, a bad regex, or endsAt not in the future.", "Bad Request"), r401,
				errR(403, "The token's role is below operator, or a tenant-scoped token did not pin one of its tenants.", "forbidden", "Forbidden"),
				errR(409, "As many silences as silences.max_active are active or planned.", "Conflict"),
				errR(413, "The body is over 64 KiB.", "Request Entity Too Large"), r503}},
		{method: "GET", path: "/api/v2/receivers", id: "getAlertmanagerReceivers", tag: "alertmanager", role: viewer,
			summary: "Receivers (amtool)", desc: "Alertmanager's receivers list; the hub's receivers are not listed here.",
			resps: []resp{okR(200, "The receivers.", obj{"type": "array", "maxItems": 0, "items": closed([]string{"name"}, obj{"name": str()})}), r401}},
	}...)
}

// pingOperations are the ping API's: a key in the path instead of a bearer
// token, by POST (with the output's last lines as the body) or by GET.
func pingOperations(g *docGen) []op {
	pingResult := g.answer(reflect.TypeFor[PingResult]())
	key := pathParam("key", "A ping key (auth.ping_keys): it names one tenant and job, and is a secret.",
		obj{"type": "string", "minLength": 16, "maxLength": 128, "pattern": `^[A-Za-z0-9._~-]+$`})
	action := pathParam("action", "start opens a run; heartbeat says it still runs; fail, or an exit code from 1 to 255, closes it as failed; 0 closes it as succeeded.",
		obj{"type": "string", "pattern": `^(start|heartbeat|fail|[0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5])$`})
	rid := queryParam("rid", "The client's id of the run (as healthchecks.io's rid), so that concurrent runs do not collide. Without it a start derives the run id from its time, and the other pings are about the job's most recent open run.",
		obj{"type": "string", "minLength": 1, "maxLength": maxRID, "pattern": `^[A-Za-z0-9._~:#@+-]+$`})
	updated := queryParam("updated_at", "Heartbeats: the job's last sign of progress (now when absent); a running run whose updated_at stops moving stalls.", dateTime())
	duration := queryParam("duration", "Success and failure: the seconds the run took, placing the start of a run whose start the hub never heard.",
		obj{"type": "number", "minimum": 0, "maximum": maxPingDuration.Seconds()})
	body := obj{"type": "string", "maxLength": MaxPingBody, "description": "The last lines of the job's output."}
	bodyDesc := "Optional: the last lines of the job's output (at most 100 KiB, or ingest.max_body_bytes when smaller). A failure keeps its end as the run's error, control characters and terminal escapes removed."
	resps := func(method string, withAction bool) []resp {
		rs := []resp{okR(200, "The run, as the ping left it.", pingResult),
			errR(400, "rid, updated_at or duration is malformed, or given to a ping it does not belong to.", "bad_request"),
			errR(404, "No such ping key (nothing says which keys exist), or no such ping.", "not_found")}
		if withAction {
			rs = append(rs, errR(409, "A start or heartbeat for a run (rid) that has finished.", "run_finished"))
		}
		if method == "POST" {
			rs = append(rs, errR(413, "The body is over 100 KiB (or ingest.max_body_bytes).", "body_too_large"))
		}
		return append(rs,
			errR(422, "The observation the ping makes is not valid (updated_at too far from now), or its job would exceed ingest.max_unconfigured_jobs.", "invalid_observation"),
			resp{code: 429, desc: "More than 10 pings a second with this key.", errs: []string{"rate_limited"},
				headers: obj{"Retry-After": obj{"description": "Seconds to wait.", "schema": obj{"type": "integer"}}}},
			r503)
	}
	success := "Closes the job's run (rid, or the most recent open one) as succeeded; without an open run, records a run that started when it ended (or duration before)."
	pinged := "start opens a run (state running), heartbeat keeps it alive, fail and exit codes 1 to 255 close it as failed (the exit code, the time it took and the end of the output become its error), 0 closes it as succeeded. Each ping is one observation through the push path: the same validation, rules and board."
	return []op{
		{method: "POST", path: "/ping/{key}", id: "pingSuccess", tag: "ping", public: true,
			summary: "Report a success", desc: success, params: []obj{key, rid, duration},
			body: body, bodyType: "text/plain", bodyOptional: true, bodyDesc: bodyDesc, resps: resps("POST", false)},
		{method: "GET", path: "/ping/{key}", id: "pingSuccessByGet", tag: "ping", public: true,
			summary: "Report a success (GET)", desc: success + " As POST, without a body.", params: []obj{key, rid, duration}, resps: resps("GET", false)},
		{method: "POST", path: "/ping/{key}/{action}", id: "ping", tag: "ping", public: true,
			summary: "Report a start, heartbeat, failure or exit code", desc: pinged, params: []obj{key, action, rid, updated, duration},
			body: body, bodyType: "text/plain", bodyOptional: true, bodyDesc: bodyDesc, resps: resps("POST", true)},
		{method: "GET", path: "/ping/{key}/{action}", id: "pingByGet", tag: "ping", public: true,
			summary: "Report a start, heartbeat, failure or exit code (GET)", desc: pinged + " As POST, without a body.", params: []obj{key, action, rid, updated, duration}, resps: resps("GET", true)},
	}
}

var openAPITags = []obj{
	{"name": "status", "description": "Every job's current state."},
	{"name": "jobs", "description": "One job and its runs."},
	{"name": "runs", "description": "One run and its observations."},
	{"name": "sources", "description": "The status sources the collectors read."},
	{"name": "alerts", "description": "What the rules and Prometheus raised."},
	{"name": "silences", "description": "Muting alerts, now or as maintenance windows."},
	{"name": "notifications", "description": "The outbox of pages and messages."},
	{"name": "ingest", "description": "Observations pushed by the jobs themselves."},
	{"name": "ping", "description": "Runs reported by any job that can run curl (healthchecks.io-style pings), with a ping key instead of a bearer token."},
	{"name": "webhooks", "description": "Events from PagerDuty."},
	{"name": "alertmanager", "description": "The part of Alertmanager's API v2 that Prometheus and amtool use."},
	{"name": "operations", "description": "Probes, metrics and this document."},
	{"name": "dashboard", "description": "The dashboard's page and files."},
}

func (g *docGen) errorSchema(codes []string) obj {
	body := clone(g.errBody)
	body["properties"].(obj)["code"].(obj)["enum"] = codes
	return closed([]string{"error"}, obj{"error": body})
}

func buildOpenAPI() ([]byte, error) {
	g := &docGen{schemas: obj{}, types: map[string]reflect.Type{}, request: map[string]bool{}, usedDocs: map[string]bool{}}
	// The error body is inlined in each error answer, with the codes it can carry.
	g.errBody = g.object("ErrorBody", reflect.TypeFor[apiError](), false)
	ops := openAPIOperations(g)

	paths := map[string]obj{}
	ids := map[string]bool{}
	for _, o := range ops {
		if ids[o.id] {
			return nil, fmt.Errorf("operationId %s is used twice", o.id)
		}
		ids[o.id] = true
		m := obj{"operationId": o.id, "tags": []string{o.tag}, "summary": o.summary, "description": o.desc}
		if o.public {
			m["security"] = []any{}
		} else {
			m["x-etlhub-role"] = o.role
		}
		if len(o.params) > 0 {
			m["parameters"] = o.params
		}
		if o.body != nil {
			ct := o.bodyType
			if ct == "" {
				ct = "application/json"
			}
			content := obj{ct: obj{"schema": o.body}}
			if o.id == "pushObservations" {
				content["application/x-ndjson"] = obj{"schema": ref("ObservationIn")}
			}
			m["requestBody"] = obj{"required": !o.bodyOptional, "content": content}
			if o.bodyDesc != "" {
				m["requestBody"].(obj)["description"] = o.bodyDesc
			}
		}
		rs := obj{}
		for _, r := range o.resps {
			e := obj{"description": r.desc}
			switch {
			case len(r.errs) > 0:
				e["content"] = obj{"application/json": obj{"schema": g.errorSchema(r.errs)}}
			case r.schema != nil:
				ct := r.ctype
				if ct == "" {
					ct = "application/json"
				}
				e["content"] = obj{ct: obj{"schema": r.schema}}
			}
			if r.headers != nil {
				e["headers"] = r.headers
			}
			code := fmt.Sprint(r.code)
			if rs[code] != nil {
				return nil, fmt.Errorf("%s: two answers %s", o.id, code)
			}
			rs[code] = e
		}
		m["responses"] = rs
		if paths[o.path] == nil {
			paths[o.path] = obj{}
		}
		paths[o.path][strings.ToLower(o.method)] = m
	}
	if g.err != nil {
		return nil, g.err
	}
	var stale []string
	for k := range fieldDocs {
		if !g.usedDocs[k] {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		return nil, fmt.Errorf("fieldDocs name fields no schema has (renamed or removed?): %v", stale)
	}
	for name := range typeExamples {
		if _, ok := g.schemas[name]; !ok {
			return nil, fmt.Errorf("typeExamples has %s, which is no component", name)
		}
	}
	for name := range requestRequired {
		if _, ok := g.schemas[name]; !ok {
			return nil, fmt.Errorf("requestRequired lists %s, which no request uses", name)
		}
	}

	doc := struct {
		OpenAPI    string         `json:"openapi"`
		Info       obj            `json:"info"`
		Servers    []obj          `json:"servers"`
		Tags       []obj          `json:"tags"`
		Security   []obj          `json:"security"`
		Paths      map[string]obj `json:"paths"`
		Components obj            `json:"components"`
	}{
		OpenAPI: "3.0.3",
		Info: obj{
			"title":   "etlhub hub API",
			"version": "1",
			"description": "Status, runs, alerts, silences and push ingest of etlhub's hub, and the part of Alertmanager's API v2 that Prometheus and amtool use. " +
				"Every operation but the probes, this document, the dashboard's files, the signed PagerDuty webhook and the pings (a ping key in the path, auth.ping_keys) needs a bearer token (auth.tokens); " +
				"x-etlhub-role names the least role (viewer < operator < admin; push is auth.push_role). A token scoped to tenants sees and changes only their data. " +
				"Errors are {\"error\": {\"code\", \"message\"}}; each answer lists the codes it can carry. Times are RFC 3339, in UTC.",
			"contact": obj{"name": "etlhub"},
			"license": obj{"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
		},
		Servers: []obj{{"url": "http://{listen}", "description": "The hub (listen: in its config).",
			"variables": obj{"listen": obj{"default": "127.0.0.1:8080", "description": "The hub's listen address."}}}},
		Tags:       openAPITags,
		Security:   []obj{{"bearer": []string{}}},
		Paths:      paths,
		Components: obj{"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer", "description": "A token from auth.tokens."}}, "schemas": g.schemas},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
