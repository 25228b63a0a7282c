package aws

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/etlhub/etlhub/model"
)

// StepFunctionsConfig is the stepfunctions kind's section.
//
//	stepfunctions:
//	  state_machines: [arn:aws:states:us-east-1:123456789012:stateMachine:sis-sync]
//	  lookback: 48h          # executions started earlier are not read
//	  max_executions: 100    # the newest, per state machine and collection
//	  history: true          # a running execution's current state as its stage
//	  map:
//	    - tenant_from_input: district
//	    - match: '^(?P<job>[a-z0-9-]+)$'
//	      over: state_machine
type StepFunctionsConfig struct {
	StateMachines []string      `yaml:"state_machines"`
	Lookback      time.Duration `yaml:"lookback"`
	MaxExecutions int           `yaml:"max_executions"`
	History       bool          `yaml:"history"`
	Map           Mapping       `yaml:"map"`
}

// StepFunctionsNames are the names a stepfunctions rule may match over.
var StepFunctionsNames = Capabilities{Names: []string{"execution", "state_machine"}, Input: true, Tags: true}

// Validate sets defaults and checks the section at key.
func (c *StepFunctionsConfig) Validate(p *config.Problems, key string) {
	if len(c.StateMachines) == 0 {
		p.Add(key+".state_machines", "is required: the ARNs of the state machines to watch")
	}
	for i, a := range c.StateMachines {
		if !strings.HasPrefix(a, "arn:") || !strings.Contains(a, ":stateMachine:") {
			p.Add(fmt.Sprintf("%s.state_machines[%d]", key, i), "%q is not a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)", a)
		}
	}
	if c.Lookback == 0 {
		c.Lookback = 48 * time.Hour
	}
	if c.Lookback < time.Minute || c.Lookback > 90*24*time.Hour {
		p.Add(key+".lookback", "%v is outside 1m..90 days (Step Functions keeps closed executions 90 days)", c.Lookback)
	}
	if c.MaxExecutions == 0 {
		c.MaxExecutions = 100
	}
	if c.MaxExecutions < 1 || c.MaxExecutions > 1000 {
		p.Add(key+".max_executions", "%d is outside 1..1000", c.MaxExecutions)
	}
	c.Map.Validate(p, key+".map", StepFunctionsNames)
}

// SFNAPI is what the collector calls of Step Functions.
type SFNAPI interface {
	sfn.ListExecutionsAPIClient
	DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
	GetExecutionHistory(context.Context, *sfn.GetExecutionHistoryInput, ...func(*sfn.Options)) (*sfn.GetExecutionHistoryOutput, error)
	ListTagsForResource(context.Context, *sfn.ListTagsForResourceInput, ...func(*sfn.Options)) (*sfn.ListTagsForResourceOutput, error)
}

// StepFunctions reports the executions of state machines as runs.
type StepFunctions struct {
	src    Source
	cfg    StepFunctionsConfig
	client SFNAPI
	region string
	// closed keeps what DescribeExecution said of executions that have
	// ended (they do not change), for as long as the listing shows them.
	closed map[string]*sfn.DescribeExecutionOutput
}

// NewStepFunctions builds the collector (the SDK's configuration is loaded now).
func NewStepFunctions(s Source, c StepFunctionsConfig) (*StepFunctions, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := s.sdkConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &StepFunctions{src: s, cfg: c, client: sfn.NewFromConfig(cfg), region: cfg.Region,
		closed: map[string]*sfn.DescribeExecutionOutput{}}, nil
}

func (c *StepFunctions) fail(what, arn string, err error) error {
	return fmt.Errorf("stepfunctions source %q: %s of %s: %w", c.src.Name, what, arn, err)
}

// Collect lists the recent executions of each state machine and describes them.
func (c *StepFunctions) Collect(ctx context.Context, now time.Time) (Result, error) {
	var res Result
	seen := map[string]bool{}
	since := now.Add(-c.cfg.Lookback)
	for _, sm := range c.cfg.StateMachines {
		var tags map[string]string
		if c.cfg.Map.UsesTags() {
			out, err := c.client.ListTagsForResource(ctx, &sfn.ListTagsForResourceInput{ResourceArn: &sm})
			if err != nil {
				return Result{}, c.fail("ListTagsForResource", sm, err)
			}
			tags = map[string]string{}
			for _, t := range out.Tags {
				tags[str(t.Key)] = str(t.Value)
			}
		}
		pages := sfn.NewListExecutionsPaginator(c.client, &sfn.ListExecutionsInput{
			StateMachineArn: &sm, MaxResults: int32(min(c.cfg.MaxExecutions, 1000))})
		n := 0
	list:
		for pages.HasMorePages() && n < c.cfg.MaxExecutions {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return Result{}, c.fail("ListExecutions", sm, err)
			}
			// Newest first: the listing ends where the lookback does.
			for _, e := range page.Executions {
				if n >= c.cfg.MaxExecutions || (e.StartDate != nil && e.StartDate.Before(since)) {
					break list
				}
				n++
				arn := str(e.ExecutionArn)
				if arn == "" {
					res.Rejected = append(res.Rejected, fmt.Errorf("an execution of %s has no executionArn", sm))
					continue
				}
				seen[arn] = true
				o, err := c.execution(ctx, sm, arn, tags, now)
				if err != nil {
					var rej *rejected
					if errors.As(err, &rej) {
						res.Rejected = append(res.Rejected, err)
						continue
					}
					return Result{}, err
				}
				res.Observations = append(res.Observations, o)
			}
		}
	}
	for arn := range c.closed {
		if !seen[arn] {
			delete(c.closed, arn)
		}
	}
	return res, nil
}

// rejected is an item that is not an observation (the collection goes on).
type rejected struct{ err error }

func (r *rejected) Error() string { return r.err.Error() }
func (r *rejected) Unwrap() error { return r.err }

func reject(format string, args ...any) error { return &rejected{fmt.Errorf(format, args...)} }

func (c *StepFunctions) execution(ctx context.Context, sm, arn string, tags map[string]string, now time.Time) (model.Observation, error) {
	d := c.closed[arn]
	if d == nil {
		var err error
		d, err = c.client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: &arn})
		if err != nil {
			return model.Observation{}, c.fail("DescribeExecution", arn, err)
		}
		if d.Status != sfntypes.ExecutionStatusRunning && d.Status != sfntypes.ExecutionStatusPendingRedrive {
			c.closed[arn] = d
		}
	}
	o := model.Observation{At: now.UTC(), RunStatus: model.RunStatus{
		Source: c.src.Name, RunID: arn,
		StartedAt: utc(d.StartDate), FinishedAt: utc(d.StopDate),
	}}
	smName := lastPart(sm)
	if s := str(d.StateMachineArn); s != "" {
		smName = stateMachineName(s)
	}
	tenant, job, err := c.cfg.Map.Map(Item{
		Names: map[string]string{"execution": str(d.Name), "state_machine": smName},
		Input: str(d.Input), Tags: tags})
	if err != nil {
		return o, reject("execution %s: %w", arn, err)
	}
	o.Tenant, o.Job = tenant, job
	switch d.Status {
	case sfntypes.ExecutionStatusRunning:
		o.State = model.StateRunning
	case sfntypes.ExecutionStatusPendingRedrive:
		o.State, o.Stage = model.StateWaiting, "pending_redrive"
	case sfntypes.ExecutionStatusSucceeded:
		o.State = model.StateSucceeded
	case sfntypes.ExecutionStatusFailed, sfntypes.ExecutionStatusTimedOut, sfntypes.ExecutionStatusAborted:
		o.State = model.StateFailed
		msg := string(d.Status)
		if e := str(d.Error); e != "" {
			msg += ": " + e
		}
		if cause := str(d.Cause); cause != "" {
			msg += ": " + cause
		}
		o.Error = cut(msg, model.MaxErrorLen)
	default:
		return o, reject("execution %s: status %q is not one Step Functions documents", arn, d.Status)
	}
	if o.FinishedAt != nil {
		o.UpdatedAt = o.FinishedAt
	}
	if o.State == model.StateRunning && c.cfg.History {
		stage, at, err := c.currentState(ctx, arn)
		if err != nil {
			return o, err
		}
		o.Stage, o.UpdatedAt = model.Stage(cut(stage, model.MaxStageLen)), at
	}
	o.URL = cut("https://"+c.region+".console.aws.amazon.com/states/home?region="+url.QueryEscape(c.region)+
		"#/v2/executions/details/"+url.PathEscape(arn), model.MaxURLLen)
	if err := o.Validate(); err != nil {
		return o, reject("execution %s: %w", arn, err)
	}
	return o, nil
}

// currentState reads the newest events of an execution: the state it last
// entered and when anything last happened.
func (c *StepFunctions) currentState(ctx context.Context, arn string) (string, *time.Time, error) {
	out, err := c.client.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{
		ExecutionArn: &arn, ReverseOrder: true, MaxResults: 25, IncludeExecutionData: new(false)})
	if err != nil {
		return "", nil, c.fail("GetExecutionHistory", arn, err)
	}
	var at *time.Time
	for _, e := range out.Events {
		if at == nil {
			at = utc(e.Timestamp)
		}
		if d := e.StateEnteredEventDetails; d != nil && d.Name != nil {
			return *d.Name, at, nil
		}
	}
	return "", at, nil
}

// stateMachineName is the NAME of arn:...:stateMachine:NAME (or :NAME:VERSION).
func stateMachineName(arn string) string {
	_, after, ok := strings.Cut(arn, ":stateMachine:")
	if !ok {
		return lastPart(arn)
	}
	name, _, _ := strings.Cut(after, ":")
	return name
}
