package api

import (
	"regexp"
	"strconv"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
)

// TextPart is one piece of a reason or a summary as the API gives it beside
// the text (why_parts, summary_parts): the text as the rules wrote it, and
// At when that piece is a time, the instant it names. The pieces' texts
// joined are the text; a page shows each At in its viewer's zone and the
// rest as text, so it never matches times in words itself, and a reason
// the rules word another way keeps its times.
type TextPart struct {
	Text string     `json:"text"`
	At   *time.Time `json:"at,omitempty"`
}

// timeInText matches the times the rules and the receivers write in
// reasons and summaries: an RFC 3339 time ("2026-09-01T11:00:00Z"), or a
// clock in UTC, "11:00Z", "11:00:30Z" or "11:00 UTC".
var timeInText = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)|\b([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(?:Z| UTC\b)`)

// textParts cuts text into its words and its times. A full time is the
// instant it says; a clock ("11:00Z") is the instant among known (the
// times the reason is about: deadline, predicted finish, ...) with that UTC
// time of day nearest ref, else the instant with that time of day nearest
// ref. Nil when the text names no time (the text alone says it all).
func textParts(text string, ref time.Time, known ...time.Time) []TextPart {
	found := timeInText.FindAllStringSubmatchIndex(text, -1)
	if len(found) == 0 {
		return nil
	}
	out := make([]TextPart, 0, 2*len(found)+1)
	last := 0
	for _, m := range found {
		at, ok := instantOf(text, m, ref, known)
		if !ok {
			continue
		}
		if m[0] > last {
			out = append(out, TextPart{Text: text[last:m[0]]})
		}
		out = append(out, TextPart{Text: text[m[0]:m[1]], At: &at})
		last = m[1]
	}
	if last == 0 {
		return nil
	}
	if last < len(text) {
		out = append(out, TextPart{Text: text[last:]})
	}
	return out
}

// instantOf is the instant of the match m of timeInText in text.
func instantOf(text string, m []int, ref time.Time, known []time.Time) (time.Time, bool) {
	if m[2] < 0 { // a full time
		t, err := time.Parse(time.RFC3339Nano, text[m[0]:m[1]])
		return t.UTC(), err == nil
	}
	h, _ := strconv.Atoi(text[m[2]:m[3]])
	mi, _ := strconv.Atoi(text[m[4]:m[5]])
	sec := 0
	if m[6] >= 0 {
		sec, _ = strconv.Atoi(text[m[6]:m[7]])
	}
	of := time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(sec)*time.Second
	ref = ref.UTC()
	var best time.Time
	for _, k := range known {
		if k.IsZero() {
			continue
		}
		k = k.UTC()
		day := k.Truncate(24 * time.Hour)
		if got := k.Sub(day).Truncate(time.Second); got != of && !(m[6] < 0 && got.Truncate(time.Minute) == of) {
			continue
		}
		if best.IsZero() || absDur(k.Sub(ref)) < absDur(best.Sub(ref)) {
			best = day.Add(of)
		}
	}
	if !best.IsZero() {
		return best, true
	}
	day := ref.Truncate(24 * time.Hour).Add(of)
	best = day
	for _, d := range []time.Time{day.Add(-24 * time.Hour), day.Add(24 * time.Hour)} {
		if absDur(d.Sub(ref)) < absDur(best.Sub(ref)) {
			best = d
		}
	}
	return best, true
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// whyParts are a job's reason's parts, its times among the job's own.
func whyParts(row *StatusRow, now time.Time) []TextPart {
	if row.Why == "" {
		return nil
	}
	known := []time.Time{}
	for _, t := range []*time.Time{row.Deadline, row.PredictedFinish, row.FinishLo, row.FinishHi, row.StartedAt, row.UpdatedAt, row.LastSuccessAt} {
		if t != nil {
			known = append(known, *t)
		}
	}
	for _, o := range []*rules.Outcome{row.Outcome, row.LastNight} {
		if o != nil {
			known = append(known, o.Night)
			if o.FinishedAt != nil {
				known = append(known, *o.FinishedAt)
			}
		}
	}
	return textParts(row.Why, now, known...)
}

// AlertView is an alert as GET /api/v1/alerts answers it: the alert, and
// its summary's parts with the times it names.
type AlertView struct {
	model.Alert
	SummaryParts []TextPart `json:"summary_parts,omitempty"`
}

// alertView is a's view; its summary's clocks are among its own times and
// its details' (deadline, predicted finish, since, ...).
func alertView(a model.Alert) AlertView {
	known := []time.Time{a.Night, a.PendingSince, a.FiredAt, a.LastSeen}
	known = appendTimes(known, a.Details)
	ref := a.LastSeen
	if ref.IsZero() {
		ref = a.PendingSince
	}
	return AlertView{Alert: a, SummaryParts: textParts(a.Summary, ref, known...)}
}

// appendTimes adds the times in v (details as the rules made them, or as
// read back from the store's JSON: times as RFC 3339 strings), through
// maps and lists.
func appendTimes(out []time.Time, v any) []time.Time {
	switch x := v.(type) {
	case time.Time:
		out = append(out, x)
	case *time.Time:
		if x != nil {
			out = append(out, *x)
		}
	case string:
		if len(x) >= 20 && len(x) <= 40 {
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				out = append(out, t)
			}
		}
	case map[string]any:
		for _, e := range x {
			out = appendTimes(out, e)
		}
	case []any:
		for _, e := range x {
			out = appendTimes(out, e)
		}
	case []map[string]any:
		for _, e := range x {
			out = appendTimes(out, e)
		}
	}
	return out
}
