package slack

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
)

const (
	mention = "<!channel>"
	phish   = "<https://evil.example|Re-authenticate>"
)

// hostile is an alert whose every outside string tries to ping the channel
// or plant a link.
func hostile(event string) notifier.Message {
	at := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	return notifier.Message{Event: model.TransitionKind(event), DashboardURL: "https://hub.example/?a=1&b=2", Alert: model.Alert{
		Fingerprint: "stalled|x", Rule: "stalled", Severity: "warning", Tenant: "dade" + mention, Job: "roster" + phish,
		RunID: "r1`" + mention + "`", Summary: "no heartbeat: " + phish + " " + mention + " & <@U0ADMIN>",
		AckedBy: "Mallory " + mention, AckedAt: at, FiredAt: at, ResolvedAt: at}}
}

var angle = regexp.MustCompile(`<[^>]*>`)

// checkInert fails when a mrkdwn text of a call holds markup that is not a
// link of ours to the dashboard.
func checkInert(t *testing.T, where, text string) {
	t.Helper()
	for _, m := range angle.FindAllString(text, -1) {
		if !strings.HasPrefix(m, "<https://hub.example/?a=1&amp;b=2|") {
			t.Errorf("%s: live markup %q in %q", where, m, text)
		}
	}
}

// mrkdwnTexts walks Block Kit JSON for every text object of type mrkdwn.
func mrkdwnTexts(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == "mrkdwn" {
			if s, ok := x["text"].(string); ok {
				*out = append(*out, s)
			}
		}
		for _, c := range x {
			mrkdwnTexts(c, out)
		}
	case []any:
		for _, c := range x {
			mrkdwnTexts(c, out)
		}
	}
}

func TestOutsideStringsArriveInert(t *testing.T) {
	f, n := setup(t)
	ref, err := n.Notify(context.Background(), hostile("firing"))
	if err != nil {
		t.Fatal(err)
	}
	ack := hostile("acknowledged")
	ack.Ref = ref
	if _, err := n.Notify(context.Background(), ack); err != nil {
		t.Fatal(err)
	}
	d := notifier.Digest{Title: "Nightly " + mention, Nights: 2, OnTime: 1, PrevOnTime: -1, WorstJob: "dade/" + phish,
		Late:         []notifier.LateNight{{Tenant: "dade" + mention, Job: "j", Minutes: 12}},
		TopErrors:    []notifier.Count{{Name: "mongo: " + phish, N: 3}},
		Alerts:       []notifier.Count{{Name: "stalled" + mention, N: 1}},
		DashboardURL: "https://hub.example/?a=1&b=2"}
	if err := n.PostDigest(context.Background(), &d); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 4 {
		t.Fatalf("calls = %+v", f.calls)
	}
	links, kept := 0, false
	for i, c := range f.calls {
		texts := []string{c.form["text"]}
		if b := c.form["blocks"]; b != "" {
			var blocks any
			if err := json.Unmarshal([]byte(b), &blocks); err != nil {
				t.Fatal(err)
			}
			mrkdwnTexts(blocks, &texts)
		}
		for _, s := range texts {
			checkInert(t, c.method+"#"+string(rune('0'+i)), s)
			links += strings.Count(s, "<https://hub.example/")
			kept = kept || strings.Contains(s, "&lt;!channel&gt;")
		}
		if strings.Contains(c.form["blocks"], "`"+mention) {
			t.Errorf("the run id broke out of its code span: %s", c.form["blocks"])
		}
	}
	if links < 3 {
		t.Errorf("our dashboard links are gone (%d)", links)
	}
	if !kept {
		t.Error("the outside text was dropped instead of escaped")
	}
}

// A dashboard URL that is not http(s) is not linked.
func TestOnlyWebLinks(t *testing.T) {
	for _, u := range []string{"javascript:alert(1)", "https://hub.example/|evil", "ftp://hub.example/"} {
		m := message("firing")
		m.DashboardURL = u
		b, _ := json.Marshal(Blocks(m))
		if strings.Contains(string(b), "dashboard\\u003e") || strings.Contains(string(b), "|dashboard") {
			t.Errorf("%q was linked: %s", u, b)
		}
	}
}
