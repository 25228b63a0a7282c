package model

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestMeasurementValidateNamesTheBadField(t *testing.T) {
	at := time.Date(2026, 9, 1, 3, 10, 0, 0, time.FixedZone("EDT", -4*3600))
	good := func() Measurement {
		return Measurement{At: at, Source: "redis-main", Subject: "redis:main", Kind: KindRedis, Up: true,
			Values: map[string]float64{ValueLatencyMs: 1.5, ValueMemoryUsedRatio: 0.4}}
	}
	m := good()
	if err := m.Validate(); err != nil || m.At.Location() != time.UTC {
		t.Fatalf("good measurement: %v (at %v)", err, m.At)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Measurement)
		field string
	}{
		{"no at", func(m *Measurement) { m.At = time.Time{} }, `"at"`},
		{"no source", func(m *Measurement) { m.Source = " " }, `"source"`},
		{"no subject", func(m *Measurement) { m.Subject = "" }, `"subject"`},
		{"subject of another kind", func(m *Measurement) { m.Subject = "mongodb:roster" }, `"subject"`},
		{"subject with a newline", func(m *Measurement) { m.Subject = "redis:a\nb" }, `"subject"`},
		{"long subject", func(m *Measurement) { m.Subject = "redis:" + strings.Repeat("x", MaxSubjectLen) }, `"subject"`},
		{"unknown kind", func(m *Measurement) { m.Kind = "Redis" }, `"kind"`},
		{"down without why", func(m *Measurement) { m.Up = false }, `"error"`},
		{"NaN", func(m *Measurement) { m.Values[ValueLatencyMs] = math.NaN() }, `"values.latency_ms"`},
		{"Inf", func(m *Measurement) { m.Values[ValueP95Ms] = math.Inf(1) }, `"values.p95_ms"`},
		{"negative", func(m *Measurement) { m.Values[ValueErrorRate] = -0.1 }, `"values.error_rate"`},
		{"bad name", func(m *Measurement) { m.Values["Latency-ms"] = 1 }, `"values.Latency-ms"`},
		{"long tenant", func(m *Measurement) { m.Tenant = strings.Repeat("t", MaxNameLen+1) }, `"tenant"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.edit(&m)
			err := m.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
	down := Measurement{At: at, Source: "store", Subject: "store", Kind: KindStore, Error: "database is locked"}
	if err := down.Validate(); err != nil {
		t.Fatalf("a down measurement with its reason: %v", err)
	}
}
