package alerting

import "testing"

// The transactions the tail skips are bounded and forgotten once passed.
func TestSeenXactsBounded(t *testing.T) {
	var s seenXacts
	for i := int64(1); i <= maxSeenXacts+10; i++ {
		s.add(i)
	}
	got := s.list()
	if len(got) != maxSeenXacts || got[0] != 11 {
		t.Fatalf("kept %d from %d, want %d from 11", len(got), got[0], maxSeenXacts)
	}
	s.passed(200)
	if got := s.list(); len(got) != maxSeenXacts+10-199 || got[0] != 200 {
		t.Errorf("after the tail passed 200: %d kept from %d", len(got), got[0])
	}
}
