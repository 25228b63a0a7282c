package alerting

import (
	"github.com/etlhub/etlhub/rules"
)

// PostExternal takes alerts posted in Alertmanager's format (POST
// /api/v2/alerts); they fire on the next rules tick.
func (l *Loop) PostExternal(xs []rules.External) {
	l.engine.PostExternal(xs, l.now())
}
