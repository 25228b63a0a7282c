package notifier

// Known creates a receiver's delivery series at zero, so that increase()
// over them works from the first delivery on.
func (m *Metrics) Known(receiver string) {
	if m == nil {
		return
	}
	for _, r := range []string{"delivered", "retry", "failed"} {
		m.results.WithLabelValues(receiver, r)
	}
}
