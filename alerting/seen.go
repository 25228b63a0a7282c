package alerting

import (
	"slices"
	"sync"
)

// seenXacts are the store transactions whose observations this loop's
// engine was handed as they were stored (ObserveStored), not yet passed by
// its tail: the tail skips them rather than read back what the engine has.
// At most maxSeenXacts are kept, the oldest forgotten past that (read
// back: harmless, seeing an observation twice changes nothing).
type seenXacts struct {
	mu  sync.Mutex
	ids []int64
}

const maxSeenXacts = 4096

func (s *seenXacts) add(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) >= maxSeenXacts {
		s.ids = slices.Delete(s.ids, 0, len(s.ids)-maxSeenXacts+1)
	}
	s.ids = append(s.ids, id)
}

// list is the transactions kept.
func (s *seenXacts) list() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// passed forgets the transactions below the tail's horizon.
func (s *seenXacts) passed(horizon int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = slices.DeleteFunc(s.ids, func(id int64) bool { return id < horizon })
}
