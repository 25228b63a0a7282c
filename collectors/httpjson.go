package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/internal/jsonpath"
	"github.com/etlhub/etlhub/model"
)

// HTTPJSONConfig maps a generic ETL status API's JSON answer to observations.
//
//	httpjson:
//	  runs_path: data.pipelines      # where the array of runs is ("" = the top level)
//	  fields:                        # observation field: path inside one run
//	    run_id: id
//	    tenant: customer.slug
//	    state: status
//	    started_at: started
//	  state_map: {RUNNING: running, OK: succeeded, ERROR: failed, QUEUED: waiting}
//	  defaults: {job: legacy-sync}   # constants for fields the API lacks
type HTTPJSONConfig struct {
	RunsPath string            `yaml:"runs_path"`
	Fields   map[string]string `yaml:"fields"`
	StateMap map[string]string `yaml:"state_map"`
	Defaults map[string]string `yaml:"defaults"`
}

// mappable lists the observation fields a mapping may fill and their types.
var mappable = map[string]string{
	"at": "time", "tenant": "string", "job": "string", "run_id": "string", "state": "state",
	"stage": "string", "started_at": "time", "updated_at": "time", "finished_at": "time",
	"rows_done": "int", "rows_total": "int", "error": "string", "files_arrived_at": "time",
	"attempt": "int", "url": "string", "quality_errors": "int", "quality_warnings": "int",
}

func (c *HTTPJSONConfig) validate(p *config.Problems, key string) {
	for f := range c.Fields {
		if _, ok := mappable[f]; !ok {
			p.Add(key+".fields."+f, "is not an observation field (one of %s)", strings.Join(sortedKeys(mappable), ", "))
		}
	}
	for f := range c.Defaults {
		if _, ok := mappable[f]; !ok {
			p.Add(key+".defaults."+f, "is not an observation field")
		}
	}
	for _, need := range []string{"run_id", "state", "tenant", "job"} {
		if c.Fields[need] == "" && c.Defaults[need] == "" {
			p.Add(key+".fields", "maps no %s (give fields.%s or defaults.%s)", need, need, need)
		}
	}
	for from, to := range c.StateMap {
		if !model.State(to).Valid() {
			p.Add(key+".state_map."+from, "%q is not waiting, running, succeeded or failed", to)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type httpJSONCollector struct {
	cfg SourceConfig
	m   HTTPJSONConfig
	f   *fetcher
}

func newHTTPJSON(c SourceConfig) (Collector, error) {
	if c.HTTPJSON == nil {
		return nil, errors.New("httpjson: mapping missing")
	}
	return &httpJSONCollector{cfg: c, m: *c.HTTPJSON, f: newFetcher(c)}, nil
}

func (c *httpJSONCollector) Collect(ctx context.Context, now time.Time) (Result, error) {
	body, err := c.f.get(ctx, c.cfg.URL)
	if err != nil {
		return Result{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return Result{}, fmt.Errorf("response is not JSON: %s", firstBytes(body, c.f.red))
	}
	arr, ok := jsonpath.Lookup(doc, c.m.RunsPath)
	if !ok {
		return Result{}, fmt.Errorf("response has nothing at runs_path %q", c.m.RunsPath)
	}
	items, ok := arr.([]any)
	if !ok {
		return Result{}, fmt.Errorf("runs_path %q is a %s, not an array", c.m.RunsPath, jsonKind(arr))
	}
	var res Result
	for i, item := range items {
		o, err := c.mapOne(item, now)
		if err != nil {
			res.Rejected = append(res.Rejected, fmt.Errorf("%s[%d]: %w", c.m.RunsPath, i, err))
			continue
		}
		res.Observations = append(res.Observations, o)
	}
	return res, nil
}

func (c *httpJSONCollector) mapOne(item any, now time.Time) (model.Observation, error) {
	o := model.Observation{At: now.UTC(), RunStatus: model.RunStatus{Source: c.cfg.Name}}
	var q model.Quality
	hasQ := false
	for _, field := range sortedKeys(mappable) {
		var v any
		if path, ok := c.m.Fields[field]; ok {
			v, _ = jsonpath.Lookup(item, path)
		}
		if v == nil {
			if d, ok := c.m.Defaults[field]; ok {
				v = d
			}
		}
		if v == nil {
			continue
		}
		if err := c.set(&o, &q, &hasQ, field, v); err != nil {
			return o, &model.FieldError{Field: field, Msg: err.Error()}
		}
	}
	if hasQ {
		o.Quality = &q
	}
	return o, o.Validate()
}

func (c *httpJSONCollector) set(o *model.Observation, q *model.Quality, hasQ *bool, field string, v any) error {
	switch mappable[field] {
	case "string":
		s, err := asString(v)
		if err != nil {
			return err
		}
		switch field {
		case "tenant":
			o.Tenant = s
		case "job":
			o.Job = s
		case "run_id":
			o.RunID = s
		case "stage":
			o.Stage = model.Stage(s)
		case "error":
			o.Error = s
		case "url":
			o.URL = s
		}
	case "state":
		s, err := asString(v)
		if err != nil {
			return err
		}
		if m, ok := c.m.StateMap[s]; ok {
			s = m
		} else {
			s = strings.ToLower(s)
		}
		o.State = model.State(s)
	case "int":
		n, err := asInt(v)
		if err != nil {
			return err
		}
		switch field {
		case "rows_done":
			o.RowsDone = n
		case "rows_total":
			o.RowsTotal = n
		case "attempt":
			o.Attempt = int(n)
		case "quality_errors":
			q.Errors, *hasQ = n, true
		case "quality_warnings":
			q.Warnings, *hasQ = n, true
		}
	case "time":
		t, err := asTime(field, v)
		if err != nil {
			return err
		}
		switch field {
		case "at":
			o.At = t
		case "started_at":
			o.StartedAt = &t
		case "updated_at":
			o.UpdatedAt = &t
		case "finished_at":
			o.FinishedAt = &t
		case "files_arrived_at":
			o.FilesArrivedAt = &t
		}
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return "value"
}

func asString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	return "", fmt.Errorf("expected a string, got a %s", jsonKind(v))
}

func asInt(v any) (int64, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, fmt.Errorf("expected a number, got a %s", jsonKind(v))
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return int64(f), nil
}

// asTime reads RFC 3339 strings and Unix epoch numbers (seconds, or
// milliseconds when larger than 1e12).
func asTime(field string, v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		t, err := model.ParseTime(field, x)
		if err != nil {
			return t, fmt.Errorf("%q is not an RFC 3339 time", x)
		}
		return t, nil
	case json.Number:
		f, err := x.Float64()
		if err != nil || f <= 0 {
			return time.Time{}, fmt.Errorf("%s is not a Unix time", x)
		}
		if f > 1e12 {
			f /= 1000
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("expected a time, got a %s", jsonKind(v))
}
