package pagerduty

import (
	"testing"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
)

// PagerDuty shows client_url as a link: only http(s) URLs are sent.
func TestClientURLIsAWebLink(t *testing.T) {
	n := New(Config{RoutingKey: "0123456789abcdef0123456789abcdef", EventsURL: DefaultEventsURL})
	for u, want := range map[string]string{
		"https://hub.example/#/alerts": "https://hub.example/#/alerts",
		"javascript:alert(1)":          "",
		"file:///etc/passwd":           "",
		"":                             "",
	} {
		ev := n.Event(notifier.Message{Event: "firing", DashboardURL: u, Alert: model.Alert{Fingerprint: "f", Severity: "critical"}})
		if ev.ClientURL != want {
			t.Errorf("dashboard %q: client_url %q, want %q", u, ev.ClientURL, want)
		}
	}
}
