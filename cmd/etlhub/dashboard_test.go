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
	h.eventually("broward's stall is an alert", 20*time.Second, func() bool {
		_, body := h.call("GET", "/api/v1/alerts?state=firing", viewTok, nil)
		l, _ := body["alerts"].([]any)
		return len(l) > 0
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.WindowSize(1280, 800))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	shots := os.Getenv("ETLHUB_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\nhub logs:\n%s", what, err, h.logs.String())
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		os.WriteFile(filepath.Join(shots, name), png, 0o644)
	}
	step("log in", chromedp.Navigate(h.url+"/"), chromedp.WaitVisible("#token"), chromedp.SendKeys("#token", opTok),
		chromedp.Click(`#login button`), chromedp.WaitVisible(`#board tbody tr:nth-child(2)`))
	first := text(`#board tbody tr:first-child`)
	shot("board.png")
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
	t.Logf("screenshots in %s", shots)
}
