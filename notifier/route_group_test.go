package notifier

import (
	"context"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
)

// A route's one group (group_by []) and a group over a label the store has
// no column for (instance) resolve with their own last alert, whatever else
// fires at the time.
func TestTreeGroupsResolveWithTheirOwnAlerts(t *testing.T) {
	st := openStore(t)
	clock := base
	pd := &scripted{}
	w := newTestWorker(st, &clock, Receiver{Name: "pd", Notifier: pd})
	rt := treeRouter(t, `
receiver: pd
group_wait: 0s
routes:
  - {matchers: [team=platform], group_by: [instance]}
  - {matchers: [team=data], group_by: []}
`, `[]`)
	alert := func(fp, team, instance string) model.Alert {
		return model.Alert{Fingerprint: rules.ExternalFingerprint(map[string]string{"fp": fp}), Rule: "X", Severity: "warning", Source: rules.ExternalSource,
			Details: map[string]any{"labels": map[string]string{"alertname": "X", "team": team, "instance": instance, "fp": fp}}}
	}
	save := func(a model.Alert, event string, state model.AlertState) {
		a.State = state
		tr := model.Transition{At: clock, Status: model.TransitionKind(event), Alert: a}
		var notes []store.Notification
		for _, tg := range rt.Targets(&a, clock) {
			notes = append(notes, store.Notification{Receiver: tg.Receiver, Trans: tr, GroupKey: tg.GroupKey})
		}
		if err := st.SaveAlerts(context.Background(), []model.Alert{a}, []model.Transition{tr}, notes); err != nil {
			t.Fatal(err)
		}
		for w.RunOnce(context.Background()) > 0 {
		}
	}
	sftp1, sftp2 := alert("a", "platform", "sftp-1"), alert("b", "platform", "sftp-2")
	d1, d2 := alert("c", "data", "x"), alert("d", "data", "y")
	for _, a := range []model.Alert{sftp1, sftp2, d1, d2} {
		save(a, "firing", model.AlertFiring)
	}
	clock = clock.Add(time.Minute)
	save(sftp1, "resolved", model.AlertResolved) // sftp-1's group resolves though sftp-2 and the data alerts fire
	save(d1, "resolved", model.AlertResolved)    // the data group still has d2
	save(d2, "resolved", model.AlertResolved)    // now it resolves, though sftp-2 fires
	var resolved []string
	for _, m := range pd.got {
		if m.Event == "resolved" {
			resolved = append(resolved, m.GroupKey)
		}
	}
	if len(resolved) != 2 || resolved[0] != "instance=sftp-1" || resolved[1] != "{}" {
		t.Fatalf("resolves sent for groups %q; want instance=sftp-1 then {}", resolved)
	}
}
