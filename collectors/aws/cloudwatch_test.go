package aws

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// fakeCloudWatch follows CloudWatch's GetMetricData as this SDK calls it:
// Smithy RPC v2 CBOR (POST /service/GraniteServiceVersion20100801/operation/GetMetricData,
// application/cbor both ways, Smithy-Protocol: rpc-v2-cbor), signed for
// "monitoring". Series are set by the test per metric and dimension value;
// results come two queries a page, with NextToken.
type fakeCloudWatch struct {
	t         *testing.T
	mu        sync.Mutex
	series    map[string][]cwPoint // "Namespace/Metric/Stat/DimValue" → datapoints
	throttles int
	garbage   bool
	queries   int // MetricDataQueries seen (first pages only)
}

type cwPoint struct {
	At    time.Time
	Value float64
}

func newFakeCloudWatch(t *testing.T) *fakeCloudWatch {
	return &fakeCloudWatch{t: t, series: map[string][]cwPoint{}}
}

func (f *fakeCloudWatch) set(namespace, metric, stat, dim string, pts ...cwPoint) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.series[namespace+"/"+metric+"/"+stat+"/"+dim] = pts
}

func cborTime(t time.Time) cbor.Tag {
	return cbor.Tag{Number: 1, Content: float64(t.UnixMilli()) / 1000}
}

func (f *fakeCloudWatch) reply(w http.ResponseWriter, status int, v any) {
	b, err := cbor.Marshal(v)
	if err != nil {
		f.t.Errorf("cbor: %v", err)
	}
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// serve answers one signed CloudWatch call (the signature checked already).
func (f *fakeCloudWatch) serve(w http.ResponseWriter, r *http.Request, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method != "POST" || r.URL.Path != "/service/GraniteServiceVersion20100801/operation/GetMetricData" ||
		r.Header.Get("Content-Type") != "application/cbor" || r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		f.t.Errorf("not an RPC v2 CBOR GetMetricData: %s %s %q %q", r.Method, r.URL, r.Header.Get("Content-Type"), r.Header.Get("Smithy-Protocol"))
	}
	if f.throttles > 0 {
		f.throttles--
		f.reply(w, 400, map[string]any{"__type": "com.amazonaws.cloudwatch#ThrottlingException", "message": "Rate exceeded"})
		return
	}
	if f.garbage {
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Write([]byte{0xbf, 0x71, 'M', 'e', 't', 'r', 'i', 'c'})
		return
	}
	var in struct {
		StartTime         time.Time
		EndTime           time.Time
		NextToken         string
		ScanBy            string
		MetricDataQueries []struct {
			Id         string
			MetricStat struct {
				Metric struct {
					Namespace  string
					MetricName string
					Dimensions []struct{ Name, Value string }
				}
				Period int
				Stat   string
			}
		}
	}
	if err := cbor.Unmarshal(body, &in); err != nil {
		f.reply(w, 400, map[string]any{"__type": "SerializationException", "message": err.Error()})
		return
	}
	if in.NextToken == "" {
		f.queries += len(in.MetricDataQueries)
	}
	from := 0
	if in.NextToken != "" {
		from, _ = strconv.Atoi(in.NextToken)
	}
	var results []map[string]any
	for _, q := range in.MetricDataQueries[from:min(from+2, len(in.MetricDataQueries))] {
		m := q.MetricStat.Metric
		dim := ""
		for _, d := range m.Dimensions {
			if d.Name == "QueueName" || d.Name == "FunctionName" {
				dim = d.Value
			}
		}
		var ts []cbor.Tag
		var vs []float64
		pts := f.series[m.Namespace+"/"+m.MetricName+"/"+q.MetricStat.Stat+"/"+dim]
		for i := len(pts) - 1; i >= 0; i-- { // newest first (TimestampDescending)
			p := pts[i]
			if !p.At.Before(in.StartTime) && p.At.Before(in.EndTime) {
				ts, vs = append(ts, cborTime(p.At)), append(vs, p.Value)
			}
		}
		results = append(results, map[string]any{"Id": q.Id, "Label": m.MetricName, "StatusCode": "Complete",
			"Timestamps": ts, "Values": vs})
	}
	out := map[string]any{"MetricDataResults": results}
	if from+2 < len(in.MetricDataQueries) {
		out["NextToken"] = fmt.Sprint(from + 2)
	}
	f.reply(w, 200, out)
}

// isCloudWatch tells CloudWatch's calls from SQS's on one endpoint.
func isCloudWatch(r *http.Request) bool {
	return bytes.HasPrefix([]byte(r.URL.Path), []byte("/service/GraniteServiceVersion20100801/"))
}
