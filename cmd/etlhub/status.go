package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/etlhub/etlhub/model"
)

// riskOrder sorts the board: the worst first.
var riskOrder = map[model.Risk]int{model.RiskBreached: 0, model.RiskPredicted: 1, model.RiskAtRisk: 2, model.RiskRunning: 3, model.RiskOK: 4, model.RiskIdle: 5, "": 6}

// statusRow is the part of /api/v1/status the board shows.
type statusRow struct {
	Tenant, Job, State, Stage, Error string
	Risk                             model.Risk
	ProgressPct                      *float64   `json:"progress_pct"`
	ElapsedS                         *int64     `json:"elapsed_s"`
	PredictedFinish                  *time.Time `json:"predicted_finish"`
	Deadline                         *time.Time `json:"deadline"`
	LastSuccessAt                    *time.Time `json:"last_success_at"`
	ActiveAlerts                     int        `json:"active_alerts"`
}

// status prints the hub's board: `etlhub status [--tenant T] [--json]`.
func status(ctx context.Context, c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	hub := fs.String("url", envOr("ETLHUB_URL", "http://127.0.0.1:8080"), "the hub's `URL` (ETLHUB_URL)")
	tenant := fs.String("tenant", "", "only this `tenant`")
	asJSON := fs.Bool("json", false, "print the rows as JSON (all fields the API gives), worst first")
	color := fs.String("color", "auto", "colour the risk: `auto`, always or never (auto: on a terminal, unless NO_COLOR or TERM=dumb)")
	if _, code, done := c.parse(fs, args, stdout, stderr); done {
		return code
	}
	paint, err := colourMode(*color, stdout)
	if err != nil {
		return c.fail(stderr, "%v", err)
	}
	u := strings.TrimRight(*hub, "/") + "/api/v1/status"
	if *tenant != "" {
		u += "?tenant=" + url.QueryEscape(*tenant)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return c.fail(stderr, "--url: %v", err)
	}
	if tok := os.Getenv("ETLHUB_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "etlhub status:", err)
		return 1
	}
	defer resp.Body.Close()
	var body struct {
		Jobs  []json.RawMessage `json:"jobs"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		fmt.Fprintf(stderr, "etlhub status: %s answered something that is not the status API (HTTP %d)\n", clean(*hub), resp.StatusCode)
		return 1
	}
	if resp.StatusCode != 200 {
		msg := resp.Status
		if body.Error != nil {
			msg = body.Error.Message
		}
		hint := ""
		if resp.StatusCode == 401 {
			hint = " (set ETLHUB_TOKEN)"
		}
		fmt.Fprintf(stderr, "etlhub status: %s%s\n", clean(msg), hint)
		return 1
	}
	rows := make([]statusRow, len(body.Jobs))
	for i, raw := range body.Jobs {
		if err := json.Unmarshal(raw, &rows[i]); err != nil {
			fmt.Fprintf(stderr, "etlhub status: row %d of the answer: %v\n", i, err)
			return 1
		}
	}
	if *tenant != "" && len(rows) == 0 {
		fmt.Fprintf(stderr, "etlhub status: no tenant %q on this hub (or outside the token's tenants)\n", clean(*tenant))
		return 1
	}
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := rows[order[i]], rows[order[j]]
		if riskOrder[a.Risk] != riskOrder[b.Risk] {
			return riskOrder[a.Risk] < riskOrder[b.Risk]
		}
		return a.Tenant+a.Job < b.Tenant+b.Job
	})
	deps := dependencies(ctx, *hub, *tenant)
	if *asJSON {
		out := make([]json.RawMessage, len(order))
		for i, k := range order {
			out[i] = body.Jobs[k]
		}
		doc := map[string]any{"jobs": out}
		if deps != nil {
			doc["dependencies"] = deps
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			fmt.Fprintln(stderr, "etlhub status:", err)
			return 1
		}
		stdout.Write(append(escapeC1(b), '\n'))
		return 0
	}
	table := [][]string{{"TENANT", "JOB", "RISK", "STATE", "STAGE", "PROGRESS", "ELAPSED", "PREDICTED", "DEADLINE", "LAST SUCCESS", "ALERTS"}}
	for _, k := range order {
		r := rows[k]
		table = append(table, []string{clean(r.Tenant), clean(r.Job), dash(clean(string(r.Risk))), dash(clean(r.State)), dash(clean(r.Stage)),
			pct(r.ProgressPct), dur(r.ElapsedS), hm(r.PredictedFinish), hm(r.Deadline), ago(r.LastSuccessAt), fmt.Sprint(r.ActiveAlerts)})
	}
	var paintCell func(row, col int, s string) string
	if paint {
		paintCell = func(row, col int, s string) string {
			if row == 0 || col != 2 {
				return s
			}
			return colour(s)
		}
	}
	writeTable(stdout, table, paintCell)
	if len(deps) > 0 {
		dt := [][]string{{"DEPENDENCY", "KIND", "TENANT", "STATE", "LATENCY", "MEASURED", "WHEN", "ERROR"}}
		for _, d := range deps {
			state := "up"
			if !d.Up {
				state = "down"
			}
			lat := "-"
			if v, ok := d.Values["latency_ms"]; ok {
				lat = fmt.Sprintf("%.1f ms", v)
			}
			dt = append(dt, []string{clean(d.Subject), clean(d.Kind), dash(clean(d.Tenant)), state, lat, clean(depFacts(d.Values)),
				ago(&d.At), clean(model.Clip(d.Error, 120))})
		}
		var paintDep func(row, col int, s string) string
		if paint {
			paintDep = func(row, col int, s string) string {
				if row == 0 || col != 3 {
					return s
				}
				if strings.TrimSpace(s) == "down" {
					return "\x1b[1;31m" + s + "\x1b[0m"
				}
				return "\x1b[32m" + s + "\x1b[0m"
			}
		}
		fmt.Fprintln(stdout)
		writeTable(stdout, dt, paintDep)
	}
	return 0
}

// dependency is the part of /api/v1/dependencies the status shows.
type dependency struct {
	Subject string             `json:"subject"`
	Kind    string             `json:"kind"`
	Tenant  string             `json:"tenant,omitempty"`
	Up      bool               `json:"up"`
	Error   string             `json:"error,omitempty"`
	At      time.Time          `json:"at"`
	Values  map[string]float64 `json:"values,omitempty"`
}

// dependencies reads the hub's dependencies (nil when the hub has none to
// show or is older than the endpoint); with tenant, that tenant's and the
// shared ones.
func dependencies(ctx context.Context, hub, tenant string) []dependency {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(hub, "/")+"/api/v1/dependencies", nil)
	if err != nil {
		return nil
	}
	if tok := os.Getenv("ETLHUB_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil
	}
	var body struct {
		Dependencies []dependency `json:"dependencies"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return nil
	}
	out := body.Dependencies[:0]
	for _, d := range body.Dependencies {
		if tenant == "" || d.Tenant == "" || d.Tenant == tenant {
			out = append(out, d)
		}
	}
	return out
}

// depFacts is the few values worth a glance, in words.
func depFacts(v map[string]float64) string {
	var f []string
	add := func(name, format string) {
		if x, ok := v[name]; ok {
			f = append(f, fmt.Sprintf(format, x))
		}
	}
	add("p95_ms", "p95 %.0f ms")
	if x, ok := v["memory_used_ratio"]; ok {
		f = append(f, fmt.Sprintf("memory %.0f%%", 100*x))
	}
	if x, ok := v["connections_used_ratio"]; ok {
		f = append(f, fmt.Sprintf("connections %.0f%%", 100*x))
	}
	if v["rejected_connections"] > 0 {
		add("rejected_connections", "%.0f refused")
	}
	if v["clients_blocked"] > 0 {
		add("clients_blocked", "%.0f blocked")
	}
	if v["evictions_per_s"] > 0 {
		add("evictions_per_s", "%.1f evictions/s")
	}
	if x, ok := v["error_rate"]; ok && v["calls"] > 0 {
		f = append(f, fmt.Sprintf("%.0f%% errors", 100*x))
	}
	if x := v["breaker_open"]; x >= 1 {
		f = append(f, "breaker open")
	} else if x > 0 {
		f = append(f, "breaker half-open")
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, ", ")
}

// writeTable aligns cells in columns two spaces apart, measuring text in
// characters; paint (may be nil) colours a cell after it is padded, so
// escape sequences never count towards a column's width.
func writeTable(w io.Writer, rows [][]string, paint func(row, col int, s string) string) {
	var width []int
	for _, r := range rows {
		for i, cell := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var b bytes.Buffer
	for ri, r := range rows {
		for i, cell := range r {
			pad := ""
			if i < len(r)-1 {
				pad = strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell)+2)
			}
			if paint != nil {
				cell = paint(ri, i, cell)
			}
			b.WriteString(cell + pad)
		}
		b.WriteByte('\n')
	}
	w.Write(b.Bytes())
}

// clean makes a string from outside safe to print on a terminal: control
// characters (C0, DEL, C1: escape sequences that set the title, clear the
// screen or move the cursor, and line breaks that would forge rows) and
// bidirectional overrides are shown escaped, invalid UTF-8 as U+FFFD.
func clean(s string) string {
	if !needsCleaning(s) {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			fmt.Fprintf(&b, "\\x%02x", r)
		case (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsCleaning(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return true
		}
	}
	return false
}

// escapeC1 writes C1 controls and bidirectional overrides inside JSON text
// as \u escapes (encoding/json escapes C0 but leaves these raw).
func escapeC1(b []byte) []byte {
	s := string(b)
	if !needsCleaning(s) {
		return b
	}
	var out strings.Builder
	for _, r := range s {
		if (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x7f {
			fmt.Fprintf(&out, "\\u%04x", r)
			continue
		}
		out.WriteRune(r)
	}
	return []byte(out.String())
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func colour(risk string) string {
	code := map[model.Risk]string{model.RiskBreached: "1;31", model.RiskPredicted: "31", model.RiskAtRisk: "33", model.RiskRunning: "36", model.RiskOK: "32"}[model.Risk(strings.TrimSpace(risk))]
	if code == "" {
		return risk
	}
	return "\x1b[" + code + "m" + risk + "\x1b[0m"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pct(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", *p)
}

func dur(s *int64) string {
	if s == nil {
		return "-"
	}
	return (time.Duration(*s) * time.Second).String()
}

func hm(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("01-02 15:04Z")
}

func ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return time.Since(*t).Round(time.Minute).String() + " ago"
}
