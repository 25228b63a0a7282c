package notifier

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/etlhub/etlhub/model"
)

// Digest is a product owner's summary of a window of nights for a group of
// tenants, with the same window a week earlier for the trend.
type Digest struct {
	Title        string
	From, To     time.Time
	Nights       int // nights whose deadline fell in the window
	OnTime       int
	Late         []LateNight
	Missed       []LateNight // never succeeded
	MedianMin    float64     // median run duration of successful runs
	WorstMin     float64
	WorstJob     string
	WindowMin    float64 // median start-to-deadline window, for comparison
	LateUploads  []LateNight
	QualityErr   int64
	QualityWarn  int64
	TopErrors    []Count
	Alerts       []Count // firings by rule
	PrevOnTime   float64 // on-time rate a week earlier, -1 when unknown
	DashboardURL string
}

// LateNight is one job's night that went wrong, and by how much.
type LateNight struct {
	Tenant, Job string
	Minutes     float64
}

// Count is a thing and how often it happened.
type Count struct {
	Name string
	N    int
}

// OnTimeRate is the share of nights that succeeded by their deadline.
func (d *Digest) OnTimeRate() float64 {
	if d.Nights == 0 {
		return -1
	}
	return float64(d.OnTime) / float64(d.Nights)
}

// BuildDigest summarises runs and alert firings over [from, to) for specs;
// prev are the runs of the week before, for the trend. It is pure.
func BuildDigest(title string, specs []model.JobSpec, runs, prev []model.Run, firings []model.Transition, from, to time.Time) Digest {
	d := Digest{Title: title, From: from, To: to}
	nights := judgeNights(specs, runs, from, to)
	var durations, windows []float64
	for _, n := range nights {
		d.Nights++
		windows = append(windows, n.deadline.Sub(n.start).Minutes())
		switch {
		case n.ok == nil:
			d.Missed = append(d.Missed, LateNight{n.spec.Tenant, n.spec.Job, to.Sub(n.deadline).Minutes()})
		case n.ok.FinishedAt != nil && n.ok.FinishedAt.After(n.deadline):
			d.Late = append(d.Late, LateNight{n.spec.Tenant, n.spec.Job, n.ok.FinishedAt.Sub(n.deadline).Minutes()})
		default:
			d.OnTime++
		}
		if n.ok != nil && n.ok.StartedAt != nil && n.ok.FinishedAt != nil {
			m := n.ok.FinishedAt.Sub(*n.ok.StartedAt).Minutes()
			durations = append(durations, m)
			if m > d.WorstMin {
				d.WorstMin, d.WorstJob = m, n.spec.Tenant+"/"+n.spec.Job
			}
		}
		if exp, ok := n.spec.FilesExpectedFor(n.start); ok && n.arrived != nil && n.arrived.After(exp) {
			d.LateUploads = append(d.LateUploads, LateNight{n.spec.Tenant, n.spec.Job, n.arrived.Sub(exp).Minutes()})
		}
	}
	d.MedianMin = median(durations)
	d.WindowMin = median(windows)
	errs := map[string]int{}
	for _, r := range runs {
		d.QualityErr += r.QualityErrors
		d.QualityWarn += r.QualityWarnings
		if r.State == model.StateFailed && r.Error != "" {
			errs[Clip(r.Error, 120)]++
		}
	}
	d.TopErrors = top(errs, 5)
	byRule := map[string]int{}
	for _, f := range firings {
		byRule[f.Alert.Rule]++
	}
	d.Alerts = top(byRule, 20)
	d.PrevOnTime = -1
	if pn := judgeNights(specs, prev, from.AddDate(0, 0, -7), to.AddDate(0, 0, -7)); len(pn) > 0 {
		ok := 0
		for _, n := range pn {
			if n.ok != nil && (n.ok.FinishedAt == nil || !n.ok.FinishedAt.After(n.deadline)) {
				ok++
			}
		}
		d.PrevOnTime = float64(ok) / float64(len(pn))
	}
	sort.Slice(d.Late, func(i, j int) bool { return d.Late[i].Minutes > d.Late[j].Minutes })
	return d
}

type judged struct {
	spec            *model.JobSpec
	start, deadline time.Time
	ok              *model.Run // the run that succeeded, if any
	arrived         *time.Time
}

// judgeNights finds every night of specs whose deadline is in [from, to) and
// its successful run.
func judgeNights(specs []model.JobSpec, runs []model.Run, from, to time.Time) []judged {
	byJob := map[string][]model.Run{}
	for _, r := range runs {
		byJob[r.Tenant+"/"+r.Job] = append(byJob[r.Tenant+"/"+r.Job], r)
	}
	var out []judged
	for i := range specs {
		s := &specs[i]
		for start := s.NextStart(from.Add(-48 * time.Hour)); !start.IsZero() && start.Before(to); start = s.NextStart(start) {
			dl := s.DeadlineFor(start)
			if dl.Before(from) || !dl.Before(to) {
				continue
			}
			n := judged{spec: s, start: start, deadline: dl}
			next := s.NextStart(start)
			for _, r := range byJob[s.Key()] {
				at := r.SortAt()
				if at.Before(start.Add(-time.Hour)) || !at.Before(next.Add(-time.Hour)) {
					continue
				}
				if r.FilesArrivedAt != nil && (n.arrived == nil || r.FilesArrivedAt.Before(*n.arrived)) {
					n.arrived = r.FilesArrivedAt
				}
				if r.State == model.StateSucceeded && n.ok == nil {
					rr := r
					n.ok = &rr
				}
			}
			out = append(out, n)
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func top(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Text renders the digest as short lines, readable at a glance (Slack
// mrkdwn, every outside string escaped).
func (d *Digest) Text() []string {
	esc := Mrkdwn
	pct := func(x float64) string {
		if x < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.0f%%", 100*x)
	}
	trend := ""
	if d.PrevOnTime >= 0 && d.OnTimeRate() >= 0 {
		delta := 100 * (d.OnTimeRate() - d.PrevOnTime)
		trend = fmt.Sprintf(" (%+.0f pts vs last week's %s)", delta, pct(d.PrevOnTime))
	}
	lines := []string{
		fmt.Sprintf("*%s* — %s to %s", esc(d.Title), d.From.Format("Jan 2 15:04"), d.To.Format("Jan 2 15:04 MST")),
		fmt.Sprintf("*%d nights*, %d on time: *%s*%s", d.Nights, d.OnTime, pct(d.OnTimeRate()), trend),
		fmt.Sprintf("Duration: median %.0f min, worst %.0f min (%s), against a %.0f min window", d.MedianMin, d.WorstMin, esc(d.WorstJob), d.WindowMin),
	}
	if len(d.Late)+len(d.Missed) > 0 {
		var parts []string
		for _, l := range d.Missed {
			parts = append(parts, fmt.Sprintf("%s/%s never succeeded", esc(l.Tenant), esc(l.Job)))
		}
		for _, l := range d.Late {
			parts = append(parts, fmt.Sprintf("%s/%s %.0f min late", esc(l.Tenant), esc(l.Job), l.Minutes))
		}
		lines = append(lines, "Late: "+strings.Join(parts, "; "))
	}
	if len(d.LateUploads) > 0 {
		var parts []string
		for _, l := range d.LateUploads {
			parts = append(parts, fmt.Sprintf("%s/%s files %.0f min late", esc(l.Tenant), esc(l.Job), l.Minutes))
		}
		lines = append(lines, "Late uploads: "+strings.Join(parts, "; "))
	}
	lines = append(lines, fmt.Sprintf("Data quality: %d errors, %d warnings", d.QualityErr, d.QualityWarn))
	if len(d.TopErrors) > 0 {
		var parts []string
		for _, c := range d.TopErrors {
			parts = append(parts, fmt.Sprintf("%d× %s", c.N, esc(c.Name)))
		}
		lines = append(lines, "Top errors: "+strings.Join(parts, "; "))
	}
	if len(d.Alerts) > 0 {
		var parts []string
		for _, c := range d.Alerts {
			parts = append(parts, fmt.Sprintf("%s %d", esc(c.Name), c.N))
		}
		lines = append(lines, "Alerts raised: "+strings.Join(parts, ", "))
	}
	if _, ok := WebURL(d.DashboardURL); ok {
		lines = append(lines, MrkdwnLink(d.DashboardURL, "Open the dashboard"))
	}
	return lines
}
