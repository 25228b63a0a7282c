package collectors

// Known creates a source's counters at zero, so that increase() over them
// works from the first collection on (etlhub_source_up stays absent until the
// source was collected once).
func (m *Metrics) Known(source string) {
	if m == nil {
		return
	}
	for _, r := range []string{"ok", "error"} {
		m.runs.WithLabelValues(source, r)
	}
	m.obs.WithLabelValues(source)
	m.invalid.WithLabelValues(source)
}
