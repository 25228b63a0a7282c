package main

import (
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
	"text/tabwriter"
	"time"
)

// riskOrder sorts the board: the worst first.
var riskOrder = map[string]int{"breached": 0, "predicted-breach": 1, "at-risk": 2, "running": 3, "ok": 4, "idle": 5, "": 6}

// statusRow is the part of /api/v1/status the board shows.
type statusRow struct {
	Tenant, Job, Risk, State, Stage, Error string
	ProgressPct                            *float64   `json:"progress_pct"`
	ElapsedS                               *int64     `json:"elapsed_s"`
	PredictedFinish                        *time.Time `json:"predicted_finish"`
	Deadline                               *time.Time `json:"deadline"`
	LastSuccessAt                          *time.Time `json:"last_success_at"`
	ActiveAlerts                           int        `json:"active_alerts"`
}

// status prints the hub's board as a table: `etlhub status [--tenant T]`.
func status(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hub := fs.String("url", envOr("ETLHUB_URL", "http://127.0.0.1:8080"), "the hub's URL (ETLHUB_URL)")
	tenant := fs.String("tenant", "", "only this tenant")
	color := fs.String("color", "auto", "auto, always or never")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	u := strings.TrimRight(*hub, "/") + "/api/v1/status"
	if *tenant != "" {
		u += "?tenant=" + url.QueryEscape(*tenant)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		fmt.Fprintln(stderr, "etlhub status:", err)
		return 2
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
		Jobs  []statusRow `json:"jobs"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		fmt.Fprintf(stderr, "etlhub status: %s answered something that is not the status API (HTTP %d)\n", *hub, resp.StatusCode)
		return 1
	}
	if resp.StatusCode != 200 {
		msg := resp.Status
		if body.Error != nil {
			msg = body.Error.Message
		}
		fmt.Fprintf(stderr, "etlhub status: %s (set ETLHUB_TOKEN)\n", msg)
		return 1
	}
	sort.SliceStable(body.Jobs, func(i, j int) bool {
		a, b := body.Jobs[i], body.Jobs[j]
		if riskOrder[a.Risk] != riskOrder[b.Risk] {
			return riskOrder[a.Risk] < riskOrder[b.Risk]
		}
		return a.Tenant+a.Job < b.Tenant+b.Job
	})
	paint := *color == "always" || (*color == "auto" && isTTY(stdout))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tJOB\tRISK\tSTATE\tSTAGE\tPROGRESS\tELAPSED\tPREDICTED\tDEADLINE\tLAST SUCCESS\tALERTS")
	for _, r := range body.Jobs {
		risk := r.Risk
		if risk == "" {
			risk = "-"
		}
		if paint {
			risk = colour(risk)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.Tenant, r.Job, risk, dash(r.State), dash(r.Stage),
			pct(r.ProgressPct), dur(r.ElapsedS), hm(r.PredictedFinish), hm(r.Deadline), ago(r.LastSuccessAt), r.ActiveAlerts)
	}
	tw.Flush()
	return 0
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func colour(risk string) string {
	code := map[string]string{"breached": "1;31", "predicted-breach": "31", "at-risk": "33", "running": "36", "ok": "32"}[risk]
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
