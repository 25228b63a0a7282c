package rules

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
)

// districts is n tenants with the same job and night: New York, 02:00,
// deadline 04:00 (an ordinary night takes about 72 minutes).
func districts(t *testing.T, n int) []model.JobSpec {
	specs := make([]model.JobSpec, n)
	for i := range specs {
		specs[i] = spec(t, "America/New_York", "0 2 * * *", "04:00")
		specs[i].Tenant = fmt.Sprintf("district-%02d", i)
	}
	return specs
}

// nights simulates each tenant's plan for tonight after five ordinary
// nights, merged in at order.
func nights(specs []model.JobSpec, tonight time.Time, plan func(i int) nightPlan) []model.Observation {
	var obs []model.Observation
	for i, s := range specs {
		var mine []model.Observation
		for k := 5; k >= 1; k-- {
			st := s.PrevStart(tonight.Add(-time.Duration(k-1)*24*time.Hour - time.Minute))
			mine = append(mine, simulate(nightPlan{start: st, filesLate: 5 * time.Minute, rows: 60000, rate: 1000}, fmt.Sprintf("h%d", k))...)
		}
		p := plan(i)
		p.start = tonight
		mine = append(mine, simulate(p, "tonight")...)
		for j := range mine {
			mine[j].Tenant = s.Tenant
		}
		obs = append(obs, mine...)
	}
	sort.SliceStable(obs, func(a, b int) bool { return obs[a].At.Before(obs[b].At) })
	return obs
}

// TestTwentyTenantsSlowAtOnceGetOnePage: every district's load slows to
// 40% of its pace at the same minute (the shared MongoDB having a bad
// night). The on-call gets one page that names the shared cause and lists
// the twenty; each district's own predicted breach still fires (on the
// board, in history) but is grouped under it, not paged on its own.
func TestTwentyTenantsSlowAtOnceGetOnePage(t *testing.T) {
	specs := districts(t, 20)
	e := NewEngine(specs, DefaultParams(), nil)
	tonight := specs[0].PrevStart(time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC))
	obs := nights(specs, tonight, func(int) nightPlan {
		return nightPlan{filesLate: 5 * time.Minute, rows: 60000, rate: 1000, slowFrom: 0.3, slowRate: 400}
	})
	tr := drive(e, obs, obs[0].At.Add(-time.Hour), specs[0].DeadlineFor(tonight).Add(30*time.Minute))
	var pages, grouped []model.Transition
	var shared *model.Alert
	for i := range tr {
		x := &tr[i]
		if x.Status != "firing" || x.Alert.Severity != model.SeverityCritical {
			continue
		}
		if x.Alert.Rule == RuleSharedSlowdown {
			shared = &x.Alert
		}
		if x.Alert.GroupedUnder != "" {
			grouped = append(grouped, *x)
		} else {
			pages = append(pages, *x)
		}
	}
	if len(pages) != 1 || shared == nil {
		var got []string
		for _, p := range pages {
			got = append(got, p.Alert.Rule+" "+p.Alert.Tenant)
		}
		t.Fatalf("%d pages, want the one shared page: %v", len(pages), got)
	}
	if shared.Scope != model.ScopeShared || len(shared.Affected) != 20 || shared.Tenant != "" {
		t.Fatalf("shared alert %+v", shared)
	}
	// Loading starts 10 minutes after 02:00 and slows at 30% of 60k rows.
	slowAt := tonight.Add(10*time.Minute + 18*time.Minute)
	if d := pages[0].At.Sub(slowAt); d < 0 || d > 30*time.Minute {
		t.Fatalf("the shared page came %v after the slowdown began", d)
	}
	breaches := 0
	for _, g := range grouped {
		if g.Alert.GroupedUnder != shared.Fingerprint {
			t.Fatalf("grouped under %q, not the shared alert", g.Alert.GroupedUnder)
		}
		if g.Alert.Rule == RulePredictedBreach {
			breaches++
		}
	}
	if breaches != 20 {
		t.Fatalf("%d districts' predicted breaches fired under the shared alert, want 20", breaches)
	}
}

// TestSlowdownsOfTheirOwnAreNotShared: three districts slow, each at its
// own time (their own trouble): no shared alert; each is paged on its own.
func TestSlowdownsOfTheirOwnAreNotShared(t *testing.T) {
	specs := districts(t, 5)
	e := NewEngine(specs, DefaultParams(), nil)
	tonight := specs[0].PrevStart(time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC))
	obs := nights(specs, tonight, func(i int) nightPlan {
		p := nightPlan{filesLate: 5 * time.Minute, rows: 60000, rate: 1000}
		if i < 3 {
			p.slowFrom, p.slowRate = 0.1+0.3*float64(i), 300
		}
		return p
	})
	tr := drive(e, obs, obs[0].At.Add(-time.Hour), specs[0].DeadlineFor(tonight).Add(30*time.Minute))
	if got := firing(tr, RuleSharedSlowdown); len(got) != 0 {
		t.Fatalf("independent slowdowns raised a shared alert: %s", got[0].Alert.Summary)
	}
	for _, x := range tr {
		if x.Alert.GroupedUnder != "" {
			t.Fatalf("grouped without a shared alert: %+v", x.Alert)
		}
	}
}

// The pure rule: a shared slowdown needs loads that were at pace and
// slowed together, or nearly everything slow; it holds while a load it
// struck is still slow or an alert it explains is open.
func TestSharedSlowdownRule(t *testing.T) {
	sp := DefaultSharedParams()
	t0 := time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC)
	loads := func(ratios ...float64) []Load {
		out := make([]Load, len(ratios))
		for i, r := range ratios {
			out[i] = Load{Tenant: fmt.Sprintf("t%d", i), Job: "j", Night: t0, Measured: true, Ratio: r}
		}
		return out
	}
	var st sharedState
	if s := SharedSlowdown(loads(1, 1, 1, 1), 0, sp, &st, t0); s != nil {
		t.Fatal("at pace")
	}
	s := SharedSlowdown(loads(0.6, 0.6, 0.6, 1), 0, sp, &st, t0.Add(time.Minute))
	if s == nil || s.Level != Trigger || len(s.Affected) != 3 || s.Affected[2].Tenant != "t2" {
		t.Fatalf("three struck together of four (the one at its pace not among them): %+v", s)
	}
	// Two tenants slowing at one moment is chance on a night of many
	// slowdowns, unless they are all that loads.
	var pair sharedState
	SharedSlowdown(loads(1, 1, 1), 0, sp, &pair, t0)
	if s := SharedSlowdown(loads(0.6, 0.6, 1), 0, sp, &pair, t0.Add(time.Minute)); s != nil {
		t.Fatalf("two struck together of three: %+v", s)
	}
	var both sharedState
	SharedSlowdown(loads(1, 1), 0, sp, &both, t0)
	if s := SharedSlowdown(loads(0.6, 0.6), 0, sp, &both, t0.Add(time.Minute)); s == nil || len(s.Affected) != 2 {
		t.Fatalf("the two loads in progress struck together: %+v", s)
	}
	// They recover but are still running, behind by what they lost: its
	// aftermath holds it (a late finish among them is its consequence),
	// and a run that begins now is not one it slowed.
	late := append(loads(1, 1, 1, 1), Load{Tenant: "new", Job: "j", Night: t0, Measured: true, Ratio: 1})
	s = SharedSlowdown(late, 0, sp, &st, t0.Add(time.Hour))
	if s == nil || s.Level != Hold || len(s.Affected) != 3 || s.Details["aftermath"] != true ||
		!strings.Contains(s.Summary, "is over; 3 of the 3 runs it slowed are still running") {
		t.Fatalf("aftermath: %+v", s)
	}
	// A run of another night is not behind because of it.
	other := []Load{{Tenant: "t0", Job: "j", Night: t0.Add(24 * time.Hour), Measured: true, Ratio: 1}}
	if s := SharedSlowdown(other, 0, sp, &st, t0.Add(2*time.Hour)); s != nil {
		t.Fatalf("held by the next night's run: %+v", s)
	}
	// They finish while an alert it explains is open: it holds, and says so.
	var held sharedState
	SharedSlowdown(loads(1, 1, 1, 1), 0, sp, &held, t0)
	SharedSlowdown(loads(0.6, 0.6, 0.6, 1), 0, sp, &held, t0.Add(time.Minute))
	if s := SharedSlowdown(nil, 2, sp, &held, t0.Add(time.Hour)); s == nil || s.Level != Hold ||
		!strings.Contains(s.Summary, "none of its loads is slow now; 2 alerts it explains are still open") {
		t.Fatalf("held by its open alerts: %+v", s)
	}
	// They finish; nothing it explains is open: it ends.
	var st1 sharedState
	SharedSlowdown(loads(1, 1, 1, 1), 0, sp, &st1, t0)
	SharedSlowdown(loads(0.6, 0.6, 0.6, 1), 0, sp, &st1, t0.Add(time.Minute))
	if s := SharedSlowdown(nil, 0, sp, &st1, t0.Add(time.Hour)); s != nil {
		t.Fatalf("held after its runs finished: %+v", s)
	}
	// Slow from their first measure (no onset): only nearly everything counts.
	var st2 sharedState
	if s := SharedSlowdown(loads(0.5, 0.5, 0.5, 1, 1), 0, sp, &st2, t0); s != nil {
		t.Fatal("three of five slow from the start is not shared")
	}
	var st3 sharedState
	if s := SharedSlowdown(loads(0.5, 0.5, 0.5, 0.5, 1), 0, sp, &st3, t0); s == nil || s.Level != Trigger {
		t.Fatal("four tenants of five slow is shared")
	}
	// Held while an alert it explains is open, even with every load done.
	if s := SharedSlowdown(nil, 1, sp, &st3, t0.Add(time.Hour)); s == nil || s.Level != Hold {
		t.Fatalf("not held by an open consequence: %+v", s)
	}
	// A load slow of its own since before it struck is not one it slowed:
	// its alerts page on their own.
	var own sharedState
	withOwn := func(ownRatio float64, rs ...float64) []Load {
		return append(loads(rs...), Load{Tenant: "own", Job: "j", Night: t0, Measured: true, Ratio: ownRatio})
	}
	SharedSlowdown(withOwn(1, 1, 1, 1, 1), 0, sp, &own, t0)
	if s := SharedSlowdown(withOwn(0.6, 1, 1, 1, 1), 0, sp, &own, t0.Add(time.Minute)); s != nil {
		t.Fatalf("one district's slowdown is shared: %+v", s)
	}
	s = SharedSlowdown(withOwn(0.6, 0.6, 0.6, 0.6, 1), 0, sp, &own, t0.Add(40*time.Minute))
	if s == nil || s.Level != Trigger || len(s.Affected) != 3 {
		t.Fatalf("three struck together of five, one slow since before: %+v", s)
	}
	for _, a := range s.Affected {
		if a.Tenant == "own" {
			t.Fatalf("a load slow of its own since before the strike is affected: %+v", s.Affected)
		}
	}
	if !strings.Contains(s.Summary, "3 of 5 loads in progress (3 tenants: t0, t1, t2) slowed together at 07:40Z") ||
		!strings.Contains(s.Summary, "slow of their own before it: own") {
		t.Fatalf("the summary does not tell the loads it struck from the one slow of its own: %s", s.Summary)
	}
	// One slow of its own that it slowed further is one it struck too.
	var worse sharedState
	SharedSlowdown(withOwn(1, 1, 1, 1, 1), 0, sp, &worse, t0)
	for m := 1; m < 40; m += 5 {
		SharedSlowdown(withOwn(0.6, 1, 1, 1, 1), 0, sp, &worse, t0.Add(time.Duration(m)*time.Minute))
	}
	if s := SharedSlowdown(withOwn(0.3, 0.6, 0.6, 0.6, 1), 0, sp, &worse, t0.Add(40*time.Minute)); s == nil || len(s.Affected) != 4 {
		t.Fatalf("a load slow of its own, slowed to half that when it struck, is not affected: %+v", s)
	}
	// The loads it struck are done; the one slow of its own does not hold it.
	if s := SharedSlowdown(withOwn(0.6), 0, sp, &own, t0.Add(90*time.Minute)); s != nil {
		t.Fatalf("held by a load slow of its own: %+v", s)
	}
	// Unmeasured runs in progress are affected but do not vote.
	var st4 sharedState
	ls := append(loads(0.6, 0.6), Load{Tenant: "w", Job: "j", Night: t0})
	SharedSlowdown(loads(1, 1), 0, sp, &st4, t0)
	if s := SharedSlowdown(ls, 0, sp, &st4, t0.Add(time.Minute)); s == nil || len(s.Affected) != 3 {
		t.Fatalf("a run downloading during it is not affected: %+v", s)
	}
}

// TestOwnSlowLoadsDoNotMakeACoincidenceShared: late in the night the loads
// still running are mostly the slow ones, slow of their own for hours. Two
// of them slowing within minutes of each other is a coincidence unless most
// of what loads was struck at that moment; a load that began slow just after
// a known onset was struck by it.
func TestOwnSlowLoadsDoNotMakeACoincidenceShared(t *testing.T) {
	sp := DefaultSharedParams()
	t0 := time.Date(2026, 9, 8, 13, 0, 0, 0, time.UTC)
	ld := func(tenant string, ratio float64, since time.Time) Load {
		return Load{Tenant: tenant, Job: "j", Night: t0, Measured: true, Ratio: ratio, Since: since}
	}
	long := t0.Add(-3 * time.Hour)
	var st sharedState
	// Two slow of their own since hours, three at pace.
	base := []Load{ld("a", 0.7, long), ld("b", 0.7, long), ld("c", 1, long), ld("d", 1, long), ld("e", 1, long)}
	if s := SharedSlowdown(base, 0, sp, &st, t0); s != nil {
		t.Fatalf("two loads slow of their own: %+v", s)
	}
	// c and d slow five minutes apart; e stays at pace: 4 of 5 are slow,
	// but only 2 of 5 were struck then.
	now := []Load{ld("a", 0.7, long), ld("b", 0.7, long), ld("c", 0.6, long), ld("d", 1, long), ld("e", 1, long)}
	SharedSlowdown(now, 0, sp, &st, t0.Add(5*time.Minute))
	now[3].Ratio = 0.6
	if s := SharedSlowdown(now, 0, sp, &st, t0.Add(10*time.Minute)); s != nil {
		t.Fatalf("a coincidence among loads slow of their own is shared: %+v", s)
	}

	// One load slows; another begins just after and is slow from its first
	// measure: together they are everything that loads.
	var st2 sharedState
	SharedSlowdown([]Load{ld("a", 1, long)}, 0, sp, &st2, t0)
	SharedSlowdown([]Load{ld("a", 0.6, long)}, 0, sp, &st2, t0.Add(5*time.Minute))
	s := SharedSlowdown([]Load{ld("a", 0.6, long), ld("b", 0.6, t0.Add(10*time.Minute))}, 0, sp, &st2, t0.Add(25*time.Minute))
	if s == nil || s.Level != Trigger {
		t.Fatalf("a load begun slow right after another's onset: %+v", s)
	}
	// Two that merely began slow together, no onset: not shared.
	var st3 sharedState
	if s := SharedSlowdown([]Load{ld("a", 0.6, t0), ld("b", 0.6, t0)}, 0, sp, &st3, t0.Add(20*time.Minute)); s != nil {
		t.Fatalf("two loads begun slow together, no onset: %+v", s)
	}
}

// TestAGapInCollectionIsNotAStall: the collector misses polls for 30
// minutes (longer than stale_after, shorter than twice it) in the middle of
// a load that is on course: no predicted breach. A run not heard of for
// longer than twice stale_after counts as no progress and is paged before
// its deadline.
func TestAGapInCollectionIsNotAStall(t *testing.T) {
	specs := districts(t, 1)
	tonight := specs[0].PrevStart(time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC))
	obs := nights(specs, tonight, func(int) nightPlan {
		return nightPlan{filesLate: 5 * time.Minute, rows: 60000, rate: 1000}
	})
	gapFrom := tonight.Add(40 * time.Minute)
	cut := func(from, to time.Time) []model.Observation {
		var out []model.Observation
		for _, o := range obs {
			if o.At.Before(from) || !o.At.Before(to) {
				out = append(out, o)
			}
		}
		return out
	}
	end := specs[0].DeadlineFor(tonight)
	pages := func(tr []model.Transition) []string {
		var out []string
		for _, x := range tr {
			if x.Status == model.TransitionFiring && x.Alert.Severity == model.SeverityCritical && !x.At.Before(tonight) {
				out = append(out, x.Alert.Rule+": "+x.Alert.Summary)
			}
		}
		return out
	}
	gap := cut(gapFrom, gapFrom.Add(30*time.Minute))
	if p := pages(drive(NewEngine(specs, DefaultParams(), nil), gap, obs[0].At.Add(-time.Hour), end.Add(time.Hour))); len(p) != 0 {
		t.Fatalf("a 30-minute gap in collection paged: %q", p)
	}
	silent := cut(gapFrom, end.Add(2*time.Hour))
	p := pages(drive(NewEngine(specs, DefaultParams(), nil), silent, obs[0].At.Add(-time.Hour), end))
	if len(p) == 0 || !strings.HasPrefix(p[0], RulePredictedBreach) || !strings.Contains(p[0], "nothing heard of it for") {
		t.Fatalf("a run silent from 40%% on: pages %q", p)
	}
}

// Loads begun during a slowdown with no history of their own pace went at
// the slowed pace from their start: they neither count for the shared
// cause nor against it; loads with history at pace count against it.
func TestSharedSlowdownIgnoresLoadsThatKnowNoOtherPace(t *testing.T) {
	sp := DefaultSharedParams()
	t0 := time.Date(2026, 9, 2, 5, 30, 0, 0, time.UTC)
	old := func(ratio float64) []Load {
		out := []Load{}
		for i := 0; i < 3; i++ {
			out = append(out, Load{Tenant: fmt.Sprintf("t%d", i), Job: "j", Night: t0, Measured: true, Ratio: ratio, Since: t0.Add(-time.Hour)})
		}
		return out
	}
	fresh := func(own bool) []Load {
		out := []Load{}
		for i := 0; i < 4; i++ {
			out = append(out, Load{Tenant: fmt.Sprintf("n%d", i), Job: "j", Night: t0, Measured: true, Ratio: 1, Since: t0.Add(5 * time.Minute), OwnPace: own})
		}
		return out
	}
	for _, own := range []bool{true, false} {
		var st sharedState
		SharedSlowdown(old(1), 0, sp, &st, t0)
		s := SharedSlowdown(append(old(0.6), fresh(own)...), 0, sp, &st, t0.Add(15*time.Minute))
		if own && s == nil {
			t.Fatal("three tenants struck together and four loads begun since with no pace but their own: not told")
		}
		if !own && s != nil {
			t.Fatalf("three struck of seven, four at their usual pace: %+v", s)
		}
	}
}

// TestSharedSlowdownOnsets: when a load slowed is told from how far its
// pace fell, not from the tick its 15-minute pace crossed the threshold; a
// load slow from its first measure that falls well below that has an onset;
// and a load unmeasured for a while (quiet, between stages) keeps what it
// was, so that coming back slow is an onset, not a start of its own.
func TestSharedSlowdownOnsets(t *testing.T) {
	sp := DefaultSharedParams()
	t0 := time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC)
	ld := func(tenant string, r, q float64) Load {
		return Load{Tenant: tenant, Job: "j", Night: t0, Measured: true, Ratio: r, Recent: q, Since: t0.Add(-time.Hour)}
	}
	key := func(tenant string) model.JobKey { return model.JobKey{Tenant: tenant, Job: "j"} }

	// At pace, then its 15-minute pace is 0.7 and its last 5 minutes' 0.4:
	// it fell 15·(1-0.7)/(1-0.4) = 7.5 minutes ago.
	var st sharedState
	SharedSlowdown([]Load{ld("a", 1, 1), ld("b", 1, 1), ld("c", 1, 1)}, 0, sp, &st, t0)
	s := SharedSlowdown([]Load{ld("a", 0.7, 0.4), ld("b", 0.7, 0.4), ld("c", 0.7, 0.4)}, 0, sp, &st, t0.Add(10*time.Minute))
	if got := st.pace[key("a")].onset; !got.Equal(t0.Add(150 * time.Second)) {
		t.Fatalf("onset %s, want 07:02:30", got)
	}
	if s == nil || !strings.Contains(s.Summary, "slowed together at 07:02Z") {
		t.Fatalf("the shared slowdown does not say when they slowed: %+v", s)
	}

	// Slow from its first measure (0.78), steady, then its recent pace
	// falls to 0.45: an onset, 15·(0.8-0.65)/(0.8-0.45) = 6.4 minutes ago.
	var born sharedState
	SharedSlowdown([]Load{ld("x", 0.78, 0.8)}, 0, sp, &born, t0)
	SharedSlowdown([]Load{ld("x", 0.78, 0.78)}, 0, sp, &born, t0.Add(5*time.Minute))
	if m := born.pace[key("x")]; !m.onset.IsZero() || m.born.IsZero() {
		t.Fatalf("steady and slow from its first measure: %+v", m)
	}
	SharedSlowdown([]Load{ld("x", 0.65, 0.45)}, 0, sp, &born, t0.Add(10*time.Minute))
	if m := born.pace[key("x")]; m.onset.Sub(t0.Add(10*time.Minute-386*time.Second)).Abs() > time.Second {
		t.Fatalf("a load slow from its start that fell well below it has no onset 6.4 minutes before: %+v", m)
	}

	// At pace, quiet for ten minutes, back slow: an onset.
	var quiet sharedState
	SharedSlowdown([]Load{ld("q", 1, 1)}, 0, sp, &quiet, t0)
	SharedSlowdown([]Load{{Tenant: "q", Job: "j", Night: t0}}, 0, sp, &quiet, t0.Add(5*time.Minute))
	SharedSlowdown([]Load{{Tenant: "q", Job: "j", Night: t0}}, 0, sp, &quiet, t0.Add(10*time.Minute))
	SharedSlowdown([]Load{ld("q", 0.5, 0.5)}, 0, sp, &quiet, t0.Add(15*time.Minute))
	if m := quiet.pace[key("q")]; m.onset.IsZero() || !m.born.IsZero() {
		t.Fatalf("back slow after a quiet spell is not an onset: %+v", m)
	}
}

// TestLoadsAtPaceThatEndedCountAgainstAStrike: two loads slow while a third
// runs on at its pace; once it has finished, the two slow ones are all that
// loads, but the strike did not slow everything that was in progress.
func TestLoadsAtPaceThatEndedCountAgainstAStrike(t *testing.T) {
	sp := DefaultSharedParams()
	t0 := time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC)
	ld := func(tenant string, r float64) Load {
		return Load{Tenant: tenant, Job: "j", Night: t0, Measured: true, Ratio: r, Recent: r, Since: t0.Add(-time.Hour)}
	}
	var st sharedState
	SharedSlowdown([]Load{ld("a", 1), ld("b", 1), ld("c", 1)}, 0, sp, &st, t0)
	for m := 5; m <= 30; m += 5 {
		if s := SharedSlowdown([]Load{ld("a", 0.5), ld("b", 0.5), ld("c", 1)}, 0, sp, &st, t0.Add(time.Duration(m)*time.Minute)); s != nil {
			t.Fatalf("two of three slowed is shared: %s", s.Summary)
		}
	}
	for m := 35; m <= 60; m += 5 {
		if s := SharedSlowdown([]Load{ld("a", 0.5), ld("b", 0.5)}, 0, sp, &st, t0.Add(time.Duration(m)*time.Minute)); s != nil {
			t.Fatalf("once the load at its pace ended, the two slow ones are shared: %s", s.Summary)
		}
	}
}
