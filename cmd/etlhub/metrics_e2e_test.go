package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/internal/testsrv"
)

// e2eVersion is what the tests' binary is built with (-X main.version).
const e2eVersion = "v0.0.0-e2e"

// scrape reads the hub's /metrics as a viewer.
func (h *hubProc) scrape() string {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		h.t.Fatalf("/metrics: %d %s", resp.StatusCode, data)
	}
	return string(data)
}

// sample finds one sample by its exact name and labels (in exposition
// order) and returns its value, or -1.
func sample(text, series string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscanf(v, "%g", &f)
			return f
		}
	}
	return -1
}

// promtoolCheck runs `promtool check metrics` over an exposition and fails
// the test with what it says.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	cmd := exec.Command(testsrv.Promtool(t), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// stateHub is a hub with one failed night (a firing "failed" alert) whose
// notification a broken Slack keeps in the outbox.
func stateHub(t *testing.T) *hubProc {
	t.Helper()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	notify := fmt.Sprintf(`notify:
  receivers:
    - {name: team, slack: {webhook_url: %q}}
  default_receiver: team
rules: {tick: 1s}
`, broken.URL+"/hook")
	src := fmt.Sprintf("  - {name: down, kind: importer, url: %q, schedule: \"@every 1s\", timeout: 1s}", broken.URL)
	h := startHubIn(t, t.TempDir(), src, nowJobs("", "dade", "polk"), notify)
	now := time.Now().UTC()
	obs := fmt.Sprintf(`{"at":%q,"tenant":"dade","job":"roster-import","run_id":"dade/1","state":"failed","stage":"loading","started_at":%q,"updated_at":%q,"finished_at":%q,"error":"mongo down"}`,
		now.Format(time.RFC3339), now.Add(-30*time.Minute).Format(time.RFC3339), now.Format(time.RFC3339), now.Format(time.RFC3339))
	if code, body := h.call("POST", "/api/v1/observations", opTok, []byte(obs)); code != 200 {
		t.Fatalf("push: %d %v", code, body)
	}
	done := now.Add(-10 * time.Minute).Truncate(time.Second)
	obs = fmt.Sprintf(`{"at":%q,"tenant":"polk","job":"roster-import","run_id":"polk/1","state":"succeeded","started_at":%q,"updated_at":%q,"finished_at":%q,"rows_done":5,"rows_total":5}`,
		now.Format(time.RFC3339), now.Add(-40*time.Minute).Format(time.RFC3339), done.Format(time.RFC3339), done.Format(time.RFC3339))
	if code, body := h.call("POST", "/api/v1/observations", opTok, []byte(obs)); code != 200 {
		t.Fatalf("push: %d %v", code, body)
	}
	h.polkDone = done
	h.eventually("the failed alert fires", 20*time.Second, func() bool {
		return h.metric(`etlhub_alerts{rule="failed",severity="warning",state="firing"}`) == 1
	})
	return h
}

// TestMetricsCarryTheHubsState: /metrics passes promtool and says what the
// hub knows: alerts by state, each job's risk and breach probability, the
// outbox backlog, counters that exist before their first increment, and the
// version the binary was built with.
func TestMetricsCarryTheHubsState(t *testing.T) {
	h := stateHub(t)
	h.eventually("the notification waits in the outbox for a second", 20*time.Second, func() bool {
		return sample(h.scrape(), `etlhub_outbox_oldest_pending_seconds{receiver="team"}`) >= 1
	})
	text := h.scrape()
	promtoolCheck(t, text)

	want := map[string]float64{
		`etlhub_alerts{rule="failed",severity="warning",state="firing"}`:                           1,
		`etlhub_alerts{rule="stalled",severity="warning",state="firing"}`:                          0,
		`etlhub_alerts{rule="predicted-breach",severity="critical",state="pending"}`:               0,
		`etlhub_outbox_pending{receiver="team"}`:                                                   1,
		`etlhub_job_risk{etl_job="roster-import",risk="at-risk",tenant="dade"}`:                    1,
		`etlhub_job_risk{etl_job="roster-import",risk="ok",tenant="dade"}`:                         0,
		`etlhub_job_firing_alerts{etl_job="roster-import",tenant="dade"}`:                          1,
		`etlhub_job_firing_alerts{etl_job="roster-import",tenant="polk"}`:                          0,
		`etlhub_alert_transitions_total{rule="failed",severity="warning",status="firing"}`:         1,
		`etlhub_alert_transitions_total{rule="source-down",severity="critical",status="resolved"}`: 0,
		`etlhub_notifications_total{receiver="team",result="failed"}`:                              0,
		`etlhub_ingest_observations_total{result="stored",via="push"}`:                             2,
		`etlhub_job_last_success_timestamp_seconds{etl_job="roster-import",tenant="polk"}`:         float64(h.polkDone.Unix()),
		`etlhub_ingest_observations_total{result="stored",via="collector"}`:                        0,
	}
	for series, v := range want {
		if got := sample(text, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	for _, series := range []string{`etlhub_job_breach_probability{etl_job="roster-import",tenant="dade"}`,
		`etlhub_job_breach_probability{etl_job="roster-import",tenant="polk"}`} {
		if got := sample(text, series); got < 0 || got > 1 {
			t.Errorf("%s = %v, want a probability", series, got)
		}
	}
	if sample(text, `etlhub_rules_last_tick_timestamp_seconds`) < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("the last rules tick is not recent:\n%s", grepLines(text, "etlhub_rules_last_tick"))
	}
	if !strings.Contains(text, `etlhub_build_info{goversion="go`) || !strings.Contains(text, `version="`+e2eVersion+`"`) {
		t.Errorf("build_info lacks the version the binary was built with:\n%s", grepLines(text, "build_info"))
	}
	for _, h := range []string{"etlhub_http_request_duration_seconds_bucket", "etlhub_rules_tick_duration_seconds_bucket",
		"etlhub_store_operation_duration_seconds_bucket", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(text, h) {
			t.Errorf("/metrics lacks %s", h)
		}
	}
	// What the shipped rules and dashboard read is what the hub exposes.
	for name := range deployedMetrics(t, "etlhub_importer_") {
		if !strings.Contains(text, "\n"+name) && !eventOnly[name] {
			t.Errorf("deploy/ reads %s, which the hub does not expose", name)
		}
	}
	if strings.Contains(text, "_seconds_bucket") && strings.Contains(strings.ReplaceAll(text, "duration_seconds_bucket", ""), "_seconds_bucket") {
		t.Errorf("a histogram is not named *_duration_seconds:\n%s", grepLines(text, "_seconds_bucket{le=\"+Inf\""))
	}
}

// eventOnly are series that exist only once their event happened (a store
// operation failed).
var eventOnly = map[string]bool{"etlhub_store_errors_total": true}

// deployedMetrics are the etlhub_ metric names that the shipped Prometheus
// rules and Grafana dashboard query, except those starting with skip.
func deployedMetrics(t *testing.T, skip string) map[string]bool {
	t.Helper()
	var text []byte
	for _, f := range []string{"../../deploy/prometheus/etlhub-rules.yml", "../../deploy/grafana/etlhub-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text = append(text, b...)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`etlhub_[a-z_]+`).FindAllString(string(text), -1) {
		if !strings.HasPrefix(m, skip) && m != "etlhub_rules_last_tick" {
			names[m] = true
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %v in deploy/", names)
	}
	return names
}

// TestShippedPrometheusRules: the rules file is valid and its unit tests
// (deploy/prometheus/etlhub-rules.test.yml) pass.
func TestShippedPrometheusRules(t *testing.T) {
	promtool := testsrv.Promtool(t)
	for _, args := range [][]string{{"check", "rules", "etlhub-rules.yml"}, {"test", "rules", "etlhub-rules.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../../deploy/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestGrafanaDashboard: the dashboard is JSON Grafana can import: unique
// panel ids, a Prometheus query on every panel, no two panels overlapping.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/etlhub-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID      int                      `json:"id"`
			Type    string                   `json:"type"`
			Title   string                   `json:"title"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) < 10 {
		t.Fatalf("dashboard uid %q title %q, %d panels", d.UID, d.Title, len(d.Panels))
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
			t.Errorf("panel %q is outside the 24-column grid: %+v", p.Title, p.GridPos)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if o, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", o, p.Title)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, "etlhub_") {
				t.Errorf("panel %q queries %q", p.Title, tg.Expr)
			}
		}
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPrometheusScrapesTheHub: a real Prometheus scrapes the hub with a
// bearer token and can query the state gauges.
func TestPrometheusScrapesTheHub(t *testing.T) {
	h := stateHub(t)
	u, _ := url.Parse(h.url)
	p := testsrv.StartPrometheus(t, fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: etlhub
    authorization: {type: Bearer, credentials: %q}
    static_configs: [{targets: [%q]}]
`, viewTok, u.Host))
	query := func(q string) []map[string]any {
		resp, err := http.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var out struct {
			Data struct {
				Result []map[string]any `json:"result"`
			} `json:"data"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		return out.Data.Result
	}
	var res []map[string]any
	h.eventually("Prometheus has scraped the firing alert", 30*time.Second, func() bool {
		res = query(`etlhub_alerts{rule="failed",state="firing"} == 1`)
		return len(res) == 1
	})
	if m := res[0]["metric"].(map[string]any); m["severity"] != "warning" || m["job"] != "etlhub" {
		t.Fatalf("scraped series = %v", m)
	}
	// The per-job gauges keep their own labels (no exported_job).
	if r := query(`etlhub_job_breach_probability{tenant="dade",etl_job="roster-import"}`); len(r) != 1 {
		t.Fatalf("breach probability not scraped with its labels: %v", r)
	}
	if up := query(`up{job="etlhub"}`); len(up) != 1 || up[0]["value"].([]any)[1] != "1" {
		t.Fatalf("up = %v\n%s", up, p.Log())
	}
	if r := query(`etlhub_job_risk{tenant="dade",risk="at-risk"}`); len(r) != 1 {
		t.Fatalf("risk gauge not scraped: %v", r)
	}
}
