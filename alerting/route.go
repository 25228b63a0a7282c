package alerting

import (
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/notifier"
	"github.com/etlhub/etlhub/rules"
	"github.com/etlhub/etlhub/store"
)

// Notifications routes the transitions that are not silenced and not
// grouped under a shared alert (whose page covers them); skip, when set,
// leaves out receivers (PagerDuty for a change that came from it).
// groupLast, when set, is when a group last had a firing notification: a
// new alert of a group notified less than group_interval ago waits until
// then, as in Alertmanager, instead of paging again after group_wait.
func Notifications(rt *notifier.Router, trans []model.Transition, skip func(receiver string) bool, groupLast func(receiver, key string) time.Time) []store.Notification {
	var out []store.Notification
	for _, t := range trans {
		if t.Alert.Silenced || t.Alert.GroupedUnder != "" {
			continue
		}
		for _, tg := range rt.Targets(&t.Alert, t.At) {
			if skip != nil && skip(tg.Receiver) {
				continue
			}
			n := store.Notification{Receiver: tg.Receiver, Trans: t, GroupKey: tg.GroupKey}
			if t.Status == model.TransitionFiring {
				n.Wait = tg.GroupWait
				if tg.GroupKey != "" && tg.GroupInterval > 0 && groupLast != nil {
					if last := groupLast(tg.Receiver, tg.GroupKey); !last.IsZero() && t.At.Before(last.Add(tg.GroupInterval)) {
						n.Wait = last.Add(tg.GroupInterval).Sub(t.At)
					}
				}
			}
			out = append(out, n)
		}
	}
	return out
}

// Repeats are the re-notifications due at now (repeat_interval): for every
// firing alert that is not silenced, inhibited, grouped under a shared
// alert or acknowledged, each
// receiver whose newest firing notification of it was queued at least its
// route's repeat_interval ago (or never: the route was muted when it
// fired) and is not still pending. The flat routes never repeat.
func Repeats(rt *notifier.Router, active []model.Alert, silenced rules.Silencer, last map[store.FiringKey]store.LastFiring, now time.Time) []store.Notification {
	var out []store.Notification
	for i := range active {
		a := active[i]
		if a.State != model.AlertFiring || a.Silenced || a.Inhibited || a.GroupedUnder != "" || a.AckedBy != "" || (silenced != nil && silenced(&a, now)) {
			continue
		}
		for _, tg := range rt.Targets(&a, now) {
			if tg.RepeatInterval <= 0 {
				continue
			}
			lf, ok := last[store.FiringKey{Fingerprint: a.Fingerprint, Receiver: tg.Receiver}]
			if ok && (lf.Pending || now.Sub(lf.At) < tg.RepeatInterval) {
				continue
			}
			out = append(out, store.Notification{Receiver: tg.Receiver, GroupKey: tg.GroupKey,
				Trans: model.Transition{At: now, Status: model.TransitionFiring, Alert: a}})
		}
	}
	return out
}
