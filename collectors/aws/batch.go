package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/batch"
	batchtypes "github.com/aws/aws-sdk-go-v2/service/batch/types"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
)

// BatchConfig is the batch kind's section.
//
//	batch:
//	  job_queues: [reporting]   # names or ARNs
//	  max_jobs: 100             # the newest, per queue, status and collection
//	  map:
//	    - match: '^(?P<tenant>[a-z0-9-]+)-(?P<job>nightly-report)'
//	      over: job
type BatchConfig struct {
	JobQueues []string `yaml:"job_queues"`
	MaxJobs   int      `yaml:"max_jobs"`
	Map       Mapping  `yaml:"map"`
}

// BatchNames are the names a batch rule may match over; the input is a
// job's parameters (a JSON object of strings), the tags its tags.
var BatchNames = Capabilities{Names: []string{"job", "job_queue", "job_definition"}, Input: true, Tags: true}

// batchStatuses are the statuses ListJobs is asked for, one call each
// (ListJobs without a status lists RUNNING jobs only).
var batchStatuses = []batchtypes.JobStatus{
	batchtypes.JobStatusSubmitted, batchtypes.JobStatusPending, batchtypes.JobStatusRunnable,
	batchtypes.JobStatusStarting, batchtypes.JobStatusRunning, batchtypes.JobStatusSucceeded,
	batchtypes.JobStatusFailed,
}

// Validate sets defaults and checks the section at key.
func (c *BatchConfig) Validate(p *config.Problems, key string) {
	if len(c.JobQueues) == 0 {
		p.Add(key+".job_queues", "is required: the names or ARNs of the job queues to watch")
	}
	for i, q := range c.JobQueues {
		if strings.TrimSpace(q) == "" || len(q) > 1024 {
			p.Add(fmt.Sprintf("%s.job_queues[%d]", key, i), "is not a job queue name or ARN")
		}
	}
	if c.MaxJobs == 0 {
		c.MaxJobs = 100
	}
	if c.MaxJobs < 1 || c.MaxJobs > 1000 {
		p.Add(key+".max_jobs", "%d is outside 1..1000", c.MaxJobs)
	}
	c.Map.Validate(p, key+".map", BatchNames)
}

// BatchAPI is what the collector calls of AWS Batch.
type BatchAPI interface {
	batch.ListJobsAPIClient
	DescribeJobs(context.Context, *batch.DescribeJobsInput, ...func(*batch.Options)) (*batch.DescribeJobsOutput, error)
}

// Batch reports the jobs of job queues as runs.
type Batch struct {
	src    Source
	cfg    BatchConfig
	client BatchAPI
	region string
}

// NewBatch builds the collector (the SDK's configuration is loaded now).
func NewBatch(s Source, c BatchConfig) (*Batch, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := s.sdkConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &Batch{src: s, cfg: c, client: batch.NewFromConfig(cfg), region: cfg.Region}, nil
}

func (c *Batch) fail(what, queue string, err error) error {
	return fmt.Errorf("batch source %q: %s of queue %s: %w", c.src.Name, what, queue, err)
}

// describeBatch is DescribeJobs' limit of jobs per call.
const describeBatch = 100

// Collect lists each queue's jobs by status and describes them, 100 a call.
func (c *Batch) Collect(ctx context.Context, now time.Time) (Result, error) {
	var res Result
	for _, q := range c.cfg.JobQueues {
		var ids []string
		seen := map[string]bool{}
		for _, st := range batchStatuses {
			pages := batch.NewListJobsPaginator(c.client, &batch.ListJobsInput{
				JobQueue: &q, JobStatus: st, MaxResults: new(int32(min(c.cfg.MaxJobs, 100)))})
			n := 0
			for pages.HasMorePages() && n < c.cfg.MaxJobs {
				page, err := pages.NextPage(ctx)
				if err != nil {
					return Result{}, c.fail("ListJobs "+string(st), q, err)
				}
				for _, j := range page.JobSummaryList {
					if n >= c.cfg.MaxJobs {
						break
					}
					n++
					// A job moving between statuses during the listing shows twice.
					if id := str(j.JobId); id != "" && !seen[id] {
						seen[id] = true
						ids = append(ids, id)
					}
				}
			}
		}
		for start := 0; start < len(ids); start += describeBatch {
			chunk := ids[start:min(start+describeBatch, len(ids))]
			out, err := c.client.DescribeJobs(ctx, &batch.DescribeJobsInput{Jobs: chunk})
			if err != nil {
				return Result{}, c.fail("DescribeJobs", q, err)
			}
			for _, j := range out.Jobs {
				o, err := c.job(q, j, now)
				if err != nil {
					res.Rejected = append(res.Rejected, err)
					continue
				}
				res.Observations = append(res.Observations, o)
			}
		}
	}
	return res, nil
}

func (c *Batch) job(queue string, j batchtypes.JobDetail, now time.Time) (model.Observation, error) {
	id := str(j.JobArn)
	if id == "" {
		id = str(j.JobId)
	}
	if id == "" {
		return model.Observation{}, errors.New("a job of queue " + queue + " has neither jobArn nor jobId")
	}
	o := model.Observation{At: now.UTC(), RunStatus: model.RunStatus{
		Source: c.src.Name, RunID: id,
		StartedAt: msTime(j.StartedAt), FinishedAt: msTime(j.StoppedAt),
	}}
	var input string
	if len(j.Parameters) > 0 {
		b, _ := json.Marshal(j.Parameters)
		input = string(b)
	}
	q := str(j.JobQueue)
	if q == "" {
		q = queue
	}
	tenant, job, err := c.cfg.Map.Map(Item{
		Names: map[string]string{"job": str(j.JobName), "job_queue": lastPart(q), "job_definition": jobDefinitionName(str(j.JobDefinition))},
		Input: input, Tags: j.Tags})
	if err != nil {
		return o, fmt.Errorf("job %s (%s): %w", str(j.JobName), id, err)
	}
	o.Tenant, o.Job = tenant, job
	o.Stage = model.Stage(strings.ToLower(string(j.Status)))
	attempts := len(j.Attempts)
	switch j.Status {
	case batchtypes.JobStatusSubmitted, batchtypes.JobStatusPending, batchtypes.JobStatusRunnable, batchtypes.JobStatusStarting:
		o.State = model.StateWaiting
		attempts++
	case batchtypes.JobStatusRunning:
		o.State = model.StateRunning
		attempts++
	case batchtypes.JobStatusSucceeded:
		o.State = model.StateSucceeded
	case batchtypes.JobStatusFailed:
		o.State = model.StateFailed
		o.Error = cut(batchReason(j), model.MaxErrorLen)
	default:
		return o, fmt.Errorf("job %s: status %q is not one AWS Batch documents", id, j.Status)
	}
	o.Attempt = max(attempts, 1)
	// The job's own last change: when it stopped, started or was created.
	for _, t := range []*time.Time{o.FinishedAt, o.StartedAt, msTime(j.CreatedAt)} {
		if t != nil {
			o.UpdatedAt = t
			break
		}
	}
	// A job that has not started counts from its creation: one stuck in
	// RUNNABLE is late, not unseen.
	if o.StartedAt == nil {
		o.StartedAt = msTime(j.CreatedAt)
	}
	o.URL = cut("https://"+c.region+".console.aws.amazon.com/batch/home?region="+url.QueryEscape(c.region)+
		"#jobs/detail/"+url.PathEscape(str(j.JobId)), model.MaxURLLen)
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("job %s: %w", id, err)
	}
	return o, nil
}

// batchReason is why a job failed: its status reason and its last attempt's.
func batchReason(j batchtypes.JobDetail) string {
	parts := []string{}
	if r := str(j.StatusReason); r != "" {
		parts = append(parts, r)
	}
	if n := len(j.Attempts); n > 0 {
		a := j.Attempts[n-1]
		var why []string
		if r := str(a.StatusReason); r != "" && r != str(j.StatusReason) {
			why = append(why, r)
		}
		if ct := a.Container; ct != nil {
			if r := str(ct.Reason); r != "" {
				why = append(why, r)
			}
			if ct.ExitCode != nil {
				why = append(why, fmt.Sprintf("exit code %d", *ct.ExitCode))
			}
		}
		if len(why) > 0 {
			parts = append(parts, fmt.Sprintf("attempt %d: %s", n, strings.Join(why, ", ")))
		}
	}
	if len(parts) == 0 {
		return "FAILED"
	}
	return strings.Join(parts, "; ")
}

// jobDefinitionName is NAME of arn:...:job-definition/NAME:REVISION.
func jobDefinitionName(s string) string {
	s = lastPart(strings.TrimSuffix(s, ":"+lastPart(s)))
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
