package pagerduty

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func hookBody(id, occurred, agent string) []byte {
	return []byte(fmt.Sprintf(`{"event":{"id":%q,"event_type":"incident.acknowledged","occurred_at":%q,"agent":%s,"data":{"type":"incident","incident_key":"k"}}}`,
		id, occurred, agent))
}

func TestWebhookMustBeFresh(t *testing.T) {
	now := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	user := `{"id":"PLH1HKV","type":"user_reference","summary":"Jane Doe"}`
	for _, tc := range []struct {
		name, id, at string
		err          error
	}{
		{"fresh", "e1", "2026-09-01T08:57:30.169Z", nil},
		{"a little ahead (clock skew)", "e1", "2026-09-01T09:01:00Z", nil},
		{"from 2019", "e1", "2019-03-01T08:57:30Z", ErrStaleEvent},
		{"just past the window", "e1", "2026-09-01T08:54:59Z", ErrStaleEvent},
		{"far future", "e1", "2026-09-01T10:00:00Z", ErrStaleEvent},
		{"no time", "e1", "", ErrStaleEvent},
		{"no id", "", "2026-09-01T08:59:00Z", ErrNoEventID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, _, err := ParseWebhook(hookBody(tc.id, tc.at, user), now, DefaultWebhookWindow)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && ev.Event.ID != "e1" {
				t.Fatalf("event %+v", ev)
			}
		})
	}
}

func TestActorIsPagerDutysAgent(t *testing.T) {
	now := time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC)
	for agent, want := range map[string]string{
		`{"id":"PLH1HKV","type":"user_reference","summary":"Jane Doe"}`:                    "Jane Doe",
		`{"id":"P1","type":"user_reference","summary":"Mal\u001b]0;pwned\u0007lory\n  X"}`: "Mal]0;pwnedlory X",
		`{"id":"PSVC","type":"service_reference","summary":"API Service"}`:                 "API Service (PagerDuty service)",
		`{"id":"PX","type":"user_reference","summary":""}`:                                 "PX",
		`null`: "PagerDuty",
		`{"id":"P2","type":"user_reference","summary":"` + strings.Repeat("é", 100) + `"}`: strings.Repeat("é", 64),
	} {
		ev, _, err := ParseWebhook(hookBody("e", "2026-09-01T09:00:00Z", agent), now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got := Actor(ev); got != want {
			t.Errorf("agent %s: actor %q, want %q", agent, got, want)
		}
	}
}
