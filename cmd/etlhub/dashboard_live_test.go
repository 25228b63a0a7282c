package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/etlhub/etlhub/internal/testsrv"
)

// bareUTC is a time printed as the rules write it ("11:00Z", "11:00 UTC";
// not the page's own "11:00 UTC-4"): on a page that shows every time in the
// viewer's zone, none may be left.
var bareUTC = regexp.MustCompile(`\b\d\d:\d\d(?::\d\d)?(?:Z\b| UTC(?:$|[^+\-\d]))`)

// TestDashboardLiveFromTheRules drives the board and the alerts page in
// headless Chromium against a real `etlhub serve` with PagerDuty and Slack
// receivers, and checks what a person on call checks when nothing new is
// observed and yet things change: an alert that fires because time passed
// (a heartbeat that stopped) shows on the open board within 3 s of firing,
// and a night that passes its deadline while running turns "missed" on the
// open board within 4 s of the deadline (a rules tick, a second's watch, the
// page's read), both without a reload; the alerts
// page says that the page went to PagerDuty and the post to Slack, and
// when; a shared slowdown of two districts is one group, its jobs' alerts
// under it, said to go out in the shared cause's page; an acknowledgement
// from PagerDuty shows on the open page; the run chart marks when the load
// slowed; and no reason on the pages prints a bare UTC time where the rest
// of the page is in New York time.
func TestDashboardLiveFromTheRules(t *testing.T) {
	browser := testsrv.Chromium(t)
	pd, sl, notify := receivers(t, 0)
	notify = strings.Replace(notify, "timings: {stalled: {keep_firing_for: 0s}}",
		"timings: {stalled: {keep_firing_for: 0s}, shared-slowdown: {for: 0s}, predicted-breach: {for: 3s}}", 1)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	// Tonight's nights began an hour ago and end in seven hours; the late
	// job's deadline is the next whole minute at least 50 s away.
	start := now.Add(-time.Hour).Truncate(time.Minute)
	due := now.Truncate(time.Minute).Add(time.Minute)
	if due.Sub(now) < 50*time.Second {
		due = due.Add(time.Minute)
	}
	lateStart := due.Add(-30 * time.Minute)
	// s1 and s2 are due in 80 minutes: on time at their pace, not at a
	// tenth of it.
	tight := now.Truncate(time.Minute).Add(80 * time.Minute)
	job := func(tenant string, night, deadline time.Time, extra string) string {
		n := night.In(ny)
		return fmt.Sprintf("  - {tenant: %s, job: roster-import, timezone: America/New_York, schedule: \"%d %d * * *\", deadline: \"%s\"%s}\n",
			tenant, n.Minute(), n.Hour(), deadline.In(ny).Format("15:04"), extra)
	}
	jobs := job("stall", start, start.Add(7*time.Hour), ", stale_after: 1m, severity: {stalled: critical}") +
		job("s1", start, tight, ", stale_after: 1h") + job("s2", start, tight, ", stale_after: 1h") +
		job("late", lateStart, due, ", stale_after: 1h")
	dir := t.TempDir()
	h := startHubIn(t, dir, "  []", jobs, notify)
	push := func(what string, body string) {
		t.Helper()
		if code, resp := h.call("POST", "/api/v1/observations", opTok, []byte(body)); code != 200 {
			t.Fatalf("push of %s: %d %v", what, code, resp)
		}
	}
	obs := func(tenant, run, state string, at, started, updated time.Time, done, total int) string {
		return fmt.Sprintf(`{"at":%q,"tenant":%q,"job":"roster-import","run_id":%q,"state":%q,"stage":"loading","started_at":%q,"updated_at":%q,"rows_done":%d,"rows_total":%d}`,
			at.Format(time.RFC3339), tenant, run, state, started.Format(time.RFC3339), updated.Format(time.RFC3339), done, total)
	}
	// Three ordinary nights of s1 and s2 at 1,000 rows a minute: the rules
	// learn their pace (read when the hub starts again).
	var hist []string
	for k := 3; k >= 1; k-- {
		night := start.Add(-time.Duration(k) * 24 * time.Hour)
		for _, tenant := range []string{"s1", "s2"} {
			run := fmt.Sprintf("%s/h%d", tenant, k)
			for m := 0; m <= 100; m += 20 {
				at := night.Add(time.Duration(m+1) * time.Minute)
				hist = append(hist, obs(tenant, run, "running", at, night.Add(time.Minute), at, 1000*m, 100000))
			}
			fin := night.Add(102 * time.Minute)
			hist = append(hist, fmt.Sprintf(`{"at":%q,"tenant":%q,"job":"roster-import","run_id":%q,"state":"succeeded","stage":"publishing","started_at":%q,"updated_at":%q,"finished_at":%q,"rows_done":100000,"rows_total":100000}`,
				fin.Format(time.RFC3339), tenant, run, night.Add(time.Minute).Format(time.RFC3339), fin.Format(time.RFC3339), fin.Format(time.RFC3339)))
		}
	}
	push("three nights of history", "["+strings.Join(hist, ",")+"]")
	h.cmd.Process.Kill()
	err = <-h.done
	h.done <- err
	h = startHubIn(t, dir, "  []", jobs, notify)
	// The late job: watched since before its night (yesterday's run), and
	// tonight's run loading, heard of once.
	yesterday := lateStart.Add(-61 * time.Minute)
	push("late's last night", fmt.Sprintf(`{"at":%q,"tenant":"late","job":"roster-import","run_id":"late/0","state":"succeeded","started_at":%q,"finished_at":%q,"rows_done":100,"rows_total":100}`,
		yesterday.Format(time.RFC3339), yesterday.Add(-time.Hour).Format(time.RFC3339), yesterday.Format(time.RFC3339)))
	push("late's run", obs("late", "late/1", "running", now, lateStart.Add(time.Minute), now, 10, 100))
	// Two districts load at 1,000 rows a minute; the rules see them at pace.
	var paced []string
	for _, tenant := range []string{"s1", "s2"} {
		for k := 0; k <= 4; k++ {
			at := now.Add(-40*time.Minute + time.Duration(k)*5*time.Minute)
			paced = append(paced, obs(tenant, tenant+"/1", "running", at, now.Add(-41*time.Minute), at, 5000*k, 100000))
		}
	}
	push("the paced loads", "["+strings.Join(paced, ",")+"]")
	h.eventually("s1 and s2 at pace", 10*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/status", viewTok, nil)
		j := jobsOf(body)
		return j["s1/roster-import"]["rows_done"] == 20000.0 && j["s2/roster-import"]["rows_done"] == 20000.0
	})
	time.Sleep(2 * time.Second) // two ticks at pace: the rules saw them so

	b := openBrowser(t, browser, h)
	b.step("log in", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", opTok),
		chromedp.Click(`#login button`), chromedp.WaitVisible(`#board tr[data-tenant="late"]`))
	b.step("zone", chromedp.SetValue("#zone", "America/New_York"))
	b.eval(`document.querySelector("#zone").dispatchEvent(new Event("change")); 1`)
	b.step("board in New York time", chromedp.WaitVisible(`#board tr[data-tenant="late"]`))
	_, off := now.In(ny).Zone()
	offset := fmt.Sprintf("UTC%+d", off/3600)
	h.eventually("the board in New York time", 5*time.Second, func() bool {
		return strings.Contains(b.evalString(`document.querySelector("#board").textContent`), offset)
	})
	b.eval(`window.__loaded = 1; 1`)

	// A run whose heartbeat stopped 50 s ago: stalled once it is a minute.
	alertCell := `(() => { const r = document.querySelector('#board tr[data-tenant="stall"] td[data-label="alerts"]'); return r ? r.textContent : ""; })()`
	push("the stalling run", obs("stall", "stall/1", "running", time.Now().UTC(), start.Add(time.Minute), time.Now().UTC().Add(-50*time.Second), 30, 100))

	// The stall fires with no observation after it; the open board shows
	// it within 3 s of firing.
	h.eventually("the stalling run on the board, without an alert", 5*time.Second, func() bool { return b.evalString(alertCell) == "0" })
	deadline := time.Now().Add(40 * time.Second)
	for c := b.evalString(alertCell); c == "" || c == "0"; c = b.evalString(alertCell) {
		if time.Now().After(deadline) {
			t.Fatalf("the stall's alert is not on the open board after 40 s: alerts cell %q; API: %v", b.evalString(alertCell), firingRules(h))
		}
		time.Sleep(50 * time.Millisecond)
	}
	shown := time.Now()
	fired := firedAt(t, h, "stalled", "stall")
	if lag := shown.Sub(fired); lag > 3*time.Second {
		t.Fatalf("the stall fired at %v and reached the open board %v later, want within 3 s", fired.Format(time.RFC3339Nano), lag)
	}
	t.Logf("a rule's alert reached the open board %v after it fired", shown.Sub(fired).Round(10*time.Millisecond))
	if risk := b.text(`#board tr[data-tenant="stall"] td[data-label="risk"]`); !strings.Contains(risk, "at-risk") && !strings.Contains(risk, "breach") {
		t.Fatalf("the stalled job's risk on the board reads %q", risk)
	}
	if title := b.evalString(`const w = document.querySelector('#board tr[data-tenant="s1"] td[data-label="risk"] .badge'); w.dispatchEvent(new MouseEvent("mouseover", {bubbles: true})); w.title`); bareUTC.MatchString(title) || !strings.Contains(title, offset) {
		t.Fatalf("s1's reason on hover reads %q, want its times in New York time", title)
	}

	// Then both loads slow to a tenth of that at the same moment: a shared cause.
	var slowed []string
	for _, tenant := range []string{"s1", "s2"} {
		for k := 1; k <= 4; k++ {
			at := now.Add(-20*time.Minute + time.Duration(k)*5*time.Minute)
			slowed = append(slowed, obs(tenant, tenant+"/1", "running", at, now.Add(-41*time.Minute), at, 20000+500*k, 100000))
		}
	}
	push("the slowed loads", "["+strings.Join(slowed, ",")+"]")
	h.eventually("the shared slowdown and its grouped alerts", 20*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/alerts?state=firing", viewTok, nil)
		shared, grouped := false, 0
		for _, x := range body["alerts"].([]any) {
			a := x.(map[string]any)
			if a["rule"] == "shared-slowdown" {
				shared = true
			}
			if (a["tenant"] == "s1" || a["tenant"] == "s2") && a["grouped_under"] != nil && a["grouped_under"] != "" {
				grouped++
			}
		}
		return shared && grouped == 2
	})
	h.eventually("PagerDuty has the stall and the shared slowdown, Slack both posts", 20*time.Second, func() bool {
		ev, _ := pd.snapshot()
		return len(ev) >= 2 && len(sl.snapshot()) >= 2
	})

	b.step("alerts", chromedp.Click(`nav a[href="#/alerts"]`), chromedp.WaitVisible(`tr.group.shared`))
	if b.eval(`window.__loaded || 0`) != 1 {
		t.Fatal("the page reloaded")
	}
	stallRow := `#alerts tr.alert[data-rule="stalled"]`
	h.eventually("the stall's page and post delivered, on the page", 10*time.Second, func() bool {
		d := b.evalString(`(() => { const r = document.querySelector('` + stallRow + ` td.deliveries'); return r ? r.textContent : ""; })()`)
		return strings.Contains(d, "oncall delivered") && strings.Contains(d, "team delivered")
	})
	if d := b.text(stallRow + ` td.deliveries`); strings.Count(d, offset) != 2 {
		t.Fatalf("the stall's deliveries %q do not say when each went out, in New York time", d)
	}
	// One shared cause: its header, its own row first, the two districts'
	// alerts under it, said to go out in its page.
	group := b.text(`tr.group.shared`)
	if !strings.Contains(group, "Shared cause: shared slowdown") || !strings.Contains(group, " jobs") || !strings.Contains(group, offset) {
		t.Fatalf("the shared cause's header reads %q", group)
	}
	members := b.evalString(`(() => { const out = []; let r = document.querySelector("tr.group.shared").nextElementSibling;
		while (r && r.classList.contains("alert")) { out.push(r.dataset.rule + " " + r.querySelector('td[data-label="job"]').textContent + " | " + r.querySelector("td.deliveries").textContent); r = r.nextElementSibling; }
		return out.join("\n"); })()`)
	lines := strings.Split(members, "\n")
	if !strings.HasPrefix(lines[0], "shared-slowdown shared: ") || !strings.Contains(lines[0], "s1/roster-import") || !strings.Contains(lines[0], "s2/roster-import") ||
		!strings.Contains(lines[0], "oncall delivered") || !strings.Contains(lines[0], "team delivered") {
		t.Fatalf("the shared cause's rows:\n%s", members)
	}
	districts := 0
	for _, l := range lines[1:] {
		if strings.Contains(l, " s1/roster-import") || strings.Contains(l, " s2/roster-import") {
			districts++
			if !strings.HasPrefix(l, "predicted-breach s") || !strings.Contains(l, "in the shared cause's page") {
				t.Fatalf("a district's alert under the shared cause reads %q (all rows:\n%s)", l, members)
			}
		}
	}
	if districts != 2 {
		t.Fatalf("%d of s1's and s2's alerts under the shared cause, want 2:\n%s", districts, members)
	}
	if page := b.text(`#alerts`); bareUTC.MatchString(page) {
		t.Fatalf("the alerts page prints bare UTC times: %q", bareUTC.FindAllString(page, -1))
	}
	if s := b.text(`#alerts tr.alert[data-rule="predicted-breach"] td.summary`); !strings.Contains(s, "deadline") || !strings.Contains(s, offset) {
		t.Fatalf("a predicted breach's summary reads %q", s)
	}
	b.shot("alerts-shared.png")
	b.axe("alerts page with a shared cause")

	// PagerDuty's acknowledgement (a webhook, nothing observed) reaches the
	// open page.
	ev, _ := pd.snapshot()
	var key string
	for _, e := range ev {
		if p, _ := e["payload"].(map[string]any); p != nil && strings.Contains(fmt.Sprint(p["summary"]), "stall/roster-import") {
			key, _ = e["dedup_key"].(string)
		}
	}
	if key == "" {
		t.Fatalf("no page for the stall in %v", ev)
	}
	hook := []byte(fmt.Sprintf(`{"event":{"id":"live-01","event_type":"incident.acknowledged","occurred_at":%q,"agent":{"id":"PJANE","type":"user_reference","summary":"Jane Doe"},"data":{"type":"incident","incident_key":%q}}}`,
		time.Now().UTC().Format(time.RFC3339Nano), key))
	req, _ := http.NewRequest("POST", h.url+"/api/v1/webhooks/pagerduty", strings.NewReader(string(hook)))
	req.Header.Set("X-PagerDuty-Signature", signPD(hook))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("PagerDuty's acknowledgement: %v %v", resp, err)
	}
	acked := time.Now()
	for !strings.Contains(b.evalString(`document.querySelector('`+stallRow+` td.acked').textContent`), "Jane Doe") {
		if time.Since(acked) > 3*time.Second {
			t.Fatalf("PagerDuty's acknowledgement is not on the open page after 3 s: %q", b.text(stallRow+` td.acked`))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The late night: its deadline passes while it runs, nothing observed
	// since; the open board says "missed" within 4 s of the deadline.
	b.step("board", chromedp.Click(`nav a[href="#/"]`), chromedp.WaitVisible(`#board tr[data-tenant="late"]`))
	tonight := `document.querySelector('#board tr[data-tenant="late"] td[data-label="tonight"]').textContent`
	if s := b.evalString(tonight); strings.Contains(s, "missed") {
		t.Fatalf("the late night reads %q before its deadline %v", s, due)
	}
	for !strings.Contains(b.evalString(tonight), "missed") {
		if time.Now().After(due.Add(4 * time.Second)) {
			t.Fatalf("the deadline passed at %v; the open board still reads %q", due.Format(time.RFC3339), b.evalString(tonight))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the missed deadline reached the open board %v after it", time.Since(due).Round(10*time.Millisecond))
	if b.eval(`window.__loaded || 0`) != 1 {
		t.Fatal("the page reloaded")
	}
	if board := b.text(`#board`); bareUTC.MatchString(board) {
		t.Fatalf("the board prints bare UTC times: %q", bareUTC.FindAllString(board, -1))
	}
	b.shot("board-missed.png")

	// The run page of the slowed load: its reason's times in New York time.
	b.step("run page", chromedp.Navigate(h.url+"/#/run/s1%2F1/s1/roster-import"), chromedp.WaitVisible(`#chart polyline`))
	if why := b.text(`#why`); bareUTC.MatchString(why) || !strings.Contains(why, offset) {
		t.Fatalf("the run page's reason reads %q", why)
	}
	if page := b.text(`#view`); bareUTC.MatchString(page) {
		t.Fatalf("the run page prints bare UTC times: %q", bareUTC.FindAllString(page, -1))
	}
	// The chart marks the moment the load slowed (20 minutes before the
	// test began, from 1,000 rows a minute to 100).
	onset := clockIn(now.Add(-20*time.Minute), ny)
	if label := b.evalString(`(() => { const l = document.querySelector("#chart #slowdown-label"); return l ? l.textContent : ""; })()`); label != "slowed at "+onset+" to 10% of its pace" {
		t.Fatalf("the slowdown's mark on the chart reads %q, want it at %s", label, onset)
	}
	b.shot("run-slowdown.png")

	// The open run page hears of a push too: its state line follows it.
	b.eval(`window.__runPage = 1; 1`)
	pushedAt := time.Now()
	push("s1's next progress", obs("s1", "s1/1", "running", pushedAt.UTC(), now.Add(-41*time.Minute), pushedAt.UTC(), 23456, 100000))
	for !strings.Contains(b.evalString(`document.querySelector("#view .kv").textContent`), "23,456 of 100,000 rows") {
		if time.Since(pushedAt) > 2*time.Second {
			t.Fatalf("the push did not reach the open run page within 2 s: %q", b.text(`#view .kv`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.eval(`window.__runPage || 0`) != 1 {
		t.Fatal("the run page reloaded")
	}
	t.Logf("a push reached the open run page in %v", time.Since(pushedAt).Round(10*time.Millisecond))
}

// firedAt is when the firing alert of rule on tenant fired.
func firedAt(t *testing.T, h *hubProc, rule, tenant string) time.Time {
	t.Helper()
	_, body := h.call("GET", "/api/v1/alerts?state=firing&rule="+rule, viewTok, nil)
	for _, x := range body["alerts"].([]any) {
		a := x.(map[string]any)
		if a["tenant"] == tenant {
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(a["fired_at"]))
			if err != nil {
				t.Fatalf("fired_at of %v: %v", a, err)
			}
			return at
		}
	}
	t.Fatalf("no firing %s alert of %s: %v", rule, tenant, body)
	return time.Time{}
}

func firingRules(h *hubProc) []string {
	_, body := h.call("GET", "/api/v1/alerts", viewTok, nil)
	var out []string
	list, _ := body["alerts"].([]any)
	for _, x := range list {
		a := x.(map[string]any)
		out = append(out, fmt.Sprint(a["rule"], " ", a["tenant"], " ", a["state"]))
	}
	return out
}
