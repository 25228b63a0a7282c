package app

import (
	"time"

	"github.com/etlhub/etlhub/rules"
)

// PostExternal takes alerts posted in Alertmanager's format (POST
// /api/v2/alerts); they fire on the next rules tick.
func (l *ruleLoop) PostExternal(xs []rules.External) {
	l.engine.PostExternal(xs, time.Now().UTC())
}
