package collectors

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	awsc "github.com/etlhub/etlhub/collectors/aws"
	"github.com/etlhub/etlhub/internal/config"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	awsLeakKeyID  = "AKIAETLHUBLEAK0EXAMPLE"
	awsLeakSecret = "leakSecretKey/0123456789abcdefETLHUBxyz"
)

func awsSourceConfig(kind, endpoint string) SourceConfig {
	c := SourceConfig{Name: "aws-" + kind, Kind: kind, Region: "us-east-1", Endpoint: endpoint, Timeout: 2 * time.Second,
		Credentials: &awsc.Credentials{AccessKeyID: config.Secret(awsLeakKeyID), SecretAccessKey: config.Secret(awsLeakSecret)},
		Retry:       awsc.Retry{MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond}}
	switch kind {
	case "stepfunctions":
		c.StepFunctions = &awsc.StepFunctionsConfig{StateMachines: []string{"arn:aws:states:us-east-1:123456789012:stateMachine:sis"},
			Map: awsc.Mapping{{Tenant: "dade", Job: "sis"}}}
	case "batch":
		c.Batch = &awsc.BatchConfig{JobQueues: []string{"reports"}, Map: awsc.Mapping{{Tenant: "dade", Job: "report"}}}
	case "sqs":
		c.SQS = &awsc.SQSConfig{Queues: []awsc.SQSQueue{{Name: "inbox"}}}
	case "lambda":
		c.Lambda = &awsc.LambdaConfig{Functions: []awsc.LambdaFunction{{Name: "load"}}}
	}
	return c
}

// An AWS source that answers garbage, or echoes the keys it was signed
// with, is unhealthy with an error naming the source, and the keys show
// nowhere: not in its health (the API, the database), not in the logs.
func TestAWSSourceGarbageIsUnhealthy(t *testing.T) {
	for _, kind := range []string{"stepfunctions", "batch", "sqs", "lambda"} {
		for name, h := range map[string]http.HandlerFunc{
			"not json": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, "<html>gateway "+r.Header.Get("Authorization")+"</html>")
			},
			"an error echoing the keys": func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(400)
				json.NewEncoder(w).Encode(map[string]string{"__type": "UnrecognizedClientException",
					"message": "The security token " + awsLeakKeyID + " / " + awsLeakSecret + " is invalid: " + r.Header.Get("Authorization")})
			},
		} {
			t.Run(kind+"/"+name, func(t *testing.T) {
				srv := httptest.NewServer(h)
				defer srv.Close()
				cfg := awsSourceConfig(kind, srv.URL)
				var p config.Problems
				cfg.Validate(&p, "sources[0]")
				if p.Len() > 0 {
					t.Fatal(p.Err("test"))
				}
				var logs bytes.Buffer
				sink := &memSink{}
				r, err := NewRunner(RunnerConfig{Sources: []SourceConfig{cfg}}, sink, slog.New(slog.NewJSONHandler(&logs, nil)),
					NewMetrics(prometheus.NewRegistry()), time.Now)
				if err != nil {
					t.Fatal(err)
				}
				r.RunOnce(context.Background(), cfg.Name)
				hl := sink.health[cfg.Name]
				if hl.Healthy || hl.ConsecutiveFailures != 1 || !strings.Contains(hl.LastError, `source "`+cfg.Name+`"`) {
					t.Fatalf("health %+v", hl)
				}
				api, _ := json.Marshal(hl)
				stored, _ := json.Marshal(sink.measurements())
				if (kind == "sqs") != (len(sink.measurements()) == 1) {
					t.Errorf("measurements stored: %s", stored)
				}
				for _, text := range []string{string(api), logs.String(), string(stored)} {
					for _, s := range []string{awsLeakKeyID, awsLeakSecret} {
						for i := 0; i+8 <= len(s); i += 3 {
							if strings.Contains(text, s[i:i+8]) {
								t.Fatalf("%q of a key shows: %s", s[i:i+8], text)
							}
						}
					}
				}
			})
		}
	}
}

func TestSourceConfigPerKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*SourceConfig)
		want string // "" = valid
	}{
		{"an AWS kind needs no url", func(c *SourceConfig) {}, ""},
		{"and no endpoint, region or keys either", func(c *SourceConfig) { c.Endpoint, c.Region, c.Credentials = "", "", nil }, ""},
		{"url is for the HTTP kinds", func(c *SourceConfig) { c.URL = "https://x.example" }, "sources[0].url: is only for the HTTP kinds"},
		{"headers too", func(c *SourceConfig) { c.Headers = map[string]config.Secret{"A": "b"} }, "sources[0].headers: is only for the HTTP kinds"},
		{"a bad endpoint", func(c *SourceConfig) { c.Endpoint = "localhost:4566" }, "sources[0].endpoint: is not an http(s) URL"},
		{"a bad region", func(c *SourceConfig) { c.Region = "US East" }, `sources[0].region: "US East" is not a region`},
		{"half the keys", func(c *SourceConfig) { c.Credentials.SecretAccessKey = "" }, "sources[0].credentials: access_key_id and secret_access_key"},
		{"its section is required", func(c *SourceConfig) { c.StepFunctions = nil }, "sources[0].stepfunctions: is required for kind stepfunctions"},
		{"another kind's section", func(c *SourceConfig) { c.Batch = &awsc.BatchConfig{} }, "sources[0].batch: is only for kind batch"},
		{"not a state machine ARN", func(c *SourceConfig) { c.StepFunctions.StateMachines = []string{"sis"} },
			`sources[0].stepfunctions.state_machines[0]: "sis" is not a state machine ARN`},
		{"retry bounds", func(c *SourceConfig) { c.Retry.MaxAttempts = 50 }, "sources[0].retry.max_attempts: 50 is outside 1..10"},
		{"http kinds take no region", func(c *SourceConfig) {
			*c = SourceConfig{Name: "i", Kind: "importer", URL: "http://127.0.0.1:1", Region: "us-east-1"}
		}, "sources[0].region: is only for the AWS kinds (batch, lambda, sqs, stepfunctions)"},
		{"http kinds still need a url", func(c *SourceConfig) { *c = SourceConfig{Name: "i", Kind: "importer"} }, `sources[0].url: "" is not an http(s) URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := awsSourceConfig("stepfunctions", "http://127.0.0.1:4566")
			tc.edit(&c)
			var p config.Problems
			c.Validate(&p, "sources[0]")
			err := p.Err("x")
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("%v; want %q", err, tc.want)
			}
		})
	}
}
