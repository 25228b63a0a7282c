package app

import (
	"testing"
	"time"

	"github.com/etlhub/etlhub/alerting"
	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/rules"
)

// An alert grouped under a shared alert is not notified on its own, firing
// or resolving: the shared alert's page covers it.
func TestGroupedAlertsFoldIntoTheSharedPage(t *testing.T) {
	rt := &notifier.Router{Default: "pd"}
	at := time.Date(2026, 9, 10, 7, 0, 0, 0, time.UTC)
	shared := model.Alert{Fingerprint: "shared-slowdown|x", Rule: rules.RuleSharedSlowdown, Severity: model.SeverityCritical, Scope: model.ScopeShared}
	own := model.Alert{Fingerprint: "predicted-breach|dade", Rule: rules.RulePredictedBreach, Severity: model.SeverityCritical, Tenant: "dade", Job: "roster-import",
		GroupedUnder: shared.Fingerprint}
	other := model.Alert{Fingerprint: "predicted-breach|polk", Rule: rules.RulePredictedBreach, Severity: model.SeverityCritical, Tenant: "polk", Job: "roster-import"}
	trans := []model.Transition{{At: at, Status: "firing", Alert: shared}, {At: at, Status: "firing", Alert: own},
		{At: at, Status: "firing", Alert: other}, {At: at.Add(time.Hour), Status: "resolved", Alert: own}}
	got := alerting.Notifications(rt, trans, nil, nil)
	if len(got) != 2 || got[0].Trans.Alert.Fingerprint != shared.Fingerprint || got[1].Trans.Alert.Fingerprint != other.Fingerprint {
		var fps []string
		for _, n := range got {
			fps = append(fps, string(n.Trans.Status)+" "+n.Trans.Alert.Fingerprint)
		}
		t.Fatalf("notified %v, want the shared page and polk's own", fps)
	}
}
