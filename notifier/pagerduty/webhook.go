package pagerduty

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// DefaultWebhookWindow is how far an event's occurred_at may be from the
// hub's clock: a signed body older than this is a replay.
const DefaultWebhookWindow = 5 * time.Minute

// Reasons a signed webhook is refused.
var (
	ErrStaleEvent = errors.New("the event's occurred_at is outside the accepted window")
	ErrNoEventID  = errors.New("the event has no id")
)

// ParseWebhook reads a verified Webhooks v3 body and checks that it is
// fresh: its occurred_at within window of now (either side, for clock skew).
// It is pure: now is passed in.
func ParseWebhook(body []byte, now time.Time, window time.Duration) (WebhookEvent, time.Time, error) {
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return ev, time.Time{}, err
	}
	if id := ev.Event.ID; id == "" || len(id) > 128 {
		return ev, time.Time{}, ErrNoEventID
	}
	at, err := time.Parse(time.RFC3339Nano, ev.Event.OccurredAt)
	if err != nil {
		return ev, time.Time{}, fmt.Errorf("%w: occurred_at %q is not an RFC 3339 time", ErrStaleEvent, clipName(ev.Event.OccurredAt, 40))
	}
	if d := now.Sub(at); d > window || d < -window {
		return ev, at, fmt.Errorf("%w: occurred at %s, %s from now (window %s)", ErrStaleEvent,
			at.UTC().Format(time.RFC3339), d.Round(time.Second), window)
	}
	return ev, at, nil
}

// Actor names who changed the incident, from the event's agent as PagerDuty
// documents it: a user's summary is their name; a service or integration is
// named with its kind; without an agent it is "PagerDuty". The name is
// outside text: control characters are dropped and it is cut at 128 bytes
// (receivers escape it where they show it).
func Actor(ev WebhookEvent) string {
	a := ev.Event.Agent
	if a == nil {
		return "PagerDuty"
	}
	name := clipName(a.Summary, 128)
	if name == "" {
		name = clipName(a.ID, 64)
	}
	if name == "" {
		return "PagerDuty"
	}
	switch a.Type {
	case "user_reference", "":
		return name
	default:
		return name + " (PagerDuty " + clipName(strings.TrimSuffix(a.Type, "_reference"), 32) + ")"
	}
}

// clipName drops control and format characters, folds runs of spaces and
// cuts s to n bytes on a character.
func clipName(s string, n int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar:
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if b.Len()+len(string(r)) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
