package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
	"github.com/etlhub/etlhub/internal/testsrv"
)

// TestDashboardInChromium drives the dashboard in headless Chromium against a
// real `etlhub serve` with seeded data: the board is ordered by risk and
// shows times in the zone the viewer picked, with its offset; a night that
// finished after its deadline says "late by 44 min" on the board and in its
// 30 nights of history; an alert shows its age and, once acknowledged from
// the page, who acknowledged it; the run chart has time and row axes with
// ticks, the deadline and the projected finish; a push reaches the open
// board within 2 s without a reload; the page says it is stale when the hub
// goes away; the board fits a phone; screenshots are saved.
func TestDashboardInChromium(t *testing.T) {
	browser := testsrv.Chromium(t)
	now := time.Now().UTC()
	start := now.Add(-time.Hour)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// miami: started three hours ago, due an hour ago (New York time),
	// succeeded 44 minutes after the deadline.
	mStart, mDue := now.Add(-3*time.Hour).In(ny), now.Add(-time.Hour).In(ny)
	miami := fmt.Sprintf("  - {tenant: miami, job: roster-import, timezone: America/New_York, schedule: \"%d %d * * *\", deadline: \"%s\", stale_after: 20m}\n",
		mStart.Minute(), mStart.Hour(), mDue.Format("15:04"))
	// The hub probes its own store, under a subject with markup in it.
	storeProbe := `  - {name: hub-store, kind: store, schedule: "@every 1s", probe: {subject: 'store:<img src=x onerror="window.__pwned=3">'}}`
	h := startHubIn(t, t.TempDir(), storeProbe, nowJobs("", "dade", "broward")+miami, "rules: {tick: 1s}")
	push := func(tenant string, frozen time.Duration, done int) {
		for k := 4; k >= 0; k-- {
			at := now.Add(-time.Duration(k) * 5 * time.Minute)
			upd := at
			if at.After(now.Add(-frozen)) {
				upd = now.Add(-frozen)
			}
			h.call("POST", "/api/v1/observations", opTok, []byte(fmt.Sprintf(
				`{"at":%q,"tenant":%q,"job":"roster-import","run_id":"%s/1","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":%d,"rows_total":100}`,
				at.Format(time.RFC3339), tenant, tenant, start.Truncate(time.Minute).Format(time.RFC3339), upd.Format(time.RFC3339), done-k*5)))
		}
	}
	push("broward", 40*time.Minute, 30) // stalled: at risk, with an alert
	push("dade", 0, 95)                 // nearly done, on pace
	mRunStart := now.Add(-3 * time.Hour).Truncate(time.Minute).Add(time.Minute)
	mDueAt := now.Add(-time.Hour).Truncate(time.Minute)
	mFin := mDueAt.Add(44 * time.Minute)
	for i, o := range []struct {
		at    time.Time
		state string
		stage string
		rows  int
	}{{mRunStart, "running", "downloading", 0}, {mRunStart.Add(time.Hour), "running", "loading", 50}, {mFin, "succeeded", "publishing", 100}} {
		fin := "null"
		if o.state == "succeeded" {
			fin = fmt.Sprintf("%q", mFin.Format(time.RFC3339))
		}
		if code, body := h.call("POST", "/api/v1/observations", opTok, []byte(fmt.Sprintf(
			`{"at":%q,"tenant":"miami","job":"roster-import","run_id":"miami/1","state":%q,"stage":%q,"started_at":%q,"updated_at":%q,"finished_at":%s,"rows_done":%d,"rows_total":100}`,
			o.at.Format(time.RFC3339), o.state, o.stage, mRunStart.Format(time.RFC3339), o.at.Format(time.RFC3339), fin, o.rows))); code != 200 {
			t.Fatalf("miami push %d: %d %v", i, code, body)
		}
	}
	// A pusher's markup is text on the page, never elements or script.
	const hostile = `<img src=x onerror="window.__pwned=1">`
	if code, body := h.call("POST", "/api/v1/observations", opTok, []byte(fmt.Sprintf(
		`{"at":%q,"tenant":%q,"job":"<b id=pwn>job</b>","run_id":"x/1","state":"running","stage":"<script>window.__pwned=2</script>","rows_done":1,"rows_total":2}`,
		now.Format(time.RFC3339), hostile))); code != 200 {
		t.Fatalf("push of the hostile tenant: %d %v", code, body)
	}
	h.eventually("broward's stall is an alert", 20*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/alerts?state=firing", viewTok, nil)
		l, _ := body["alerts"].([]any)
		return len(l) > 0
	})

	b := openBrowser(t, browser, h)
	step, text, shot, ctx := b.step, b.text, b.shot, b.ctx
	step("open", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#token"))
	b.axe("login form")
	step("log in", chromedp.SendKeys("#token", opTok),
		chromedp.Click(`#login button`), chromedp.WaitVisible(`#board tbody tr:nth-child(2)`))
	// The viewer picks New York time; the choice survives a reload.
	step("zone", chromedp.SetValue("#zone", "America/New_York"))
	b.eval(`document.querySelector("#zone").dispatchEvent(new Event("change")); 1`)
	step("reload", chromedp.Reload(), chromedp.WaitVisible(`#board tbody tr:nth-child(3)`))
	if z := b.evalString(`document.querySelector("#zone").value`); z != "America/New_York" {
		t.Fatalf("the zone after a reload is %q", z)
	}
	_, off := now.In(ny).Zone()
	offset := fmt.Sprintf("UTC%+d", off/3600)
	dadeRow := text(`#board tr[data-tenant="dade"]`)
	due := start.Add(7 * time.Hour) // nowJobs: due seven hours after the start
	wantDue := clockIn(due, ny) + " " + offset
	if !strings.Contains(dadeRow, wantDue) || !regexp.MustCompile(`in (5 h 5\d min|6 h)`).MatchString(dadeRow) {
		t.Fatalf("dade's row %q lacks its deadline %q in New York time, and how far off it is", dadeRow, wantDue)
	}
	// Hovering a time shows it in the tenant's own zone.
	title := b.evalString(`const t = document.querySelector('#board tr[data-tenant="miami"] td[data-label="deadline"] time'); t.dispatchEvent(new MouseEvent("mouseover", {bubbles: true})); t.title`)
	if !strings.Contains(title, "America/New_York") || !strings.Contains(title, mDueAt.In(ny).Format("15:04")) {
		t.Fatalf("the deadline's hover %q lacks miami's zone and local time", title)
	}
	miamiRow := text(`#board tr[data-tenant="miami"]`)
	if !strings.Contains(miamiRow, "late by 44 min") {
		t.Fatalf("miami's row %q does not say it was late by 44 min", miamiRow)
	}
	first := text(`#board tbody tr:first-child`)
	shot("board.png")
	b.axe("board")
	board := text(`#board`)
	injected := b.eval(`(window.__pwned || 0) + (document.querySelector("#view img, #view #pwn, #view script") ? 10 : 0)`)
	if injected != 0 || !strings.Contains(board, hostile) || !strings.Contains(board, "<b id=pwn>job</b>") {
		t.Fatalf("pushed markup became elements or script (%d), or is not shown as text: %q", injected, board)
	}
	// The worst first: miami's night went wrong, broward is at risk now.
	if second := text(`#board tbody tr:nth-child(2)`); !strings.Contains(first, "miami") || !strings.Contains(second, "broward") || !strings.Contains(second, "at-risk") {
		t.Fatalf("the first rows are %q and %q, want miami (late), then broward at risk", first, second)
	}

	// Live: a push reaches the open board within 2 s, without a reload.
	b.eval(`window.__loaded = 1; 1`)
	pushed := time.Now()
	h.call("POST", "/api/v1/observations", opTok, []byte(fmt.Sprintf(
		`{"at":%q,"tenant":"dade","job":"roster-import","run_id":"dade/1","state":"running","stage":"publishing","started_at":%q,"updated_at":%q,"rows_done":99,"rows_total":100}`,
		time.Now().UTC().Format(time.RFC3339), start.Truncate(time.Minute).Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))))
	for !strings.Contains(b.evalString(`document.querySelector('#board tr[data-tenant="dade"]').textContent`), "publishing") {
		if time.Since(pushed) > 2*time.Second {
			t.Fatalf("the push did not reach the open board within 2 s: %q", text(`#board tr[data-tenant="dade"]`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	liveIn := time.Since(pushed)
	if b.eval(`window.__loaded || 0`) != 1 {
		t.Fatal("the page was reloaded to show the push")
	}
	t.Logf("a push reached the open board in %v", liveIn.Round(time.Millisecond))

	// History: one click from the board, 30 nights, the late one says so.
	step("nights", chromedp.Click(`#board tr[data-tenant="miami"] a.nightslink`), chromedp.WaitVisible(`#nights tbody tr`))
	if n := b.eval(`document.querySelectorAll("#nights tbody tr").length`); n != 30 {
		t.Fatalf("%d nights of history, want 30", n)
	}
	if latest := text(`#nights tbody tr:first-child`); !strings.Contains(latest, "late by 44 min") || !strings.Contains(latest, offset) {
		t.Fatalf("tonight in miami's history: %q", latest)
	}
	// The nights before the hub's first observation are unknown, not missed:
	// tonight is the one night judged.
	if rate := text(`#rate`); !strings.Contains(rate, "on time 0 of 1 nights") {
		t.Fatalf("the on-time rate says %q", rate)
	}
	if older := text(`#nights tbody tr:nth-child(2)`); !strings.Contains(older, "no record") || strings.Contains(older, "missed") {
		t.Fatalf("a night before the hub's first record reads %q", older)
	}
	shot("nights.png")
	b.axe("night history")

	step("alerts", chromedp.Navigate(h.url+"/#/alerts"), chromedp.WaitVisible(`tr.alert button.ack`))
	alertText := text(`tr.alert`)
	if age := text(`tr.alert td.age`); !regexp.MustCompile(`firing for (under a minute|\d+ min)`).MatchString(age) || !strings.Contains(age, "since") || !strings.Contains(age, offset) {
		t.Fatalf("the alert's age %q", age)
	}
	step("ack", chromedp.Click(`tr.alert button.ack`))
	h.eventually("the alert is acknowledged from the page", 10*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/alerts?state=firing", viewTok, nil)
		for _, x := range body["alerts"].([]any) {
			if x.(map[string]any)["acked_by"] == "etlhub:operator" {
				return true
			}
		}
		return false
	})
	step("acknowledger shown", chromedp.WaitVisible(`tr.alert td.acked`))
	h.eventually("the page shows who acknowledged", 5*time.Second, func() bool {
		return strings.Contains(b.evalString(`document.querySelector("tr.alert td.acked").textContent`), "etlhub:operator")
	})
	shot("alerts.png")
	b.axe("alerts page")

	step("dependencies", chromedp.Navigate(h.url+"/#/sources"), chromedp.WaitVisible(`#dependencies tbody tr`))
	if dep := text(`#dependencies tbody tr`); !strings.Contains(dep, `store:<img src=x onerror="window.__pwned=3">`) || !strings.Contains(dep, "up") ||
		!strings.Contains(dep, " ms") {
		t.Fatalf("the dependencies panel shows %q", dep)
	}
	if n := b.eval(`(window.__pwned || 0) + (document.querySelector("#dependencies img") ? 10 : 0)`); n != 0 {
		t.Fatalf("a subject's markup ran or became elements (%v)", n)
	}
	shot("dependencies.png")
	b.axe("sources and dependencies")

	step("run page", chromedp.Navigate(h.url+"/#/run/dade%2F1/dade/roster-import"), chromedp.WaitVisible(`#chart polyline`))
	chart, err := chromedp.Run(ctx, chromedp.OuterHTML(`#chart`))
	if err != nil {
		t.Fatal(err)
	}
	shot("run.png")
	b.axe("run page")
	xt, yt := b.eval(`document.querySelectorAll("#chart .x-axis .tick-label").length`), b.eval(`document.querySelectorAll("#chart .y-axis .tick-label").length`)
	if xt < 4 || yt < 4 {
		t.Fatalf("the run chart has %d time and %d row ticks", xt, yt)
	}
	if b.eval(`document.querySelector("#chart #deadline") && document.querySelector("#chart #projection") ? 1 : 0`) != 1 {
		t.Fatalf("the run chart lacks the deadline or the projection: %.300s", chart)
	}
	band := b.eval(`document.querySelector("#chart #band") ? 1 : 0`)
	_, job := h.call("GET", "/api/v1/jobs/dade/roster-import", viewTok, nil)
	if v, _ := job["view"].(map[string]any); v["finish_lo"] != nil && band != 1 {
		t.Fatalf("the prediction has a band (%v – %v), the chart does not", v["finish_lo"], v["finish_hi"])
	}
	// No two stage labels overlap.
	if n := b.eval(`(() => { const r = [...document.querySelectorAll("#chart .stage-label")].map((e) => e.getBoundingClientRect()); let n = 0;
		for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) if (r[i].left < r[j].right && r[j].left < r[i].right && r[i].top < r[j].bottom && r[j].top < r[i].bottom) n++; return n; })()`); n != 0 {
		t.Fatalf("%d stage labels overlap", n)
	}
	b.eval(`const s = document.querySelector("#chart"), r = s.getBoundingClientRect(); s.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width * 0.6, clientY: r.top + r.height / 2, bubbles: true})); 1`)
	if ro := text(`#readout`); !strings.Contains(ro, "rows") || !strings.Contains(ro, offset) {
		t.Fatalf("hovering the chart reads %q", ro)
	}
	step("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(h.url+"/#/"), chromedp.WaitVisible(`#board tbody tr`))
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
	if err != nil {
		t.Fatal(err)
	}
	shot("board-phone.png")
	if !strings.Contains(alertText, "stalled") || !strings.Contains(chart, "deadline") {
		t.Fatalf("alert row %q; chart %.200q", alertText, chart)
	}
	if overflow {
		t.Fatal("the board overflows a phone's width")
	}
	// The hub goes away: the page says its data is stale.
	h.cmd.Process.Signal(os.Kill)
	step("stale", chromedp.WaitVisible(`#stale`))
	if s := text(`#stale`); !strings.Contains(s, "Stale") {
		t.Fatalf("the stale notice says %q", s)
	}
	shot("board-stale.png")
	t.Logf("screenshots in %s", b.shots)
}

// clockIn is a time as the pages print it in zone: its hour and minute,
// after its date when its day there is not today's (app.js, clockText).
func clockIn(t time.Time, zone *time.Location) string {
	l := t.In(zone)
	if l.Format("20060102") != time.Now().In(zone).Format("20060102") {
		return l.Format("Mon 2 Jan 15:04")
	}
	return l.Format("15:04")
}

// TestDashboardDistrictView: a token scoped to one district sees its own
// page: tonight's upload step by step with local times, the data-quality
// report with what each finding means and how to fix it, and its recent
// nights; the board shows only its tenant, and another district's page is
// refused.
func TestDashboardDistrictView(t *testing.T) {
	browser := testsrv.Chromium(t)
	now := time.Now().UTC()
	start := now.Add(-time.Hour).Truncate(time.Minute)
	h := startHubIn(t, t.TempDir(), "  []", strings.ReplaceAll(nowJobs("", "dade", "broward"), "timezone: UTC", "timezone: America/New_York"), "rules: {tick: 1s}")
	files := start.Add(-30 * time.Minute)
	for i, o := range []struct {
		at    time.Time
		stage string
	}{{start.Add(-25 * time.Minute), "queued"}, {start, "downloading"}, {start.Add(10 * time.Minute), "validating"}, {start.Add(20 * time.Minute), "loading"}} {
		started, state := fmt.Sprintf("%q", start.Format(time.RFC3339)), "running"
		if o.stage == "queued" {
			started, state = "null", "waiting"
		}
		if code, body := h.call("POST", "/api/v1/observations", opTok, []byte(fmt.Sprintf(
			`{"at":%q,"tenant":"dade","job":"roster-import","run_id":"dade/1","state":%q,"stage":%q,"started_at":%s,"updated_at":%q,"files_arrived_at":%q,"rows_done":%d,"rows_total":100,"quality":{"errors":12,"warnings":3}}`,
			o.at.Format(time.RFC3339), state, o.stage, started, o.at.Format(time.RFC3339), files.Format(time.RFC3339), i*10))); code != 200 {
			t.Fatalf("push: %d %v", code, body)
		}
	}
	h.call("POST", "/api/v1/observations", opTok, []byte(fmt.Sprintf(
		`{"at":%q,"tenant":"broward","job":"roster-import","run_id":"broward-secret/1","state":"running","stage":"loading","rows_done":1,"rows_total":100}`, now.Format(time.RFC3339))))
	b := openBrowser(t, browser, h)
	b.step("log in", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", dadeTok),
		chromedp.Click(`#login button`), chromedp.WaitVisible(`#board tbody tr`))
	if board := b.text(`#board tbody`); strings.Contains(board, "broward") || b.eval(`document.querySelectorAll("#board tbody tr").length`) != 1 {
		t.Fatalf("dade's board shows %q", board)
	}
	b.step("district", chromedp.Click(`#board tr[data-tenant="dade"] td[data-label="tenant"] a`), chromedp.WaitVisible(`ol.steps`))
	ny, _ := time.LoadLocation("America/New_York")
	b.step("zone", chromedp.SetValue("#zone", "America/New_York"))
	b.eval(`document.querySelector("#zone").dispatchEvent(new Event("change")); 1`)
	h.eventually("the steps in New York time", 5*time.Second, func() bool {
		return strings.Contains(b.evalString(`document.querySelector("ol.steps").textContent`), files.In(ny).Format("15:04"))
	})
	b.step("steps", chromedp.WaitVisible(`ol.steps`))
	steps := b.evalString(`document.querySelector("ol.steps").innerText`)
	for _, want := range []string{"first file seen " + clockIn(files, ny), "upload complete " + clockIn(start.Add(-25*time.Minute), ny),
		"validated " + clockIn(start.Add(20*time.Minute), ny), "loaded not yet", "published not yet"} {
		if !strings.Contains(steps, want) {
			t.Fatalf("tonight's upload %q lacks %q", steps, want)
		}
	}
	q := b.text(`table.quality tbody`)
	if !strings.Contains(q, "Errors\t12") && !strings.Contains(q, "Errors 12") && !regexp.MustCompile(`Errors\s+12`).MatchString(q) || !strings.Contains(q, "not loaded") || !strings.Contains(q, "upload the files again") {
		t.Fatalf("the data-quality report %q", q)
	}
	if n := b.eval(`document.querySelectorAll("table.recent tbody tr").length`); n < 7 {
		t.Fatalf("%d recent nights", n)
	}
	b.shot("district.png")
	b.axe("district's page")
	b.step("other district", chromedp.Navigate(h.url+"/#/district/broward"), chromedp.WaitVisible(`#view .error`))
	if page := b.text(`#view`); !strings.Contains(page, "outside this token's scope") || strings.Contains(page, "broward-secret") {
		t.Fatalf("another district's page shows %q", page)
	}
}

// browserSession is a headless Chromium tab on the hub, with helpers that
// fail the test with the hub's logs.
type browserSession struct {
	t      *testing.T
	h      *hubProc
	ctx    context.Context
	shots  string
	axeSrc string
}

func openBrowser(t *testing.T, browser string, h *hubProc) *browserSession {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.WindowSize(1280, 800))
	actx, cancel1 := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel2 := chromedp.NewContext(actx)
	ctx, cancel3 := context.WithTimeout(ctx, 180*time.Second)
	t.Cleanup(func() { cancel3(); cancel2(); cancel1() })
	shots := os.Getenv("ETLHUB_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	return &browserSession{t: t, h: h, ctx: ctx, shots: shots}
}

func (b *browserSession) step(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\nhub logs:\n%s", what, err, b.h.logs.String())
	}
}

// text is the text of the first element sel matches, read in one script
// (a live update may replace the element between finding it and reading
// it); it waits up to 10 s for the element to exist with some text.
func (b *browserSession) text(sel string) string {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : null })()`, sel)
	var last *string
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[*string](js))
		if err != nil {
			b.t.Fatalf("text of %s: %v", sel, err)
		}
		last = v
		if (v != nil && strings.TrimSpace(*v) != "") || time.Now().After(end) {
			break
		}
	}
	if last == nil {
		b.t.Fatalf("text of %s: no such element", sel)
	}
	return *last
}

func (b *browserSession) eval(js string) int { b.t.Helper(); return evalAs[int](b, js) }

func (b *browserSession) evalString(js string) string { b.t.Helper(); return evalAs[string](b, js) }

func (b *browserSession) evalFloat(js string) float64 { b.t.Helper(); return evalAs[float64](b, js) }

// evalAs is the value of js in the page.
func evalAs[T any](b *browserSession, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// axeSource is axe-core's script, installed by scripts/test.sh (npm ci in
// tools/axe); a missing one skips, and fails under CI=true.
func axeSource(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "tools", "axe", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		testsrv.Missing(t, "axe-core (cd tools/axe && npm ci)", err)
	}
	return string(src)
}

// axe runs axe-core on the view shown and fails on any serious or critical
// finding (WCAG 2 A and AA rules and axe's best practices).
func (b *browserSession) axe(view string) {
	b.t.Helper()
	if b.axeSrc == "" {
		b.axeSrc = axeSource(b.t)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](b.axeSrc+";true")); err != nil {
		b.t.Fatalf("loading axe-core: %v", err)
	}
	found, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then((r) =>
		r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) =>
			v.impact + " " + v.id + ": " + v.help + " (" + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ") + ")"))`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("axe-core on %s: %v", view, err)
	}
	if len(found) > 0 {
		b.t.Errorf("axe-core finds on the %s:\n  %s", view, strings.Join(found, "\n  "))
	}
}

func (b *browserSession) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	os.WriteFile(filepath.Join(b.shots, name), png, 0o644)
}

// TestDashboardWith500Jobs: with 500 jobs the board stays readable: a
// summary counts jobs by risk (matching the API), the worst come first, the
// header stays in view while scrolling, a filter finds one tenant, and
// "problems only" leaves just the jobs at risk or worse.
func TestDashboardWith500Jobs(t *testing.T) {
	browser := testsrv.Chromium(t)
	now := time.Now().UTC()
	start := now.Add(-time.Hour).Truncate(time.Minute)
	var tenants []string
	for i := 0; i < 500; i++ {
		tenants = append(tenants, fmt.Sprintf("t-%03d", i))
	}
	h := startHubIn(t, t.TempDir(), "  []", nowJobs("", tenants...), "rules: {tick: 1s}")
	for lo := 0; lo < 500; lo += 100 {
		var obs []string
		for i := lo; i < lo+100; i++ {
			for k := 2; k >= 0; k-- {
				at := now.Add(-time.Duration(k) * 5 * time.Minute)
				upd, done := at, 90-k*5
				if i%10 == 0 { // every tenth worker stalled 40 minutes ago
					upd, done = now.Add(-40*time.Minute), 30
				}
				obs = append(obs, fmt.Sprintf(`{"at":%q,"tenant":%q,"job":"roster-import","run_id":"%s/1","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":%d,"rows_total":100}`,
					at.Format(time.RFC3339), tenants[i], tenants[i], start.Format(time.RFC3339), upd.Format(time.RFC3339), done))
			}
		}
		if code, body := h.call("POST", "/api/v1/observations", opTok, []byte("["+strings.Join(obs, ",")+"]")); code >= 300 {
			t.Fatalf("push: %d %v", code, body)
		}
	}
	byRisk := map[string]int{}
	h.eventually("the stalled jobs at risk", 20*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/status", viewTok, nil)
		byRisk = map[string]int{}
		for _, j := range jobsOf(body) {
			r, _ := j["risk"].(string)
			byRisk[r]++
		}
		return byRisk["at-risk"] >= 50
	})
	problems := byRisk["breached"] + byRisk["predicted-breach"] + byRisk["at-risk"]
	b := openBrowser(t, browser, h)
	b.step("log in", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", viewTok),
		chromedp.Click(`#login button`), chromedp.WaitVisible(`#board tbody tr:nth-child(500)`))
	if n := b.eval(`document.querySelectorAll("#board tbody tr").length`); n != 500 {
		t.Fatalf("%d rows, want 500", n)
	}
	summary := b.text(`#summary`)
	for r, n := range byRisk {
		if r != "" && !strings.Contains(summary, fmt.Sprintf("%s %d", r, n)) {
			t.Fatalf("summary %q lacks %s %d (the API's counts %v)", summary, r, n, byRisk)
		}
	}
	if first := b.text(`#board tbody tr:first-child`); !strings.Contains(first, "at-risk") {
		t.Fatalf("the first row is %q, want a job at risk", first)
	}
	b.shot("board-500.png")
	// Scrolled to the bottom, the column headers are still on screen.
	top := b.eval(`window.scrollTo(0, document.body.scrollHeight); Math.round(document.querySelector("#board th").getBoundingClientRect().top)`)
	if top < 0 || top > 60 {
		t.Fatalf("after scrolling, the header is at %dpx", top)
	}
	if b.eval(`document.documentElement.scrollWidth > window.innerWidth + 1 ? 1 : 0`) == 1 {
		t.Fatal("the board overflows 1280 px")
	}
	b.step("filter", chromedp.SendKeys("#filter", "t-042"), chromedp.WaitVisible(`#shown`))
	if n := b.eval(`document.querySelectorAll("#board tbody tr").length`); n != 1 || !strings.Contains(b.text(`#board tbody tr`), "t-042") {
		t.Fatalf("filtering on t-042 shows %d rows", n)
	}
	b.eval(`const f = document.querySelector("#filter"); f.value = ""; f.dispatchEvent(new Event("input")); 0`)
	b.step("problems only", chromedp.Click("#problems"))
	if n := b.eval(`document.querySelectorAll("#board tbody tr").length`); n != problems {
		t.Fatalf("problems only shows %d rows, the API has %d at risk or worse", n, problems)
	}
	b.shot("board-500-problems.png")
	b.axe("board of 500 jobs, problems only")
}

// TestDashboardWith5000Jobs measures the board with 5,000 jobs in Chromium,
// in the page (performance.now, and the renderer's main-thread CPU time
// from the DevTools protocol), not the test's wall clock: rendered
// (DOM built, styled, laid out and painted) in under a second after the
// status has arrived, and responsive while pushes stream in (each burst's
// rows patched where they stand; the page's main thread never blocked for a
// second; the last push shown). The wall-clock goals are asserted without
// the race detector only: under it the race-instrumented hub beside
// Chromium on this machine's two cores stretches the page's wall time
// (BENCHMARKS.md); the CPU the page spends is asserted either way.
func TestDashboardWith5000Jobs(t *testing.T) {
	browser := testsrv.Chromium(t)
	now := time.Now().UTC()
	start := now.Add(-time.Hour).Truncate(time.Minute)
	const n = 5000
	tenants := make([]string, n)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("t-%04d", i)
	}
	h := startHubIn(t, t.TempDir(), "  []", nowJobs("", tenants...), "rules: {tick: 1s}")
	obs := func(i, done int, at time.Time) string {
		return fmt.Sprintf(`{"at":%q,"tenant":%q,"job":"roster-import","run_id":"%s/1","state":"running","stage":"loading","started_at":%q,"updated_at":%q,"rows_done":%d,"rows_total":100}`,
			at.Format(time.RFC3339), tenants[i], tenants[i], start.Format(time.RFC3339), at.Format(time.RFC3339), done)
	}
	for lo := 0; lo < n; lo += 1000 {
		var batch []string
		for i := lo; i < lo+1000; i++ {
			batch = append(batch, obs(i, 50+i%40, now.Add(-time.Minute)))
		}
		if code, body := h.call("POST", "/api/v1/observations", opTok, []byte("["+strings.Join(batch, ",")+"]")); code >= 300 {
			t.Fatalf("push: %d %v", code, body)
		}
	}
	b := openBrowser(t, browser, h)
	loginAt := time.Now()
	b.step("log in", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", viewTok),
		chromedp.Click(`#login button`), chromedp.WaitVisible(`#board tbody tr:nth-child(500)`))
	firstView := time.Since(loginAt)
	// The worst 500 first, all 5000 counted, more as the bottom comes into view.
	if rows, summary := b.eval(`document.querySelectorAll("#board tbody tr").length`), b.text(`#summary`); rows != 500 || !strings.Contains(summary, "5000 jobs") {
		t.Fatalf("%d rows drawn first, summary %q; want 500 of 5000 jobs", rows, summary)
	}
	// The first view's render, from the status answer read to the frame painted.
	h.eventually("the first view's render measured", 10*time.Second, func() bool {
		return b.eval(`(window.__renders || []).length`) > 0
	})
	firstRender := b.evalFloat(`window.__renders[0].ms`)
	if how := b.evalString(`window.__renders[0].how`); how != "draw" {
		t.Fatalf("the first view was a %s, want a draw", how)
	}
	b.eval(`window.scrollTo(0, document.body.scrollHeight); 1`)
	h.eventually("500 more rows once scrolled to the bottom", 5*time.Second, func() bool {
		return b.eval(`document.querySelectorAll("#board tbody tr").length`) == 1000
	})
	loadBefore := loadAverage(t)
	// Drawing the board from the status already read: DOM, style, layout,
	// paint, in wall time in the page and in the CPU time of the page's main
	// thread.
	draw := func() (wall, cpu float64) {
		before := b.threadTime()
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[float64](`(async () => { window.scrollTo(0, 0); view.limit = PAGE; const t0 = performance.now(); drawBoard();
			await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))); return performance.now() - t0; })()`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return v, (b.threadTime() - before) * 1000
	}
	// The median of five: the machine is shared.
	var walls, cpus []float64
	for i := 0; i < 5; i++ {
		w, c := draw()
		walls, cpus = append(walls, w), append(cpus, c)
	}
	slices.Sort(walls)
	slices.Sort(cpus)
	wall, cpu := walls[2], cpus[2]
	// While pushes stream in (a job's progress every 100 ms, the tenants
	// changed read at most once a second and their rows patched), the main
	// thread's longest stall, seen by a 50 ms timer.
	b.eval(`window.__changes = []; window.__gap = 0; window.__last = performance.now(); window.__tick = setInterval(() => { const t = performance.now(); window.__gap = Math.max(window.__gap, t - window.__last); window.__last = t; }, 50); 1`)
	cpuBefore := b.threadTime()
	streamAt := time.Now()
	for k := 0; k < 40; k++ {
		h.call("POST", "/api/v1/observations", opTok, []byte(obs(k*7, 91, time.Now().UTC())))
		time.Sleep(100 * time.Millisecond)
	}
	// The last push shows on the board.
	shown := func(tenant, text string) func() bool {
		return func() bool {
			return strings.Contains(b.evalString(`(() => { const r = document.querySelector('#board tr[data-tenant="`+tenant+`"]'); return r ? r.textContent : ""; })()`), text)
		}
	}
	h.eventually("the last push on the board", 5*time.Second, shown(tenants[39*7], "91%"))
	streamed := time.Since(streamAt)
	streamCPU := (b.threadTime() - cpuBefore) * 1000
	gap := b.eval(`clearInterval(window.__tick); Math.round(window.__gap)`)
	changes := b.evalString(`JSON.stringify(window.__changes.map((c) => [c.how, c.tenants.length, Math.round(c.ms)]))`)
	worst := b.evalFloat(`Math.max(0, ...window.__changes.map((c) => c.ms))`)
	if how := b.evalString(`[...new Set(window.__changes.map((c) => c.how))].join(",")`); how != "tenants" {
		t.Errorf("the pushes' changes were applied as %q (%s), want each by reading its tenants and patching their rows", how, changes)
	}
	// A push made while the page is between two streams (the hub ends each
	// after 50 s) is heard when it reconnects, with the id of the last
	// event it heard.
	b.eval(`liveState.stream.abort(); liveState.stream = null; 1`)
	h.call("POST", "/api/v1/observations", opTok, []byte(obs(3, 97, time.Now().UTC())))
	b.eval(`listen(); 1`)
	h.eventually("the push made between two streams on the board", 5*time.Second, shown(tenants[3], "97%"))
	t.Logf("5000 jobs (race detector %v): first view %v after logging in (status read included); its render from the answer read to painted %.0f ms; "+
		"board drawn in %.0f ms wall (median of 5: %.0f), %.0f ms main-thread CPU (%.0f); pushes for %v: longest main-thread stall %d ms, "+
		"%.0f ms main-thread CPU, changes [how, tenants, ms from heard to painted] %s",
		raceEnabled, firstView.Round(time.Millisecond), firstRender, wall, walls, cpu, cpus, streamed.Round(time.Millisecond), gap, streamCPU, changes)
	// The goal, under 1 s: the CPU the page spends always; its wall time
	// without the race detector on a machine not loaded past four times
	// its cores (else the wall time says how busy the race-built hub or the
	// machine's other work kept the cores: a draw of 460 ms CPU took 2.5 s
	// at load 10-18).
	if cpu >= 1000 {
		t.Errorf("drawing the board of 5000 jobs took %.0f ms of the page's main-thread CPU (median of %.0f), want under 1 s", cpu, cpus)
	}
	load := max(loadBefore, loadAverage(t))
	// Measured here: 542 ms at load 7.5 on 2 cores, 2.5 s at 10-18.
	wallGoal := !raceEnabled && load < float64(4*runtime.NumCPU())
	if !wallGoal {
		t.Logf("wall-time goals not asserted: race detector %v, load average %.1f on %d cores", raceEnabled, load, runtime.NumCPU())
	}
	if wallGoal && (wall >= 1000 || firstRender >= 1000) {
		t.Errorf("the board of 5000 jobs rendered in %.0f ms after its data arrived and drawn in %.0f ms (median of %.0f), want under 1 s", firstRender, wall, walls)
	}
	if gap >= 1000 {
		t.Errorf("while updates streamed the page was blocked for %d ms, want under 1 s", gap)
	}
	if wallGoal && worst >= 3000 {
		t.Errorf("while updates streamed a change took %.0f ms from heard to painted, want under 3 s (gathered at most once a second)", worst)
	}
	b.shot("board-5000.png")
}

// loadAverage is the machine's load average over the last minute (0
// where /proc/loadavg cannot be read: the goals are then asserted).
func loadAverage(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Logf("no load average: %v", err)
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// threadTime is the CPU time of the page's main thread so far, in seconds
// (the DevTools protocol's Performance.getMetrics ThreadTime).
func (b *browserSession) threadTime() float64 {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, func(ctx context.Context, t *chromedp.Target) (float64, error) {
		if _, err := cdp.Call(ctx, t, performance.Enable, performance.EnableParams{}); err != nil {
			return 0, err
		}
		res, err := cdp.Call(ctx, t, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			return 0, err
		}
		var names []string
		for _, m := range res.Metrics {
			if m.Name == "ThreadTime" {
				return m.Value, nil
			}
			names = append(names, m.Name)
		}
		return 0, fmt.Errorf("no ThreadTime among the page's metrics %v", names)
	})
	if err != nil {
		b.t.Fatalf("the page's main-thread CPU time: %v", err)
	}
	return v
}
