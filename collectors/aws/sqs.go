package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
)

// SQSConfig is the sqs kind's section: queues measured, not runs.
//
//	sqs:
//	  queues:
//	    - name: sis-sync-inbox            # or url: https://sqs.REGION.amazonaws.com/ACCOUNT/NAME
//	      tenant: miami-dade              # the job the queue serves (optional)
//	      job: sis-sync
//	      dead_letter_queue: sis-sync-dlq # default: the queue's redrive policy's
//	  oldest_age: true                    # ApproximateAgeOfOldestMessage from CloudWatch
type SQSConfig struct {
	Queues []SQSQueue `yaml:"queues"`
	// OldestAge reads the age of each queue's oldest message from
	// CloudWatch (AWS/SQS ApproximateAgeOfOldestMessage); without it the
	// queue-backlog rule judges how long the backlog has not shrunk.
	OldestAge *bool `yaml:"oldest_age"`
	// Map gives the tenant and job of queues that do not name them
	// (optional: an unmapped queue is shared infrastructure).
	Map Mapping `yaml:"map"`
}

// SQSQueue is one queue.
type SQSQueue struct {
	Name            string `yaml:"name"`
	URL             string `yaml:"url"`
	DeadLetterQueue string `yaml:"dead_letter_queue"`
	Tenant          string `yaml:"tenant"`
	Job             string `yaml:"job"`
}

// SQSNames are the names an sqs rule may match over.
var SQSNames = Capabilities{Names: []string{"queue"}}

// Validate sets defaults and checks the section at key.
func (c *SQSConfig) Validate(p *config.Problems, key string) {
	if len(c.Queues) == 0 {
		p.Add(key+".queues", "is required: the queues to measure (name or url each)")
	}
	seen := map[string]bool{}
	for i := range c.Queues {
		q := &c.Queues[i]
		k := fmt.Sprintf("%s.queues[%d]", key, i)
		switch {
		case q.Name == "" && q.URL == "":
			p.Add(k, "needs name or url")
		case q.Name != "" && q.URL != "":
			p.Add(k, "takes name or url, not both")
		case q.URL != "" && !strings.HasPrefix(q.URL, "http://") && !strings.HasPrefix(q.URL, "https://"):
			p.Add(k+".url", "%q is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", q.URL)
		}
		if n := q.name(); seen[n] {
			p.Add(k, "queue %q is listed twice", n)
		} else {
			seen[n] = true
		}
		if len(q.name()) > 80 {
			p.Add(k, "a queue name is at most 80 characters")
		}
		if (q.Tenant == "") != (q.Job == "") && len(c.Map) == 0 {
			p.Add(k, "give both tenant and job (the job the queue serves), or neither")
		}
	}
	if c.OldestAge == nil {
		c.OldestAge = new(true)
	}
	if len(c.Map) > 0 {
		c.Map.Validate(p, key+".map", SQSNames)
	}
}

func (q SQSQueue) name() string {
	if q.Name != "" {
		return q.Name
	}
	return lastPart(strings.TrimRight(q.URL, "/"))
}

// SQSAPI is what the collector calls of SQS.
type SQSAPI interface {
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// SQS measures queues: depth, in flight, delayed, the oldest message's age
// and the dead-letter queue's depth.
type SQS struct {
	src  Source
	cfg  SQSConfig
	sqs  SQSAPI
	cw   cloudwatch.GetMetricDataAPIClient
	urls map[string]string // queue name → URL, once resolved
}

// NewSQS builds the collector (the SDK's configuration is loaded now).
func NewSQS(s Source, c SQSConfig) (*SQS, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := s.sdkConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &SQS{src: s, cfg: c, sqs: sqs.NewFromConfig(cfg), cw: cloudwatch.NewFromConfig(cfg), urls: map[string]string{}}, nil
}

func (c *SQS) fail(what, queue string, err error) error {
	return fmt.Errorf("sqs source %q: %s of queue %s: %w", c.src.Name, what, queue, err)
}

// url resolves a queue's URL (GetQueueUrl, once); account is the owner for
// a dead-letter queue named by ARN.
func (c *SQS) url(ctx context.Context, name, account string) (string, error) {
	if u, ok := c.urls[name]; ok {
		return u, nil
	}
	in := &sqs.GetQueueUrlInput{QueueName: &name}
	if account != "" {
		in.QueueOwnerAWSAccountId = &account
	}
	out, err := c.sqs.GetQueueUrl(ctx, in)
	if err != nil {
		return "", c.fail("GetQueueUrl", name, err)
	}
	if str(out.QueueUrl) == "" {
		return "", c.fail("GetQueueUrl", name, errors.New("the answer has no QueueUrl"))
	}
	c.urls[name] = *out.QueueUrl
	return *out.QueueUrl, nil
}

var sqsAttributes = []sqstypes.QueueAttributeName{
	sqstypes.QueueAttributeNameApproximateNumberOfMessages,
	sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	sqstypes.QueueAttributeNameRedrivePolicy,
}

// Collect measures every queue. A queue that cannot be read is measured
// down (with why) and fails the attempt; the others are measured still.
func (c *SQS) Collect(ctx context.Context, now time.Time) (Result, error) {
	var res Result
	var errs []error
	for _, q := range c.cfg.Queues {
		m, err := c.queue(ctx, q, now)
		if err != nil {
			errs = append(errs, err)
		}
		res.Measurements = append(res.Measurements, m)
	}
	if *c.cfg.OldestAge {
		var names []string
		for _, m := range res.Measurements {
			if m.Up {
				names = append(names, strings.TrimPrefix(m.Subject, "sqs:"))
			}
		}
		ages, err := c.oldestAges(ctx, names, now)
		if err != nil {
			errs = append(errs, err)
		}
		for i := range res.Measurements {
			if a, ok := ages[strings.TrimPrefix(res.Measurements[i].Subject, "sqs:")]; ok {
				res.Measurements[i].Values[model.ValueOldestAgeS] = a
			}
		}
	}
	return res, errors.Join(errs...)
}

func (c *SQS) queue(ctx context.Context, q SQSQueue, now time.Time) (model.Measurement, error) {
	name := q.name()
	m := model.Measurement{At: now.UTC(), Source: c.src.Name, Subject: "sqs:" + name, Kind: model.KindSQS,
		Tenant: q.Tenant, Job: q.Job, Values: map[string]float64{}}
	if m.Tenant == "" && len(c.cfg.Map) > 0 {
		if t, j, err := c.cfg.Map.Map(Item{Names: map[string]string{"queue": name}}); err == nil {
			m.Tenant, m.Job = t, j
		}
	}
	down := func(err error) (model.Measurement, error) {
		m.Up, m.Values, m.Error = false, nil, cut(err.Error(), model.MaxErrorLen)
		return m, err
	}
	u := q.URL
	if u == "" {
		var err error
		if u, err = c.url(ctx, name, ""); err != nil {
			return down(err)
		}
	}
	attrs, err := c.attributes(ctx, name, u, sqsAttributes)
	if err != nil {
		return down(err)
	}
	for attr, value := range map[sqstypes.QueueAttributeName]string{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages:           model.ValueQueueDepth,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible: model.ValueQueueInFlight,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed:    model.ValueQueueDelayed,
	} {
		if s, ok := attrs[string(attr)]; ok {
			n, err := strconv.ParseFloat(s, 64)
			if err != nil || n < 0 {
				return down(c.fail("GetQueueAttributes", name, fmt.Errorf("%s is %q, not a count", attr, s)))
			}
			m.Values[value] = n
		}
	}
	if _, ok := m.Values[model.ValueQueueDepth]; !ok {
		return down(c.fail("GetQueueAttributes", name, errors.New("the answer has no ApproximateNumberOfMessages")))
	}
	dlq, account := q.DeadLetterQueue, ""
	if dlq == "" {
		dlq, account = redriveTarget(attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)])
	}
	if dlq != "" {
		du := dlq
		if !strings.Contains(dlq, "://") {
			if du, err = c.url(ctx, dlq, account); err != nil {
				return down(err)
			}
		}
		da, err := c.attributes(ctx, lastPart(du), du, []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages})
		if err != nil {
			return down(err)
		}
		n, err := strconv.ParseFloat(da[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], 64)
		if err != nil || n < 0 {
			return down(c.fail("GetQueueAttributes", lastPart(du), errors.New("the dead-letter queue's ApproximateNumberOfMessages is not a count")))
		}
		m.Values[model.ValueDLQDepth] = n
	}
	m.Up = true
	return m, nil
}

func (c *SQS) attributes(ctx context.Context, name, u string, names []sqstypes.QueueAttributeName) (map[string]string, error) {
	out, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &u, AttributeNames: names})
	if err != nil {
		return nil, c.fail("GetQueueAttributes", name, err)
	}
	return out.Attributes, nil
}

// redriveTarget is the dead-letter queue's name (and owner account) in a
// redrive policy: {"deadLetterTargetArn": "arn:aws:sqs:REGION:ACCOUNT:NAME", ...}.
func redriveTarget(policy string) (name, account string) {
	if policy == "" {
		return "", ""
	}
	var rp struct {
		Target string `json:"deadLetterTargetArn"`
	}
	if json.Unmarshal([]byte(policy), &rp) != nil || rp.Target == "" {
		return "", ""
	}
	if parts := strings.Split(rp.Target, ":"); len(parts) == 6 && parts[0] == "arn" {
		return parts[5], parts[4]
	}
	return lastPart(rp.Target), ""
}

// oldestAges reads ApproximateAgeOfOldestMessage (the latest minute's
// maximum) of each queue from CloudWatch, one GetMetricData for all.
func (c *SQS) oldestAges(ctx context.Context, names []string, now time.Time) (map[string]float64, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var qs []cwtypes.MetricDataQuery
	for i, n := range names {
		qs = append(qs, metricQuery(fmt.Sprintf("age%d", i), "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", n, 60, "Maximum"))
	}
	got, err := metricData(ctx, c.cw, qs, now.Add(-10*time.Minute), now)
	if err != nil {
		return nil, fmt.Errorf("sqs source %q: GetMetricData of AWS/SQS ApproximateAgeOfOldestMessage: %w", c.src.Name, err)
	}
	out := map[string]float64{}
	for i, n := range names {
		if s := got[fmt.Sprintf("age%d", i)]; len(s) > 0 {
			out[n] = s[0].v // newest first
		}
	}
	return out, nil
}

// point is one datapoint of a metric.
type point struct {
	t time.Time
	v float64
}

func metricQuery(id, namespace, metric, dim, value string, period int32, stat string) cwtypes.MetricDataQuery {
	return cwtypes.MetricDataQuery{Id: &id, ReturnData: new(true), MetricStat: &cwtypes.MetricStat{
		Metric: &cwtypes.Metric{Namespace: &namespace, MetricName: &metric,
			Dimensions: []cwtypes.Dimension{{Name: &dim, Value: &value}}},
		Period: &period, Stat: &stat}}
}

// metricData runs GetMetricData (paged, at most 500 queries a call) and
// returns each query's datapoints, newest first.
func metricData(ctx context.Context, cw cloudwatch.GetMetricDataAPIClient, qs []cwtypes.MetricDataQuery, start, end time.Time) (map[string][]point, error) {
	out := map[string][]point{}
	for from := 0; from < len(qs); from += 500 {
		pages := cloudwatch.NewGetMetricDataPaginator(cw, &cloudwatch.GetMetricDataInput{
			MetricDataQueries: qs[from:min(from+500, len(qs))], StartTime: &start, EndTime: &end,
			ScanBy: cwtypes.ScanByTimestampDescending})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, r := range page.MetricDataResults {
				if len(r.Timestamps) != len(r.Values) {
					return nil, fmt.Errorf("query %s: %d timestamps for %d values", str(r.Id), len(r.Timestamps), len(r.Values))
				}
				for i := range r.Values {
					out[str(r.Id)] = append(out[str(r.Id)], point{r.Timestamps[i], r.Values[i]})
				}
			}
		}
	}
	return out, nil
}
