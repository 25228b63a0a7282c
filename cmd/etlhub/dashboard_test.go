package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/etlhub/etlhub/internal/testsrv"
)

// TestDashboardInChromium drives the dashboard in headless Chromium against a
// real `etlhub serve` with seeded data: the board is ordered by risk, an
// alert is acknowledged from the page, the run page draws its chart, the
// board fits a phone, and screenshots are saved.
func TestDashboardInChromium(t *testing.T) {
	browser := testsrv.Chromium(t)
	now := time.Now().UTC()
	start := now.Add(-time.Hour)
	h := startHubIn(t, t.TempDir(), "  []", nowJobs("", "dade", "broward"), "rules: {tick: 1s}")
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
	step("log in", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", opTok),
		chromedp.Click(`#login button`), chromedp.WaitVisible(`#board tbody tr:nth-child(2)`))
	first := text(`#board tbody tr:first-child`)
	shot("board.png")
	board := text(`#board`)
	injected := b.eval(`(window.__pwned || 0) + (document.querySelector("#view img, #view #pwn, #view script") ? 10 : 0)`)
	if injected != 0 || !strings.Contains(board, hostile) || !strings.Contains(board, "<b id=pwn>job</b>") {
		t.Fatalf("pushed markup became elements or script (%d), or is not shown as text: %q", injected, board)
	}
	if !strings.Contains(first, "broward") || !strings.Contains(first, "at-risk") {
		t.Fatalf("the first row is %q, want broward at risk", first)
	}
	step("alerts", chromedp.Navigate(h.url+"/#/alerts"), chromedp.WaitVisible(`tr.alert button.ack`))
	alertText := text(`tr.alert`)
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
	step("run page", chromedp.Navigate(h.url+"/#/run/broward%2F1/broward/roster-import"), chromedp.WaitVisible(`#chart polyline`))
	chart, err := chromedp.Run(ctx, chromedp.OuterHTML(`#chart`))
	if err != nil {
		t.Fatal(err)
	}
	shot("run.png")
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
	t.Logf("screenshots in %s", b.shots)
}

// browserSession is a headless Chromium tab on the hub, with helpers that
// fail the test with the hub's logs.
type browserSession struct {
	t     *testing.T
	h     *hubProc
	ctx   context.Context
	shots string
}

func openBrowser(t *testing.T, browser string, h *hubProc) *browserSession {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.WindowSize(1280, 800))
	actx, cancel1 := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel2 := chromedp.NewContext(actx)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
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

func (b *browserSession) text(sel string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (b *browserSession) eval(js string) int {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](js))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return v
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
}
