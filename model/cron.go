package model

import "github.com/robfig/cron/v3"

// Cron is the one cron dialect of etlhub, for job schedules, collector
// schedules, digests and the importer's tenant schedules: five fields
// (minute hour day-of-month month day-of-week) or a descriptor such as
// @daily or @every 5m, with an optional "CRON_TZ=Zone " prefix.
var Cron cron.ScheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseCron parses a schedule in the one dialect (see Cron).
func ParseCron(expr string) (cron.Schedule, error) { return Cron.Parse(expr) }
