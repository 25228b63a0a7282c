package aws

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
)

// LambdaConfig is the lambda kind's section: functions measured from
// CloudWatch (AWS/Lambda), not runs.
//
//	lambda:
//	  window: 5m                  # each probe reads the last window
//	  functions:
//	    - name: sis-sync-load
//	      tenant: miami-dade      # the job the function serves (optional)
//	      job: sis-sync
type LambdaConfig struct {
	Functions []LambdaFunction `yaml:"functions"`
	Window    time.Duration    `yaml:"window"`
	// Map gives the tenant and job of functions that do not name them.
	Map Mapping `yaml:"map"`
}

// LambdaFunction is one function (its name, or name:alias).
type LambdaFunction struct {
	Name   string `yaml:"name"`
	Tenant string `yaml:"tenant"`
	Job    string `yaml:"job"`
}

// LambdaNames are the names a lambda rule may match over.
var LambdaNames = Capabilities{Names: []string{"function"}}

// Validate sets defaults and checks the section at key.
func (c *LambdaConfig) Validate(p *config.Problems, key string) {
	if len(c.Functions) == 0 {
		p.Add(key+".functions", "is required: the functions to measure")
	}
	seen := map[string]bool{}
	for i, f := range c.Functions {
		k := fmt.Sprintf("%s.functions[%d]", key, i)
		if strings.TrimSpace(f.Name) == "" || len(f.Name) > 140 || strings.ContainsAny(f.Name, " /") {
			p.Add(k+".name", "%q is not a function name", f.Name)
		}
		if seen[f.Name] {
			p.Add(k+".name", "%q is listed twice", f.Name)
		}
		seen[f.Name] = true
		if (f.Tenant == "") != (f.Job == "") && len(c.Map) == 0 {
			p.Add(k, "give both tenant and job (the job the function serves), or neither")
		}
	}
	if c.Window == 0 {
		c.Window = 5 * time.Minute
	}
	if c.Window < time.Minute || c.Window > 24*time.Hour || c.Window%time.Minute != 0 {
		p.Add(key+".window", "%v is not whole minutes within 1m..24h", c.Window)
	}
	if len(c.Map) > 0 {
		c.Map.Validate(p, key+".map", LambdaNames)
	}
}

// Lambda measures functions: invocations, errors, throttles and durations
// over the last window.
type Lambda struct {
	src Source
	cfg LambdaConfig
	cw  cloudwatch.GetMetricDataAPIClient
}

// NewLambda builds the collector (the SDK's configuration is loaded now).
func NewLambda(s Source, c LambdaConfig) (*Lambda, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := s.sdkConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &Lambda{src: s, cfg: c, cw: cloudwatch.NewFromConfig(cfg)}, nil
}

// lambdaMetrics are the metrics read of each function: CloudWatch's
// metric, its statistic and the value it becomes.
var lambdaMetrics = []struct{ metric, stat, value string }{
	{"Invocations", "Sum", model.ValueInvocations},
	{"Errors", "Sum", model.ValueErrors},
	{"Throttles", "Sum", model.ValueThrottles},
	{"Duration", "Average", model.ValueDurationAvgMs},
	{"Duration", "p95", model.ValueP95Ms},
}

// Collect reads every function's metrics in one GetMetricData (paged).
func (c *Lambda) Collect(ctx context.Context, now time.Time) (Result, error) {
	period := int32(c.cfg.Window / time.Second)
	var qs []cwtypes.MetricDataQuery
	for i, f := range c.cfg.Functions {
		name, alias, _ := strings.Cut(f.Name, ":")
		for j, m := range lambdaMetrics {
			q := metricQuery(fmt.Sprintf("f%d_%d", i, j), "AWS/Lambda", m.metric, "FunctionName", name, period, m.stat)
			if alias != "" {
				d, v := "Resource", f.Name
				q.MetricStat.Metric.Dimensions = append(q.MetricStat.Metric.Dimensions, cwtypes.Dimension{Name: &d, Value: &v})
			}
			qs = append(qs, q)
		}
	}
	got, err := metricData(ctx, c.cw, qs, now.Add(-c.cfg.Window), now)
	if err != nil {
		return Result{}, fmt.Errorf("lambda source %q: GetMetricData of AWS/Lambda: %w", c.src.Name, err)
	}
	var res Result
	for i, f := range c.cfg.Functions {
		m := model.Measurement{At: now.UTC(), Source: c.src.Name, Subject: "lambda:" + f.Name, Kind: model.KindLambda,
			Tenant: f.Tenant, Job: f.Job, Up: true, Values: map[string]float64{}}
		if m.Tenant == "" && len(c.cfg.Map) > 0 {
			if t, j, err := c.cfg.Map.Map(Item{Names: map[string]string{"function": f.Name}}); err == nil {
				m.Tenant, m.Job = t, j
			}
		}
		for j, lm := range lambdaMetrics {
			pts := got[fmt.Sprintf("f%d_%d", i, j)]
			if len(pts) == 0 {
				continue // no datapoint: not measured (a function not invoked has no durations)
			}
			m.Values[lm.value] = combine(lm.stat, pts)
		}
		// Counts with no datapoint in the window are zero: CloudWatch stores
		// no datapoint for a function that was not invoked.
		for _, v := range []string{model.ValueInvocations, model.ValueErrors, model.ValueThrottles} {
			if _, ok := m.Values[v]; !ok {
				m.Values[v] = 0
			}
		}
		if n := m.Values[model.ValueInvocations]; n > 0 {
			m.Values[model.ValueCalls] = n
			m.Values[model.ValueErrorRate] = math.Min(1, m.Values[model.ValueErrors]/n)
		}
		res.Measurements = append(res.Measurements, m)
	}
	return res, nil
}

// combine folds a window's datapoints into one value: sums add, averages
// and percentiles take the newest (one period is the whole window).
func combine(stat string, pts []point) float64 {
	if stat == "Sum" {
		s := 0.0
		for _, p := range pts {
			s += p.v
		}
		return s
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].t.After(pts[j].t) })
	return pts[0].v
}
