package routing

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/etlhub/etlhub/internal/config"
)

// TimeIntervalConfig is a named set of periods (notify.time_intervals), as
// in Alertmanager: it holds at a time when any of its periods does.
type TimeIntervalConfig struct {
	Name          string         `yaml:"name"`
	TimeIntervals []PeriodConfig `yaml:"time_intervals"`
}

// PeriodConfig is one period: every field given must hold (an empty one is
// any). Ranges are inclusive, except times whose end is exclusive.
type PeriodConfig struct {
	Times       []TimeRangeConfig `yaml:"times"`
	Weekdays    []string          `yaml:"weekdays"`      // monday, monday:friday
	DaysOfMonth []string          `yaml:"days_of_month"` // 1, 1:7, -1 (the last), -7:-1
	Months      []string          `yaml:"months"`        // january:march, 1:3
	Years       []string          `yaml:"years"`         // 2026, 2026:2027
	Location    string            `yaml:"location"`      // IANA zone; UTC when empty
}

// TimeRangeConfig is a time of day range, HH:MM (end exclusive; 24:00 ends
// the day).
type TimeRangeConfig struct {
	Start string `yaml:"start_time"`
	End   string `yaml:"end_time"`
}

type span struct{ lo, hi int }

// period is a compiled PeriodConfig.
type period struct {
	times, weekdays, days, months, years []span
	loc                                  *time.Location
}

// Intervals are the compiled time intervals by name.
type Intervals map[string][]period

// Contains reports whether the named interval holds at t (false for a name
// that is not defined).
func (iv Intervals) Contains(name string, t time.Time) bool {
	for i := range iv[name] {
		if iv[name][i].contains(t) {
			return true
		}
	}
	return false
}

func inSpans(spans []span, v int) bool {
	if spans == nil {
		return true
	}
	for _, s := range spans {
		if v >= s.lo && v <= s.hi {
			return true
		}
	}
	return false
}

func (p *period) contains(t time.Time) bool {
	t = t.In(p.loc)
	minute := t.Hour()*60 + t.Minute()
	if p.times != nil {
		in := false
		for _, s := range p.times {
			in = in || (minute >= s.lo && minute < s.hi)
		}
		if !in {
			return false
		}
	}
	if p.days != nil {
		n := time.Date(t.Year(), t.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
		in := false
		for _, s := range p.days {
			lo, hi := s.lo, s.hi
			if lo < 0 {
				lo = n + lo + 1
			}
			if hi < 0 {
				hi = n + hi + 1
			}
			if lo > n {
				continue // the 31st in a month of 30 days
			}
			in = in || (t.Day() >= max(lo, 1) && t.Day() <= min(hi, n))
		}
		if !in {
			return false
		}
	}
	return inSpans(p.weekdays, int(t.Weekday())) && inSpans(p.months, int(t.Month())) && inSpans(p.years, t.Year())
}

var weekdayNames = map[string]int{"sunday": 0, "monday": 1, "tuesday": 2, "wednesday": 3, "thursday": 4, "friday": 5, "saturday": 6}

var monthNames = map[string]int{"january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
	"august": 8, "september": 9, "october": 10, "november": 11, "december": 12}

// CompileIntervals checks notify.time_intervals at key and builds them.
func CompileIntervals(cs []TimeIntervalConfig, p *config.Problems, key string) Intervals {
	out := Intervals{}
	for i, c := range cs {
		k := fmt.Sprintf("%s[%d]", key, i)
		switch {
		case c.Name == "":
			p.Add(k+".name", "is required")
		case out[c.Name] != nil:
			p.Add(k+".name", "%q is used twice", c.Name)
		}
		ps := []period{}
		for j, pc := range c.TimeIntervals {
			ps = append(ps, compilePeriod(pc, p, fmt.Sprintf("%s.time_intervals[%d]", k, j)))
		}
		out[c.Name] = ps
	}
	return out
}

func compilePeriod(c PeriodConfig, p *config.Problems, key string) period {
	out := period{loc: time.UTC}
	if c.Location != "" {
		loc, err := time.LoadLocation(c.Location)
		if err != nil {
			p.Add(key+".location", "%q is not a time zone (use an IANA name such as America/New_York)", c.Location)
		} else {
			out.loc = loc
		}
	}
	for i, t := range c.Times {
		k := fmt.Sprintf("%s.times[%d]", key, i)
		lo, err1 := clockMinute(t.Start)
		hi, err2 := clockMinute(t.End)
		switch {
		case err1 != nil:
			p.Add(k+".start_time", "%v", err1)
		case err2 != nil:
			p.Add(k+".end_time", "%v", err2)
		case lo >= hi:
			p.Add(k, "start_time %s is not before end_time %s", t.Start, t.End)
		case lo == 24*60:
			p.Add(k+".start_time", "24:00 can only end a range")
		default:
			out.times = append(out.times, span{lo, hi})
		}
	}
	out.weekdays = ranges(c.Weekdays, p, key+".weekdays", func(s string) (int, error) {
		if v, ok := weekdayNames[strings.ToLower(s)]; ok {
			return v, nil
		}
		return 0, fmt.Errorf("%q is not a weekday (sunday..saturday)", s)
	}, false)
	out.days = ranges(c.DaysOfMonth, p, key+".days_of_month", func(s string) (int, error) {
		v, err := strconv.Atoi(s)
		if err != nil || v == 0 || v < -31 || v > 31 {
			return 0, fmt.Errorf("%q is not a day of the month (1..31, or -31..-1 from the end)", s)
		}
		return v, nil
	}, true)
	out.months = ranges(c.Months, p, key+".months", func(s string) (int, error) {
		if v, ok := monthNames[strings.ToLower(s)]; ok {
			return v, nil
		}
		if v, err := strconv.Atoi(s); err == nil && v >= 1 && v <= 12 {
			return v, nil
		}
		return 0, fmt.Errorf("%q is not a month (january..december or 1..12)", s)
	}, false)
	out.years = ranges(c.Years, p, key+".years", func(s string) (int, error) {
		if v, err := strconv.Atoi(s); err == nil && v >= 1 && v <= 9999 {
			return v, nil
		}
		return 0, fmt.Errorf("%q is not a year", s)
	}, false)
	return out
}

// clockMinute reads HH:MM as minutes after midnight (24:00 is the end).
func clockMinute(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM, 00:00..24:00)", s)
	}
	return hh*60 + mm, nil
}

// ranges reads "a" or "a:b" items. signed allows negative days counted from
// the end of the month, where a range must not mix signs the wrong way.
func ranges(items []string, p *config.Problems, key string, parse func(string) (int, error), signed bool) []span {
	if len(items) == 0 {
		return nil
	}
	out := []span{}
	for i, it := range items {
		k := fmt.Sprintf("%s[%d]", key, i)
		a, b, isRange := strings.Cut(strings.TrimSpace(it), ":")
		lo, err := parse(strings.TrimSpace(a))
		if err != nil {
			p.Add(k, "%v", err)
			continue
		}
		hi := lo
		if isRange {
			if hi, err = parse(strings.TrimSpace(b)); err != nil {
				p.Add(k, "%v", err)
				continue
			}
		}
		bad := lo > hi
		if signed && (lo < 0) != (hi < 0) {
			bad = lo < 0 // 1:-1 is the whole month; -1:1 is nothing
		}
		if bad {
			p.Add(k, "%q: the start is after the end", it)
			continue
		}
		out = append(out, span{lo, hi})
	}
	return out
}
