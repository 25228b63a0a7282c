package rules

import (
	"sort"
	"time"
)

// Interval is a span of time [From, To).
type Interval struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Seen is how much of [from, to) the hub could see: its length less the
// parts that fall in blind intervals (the hub's own outages, when its store
// did not answer and nothing could be stored or collected). The intervals
// may overlap and come in any order. A job judged over time the hub itself
// was blind to would be blamed for the hub's outage: rules that measure a
// silence (stalled, missed-start) measure what Seen says.
func Seen(from, to time.Time, blind []Interval) time.Duration {
	if !to.After(from) {
		return to.Sub(from)
	}
	d := to.Sub(from)
	if len(blind) == 0 {
		return d
	}
	bs := make([]Interval, 0, len(blind))
	for _, b := range blind {
		f, t := maxTime(b.From, from), minTime(b.To, to)
		if t.After(f) {
			bs = append(bs, Interval{f, t})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].From.Before(bs[j].From) })
	var end time.Time
	for _, b := range bs {
		if b.From.Before(end) {
			b.From = end
		}
		if b.To.After(b.From) {
			d -= b.To.Sub(b.From)
			end = b.To
		}
	}
	return d
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
