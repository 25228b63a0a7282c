package store

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/rules"
)

// kept is the last read of a table that only this process writes, kept
// until the store writes the table again. Only a SQLite store keeps reads
// (its file is this hub's alone: lock.go); on PostgreSQL other replicas
// write the same tables, and every read goes to the store. The alert loop
// reads sources and silences every tick: kept, a tick with no change to
// them reads neither.
type kept[T any] struct {
	// gen counts the writes to the table, bumped once each has returned
	// (committed or not): a read tagged with an older count is stale.
	gen  atomic.Uint64
	mu   sync.Mutex
	ok   bool
	at   uint64
	val  T
	mark time.Time // what the read depended on (silences: since)
}

// wrote records a write to the table.
func (k *kept[T]) wrote() { k.gen.Add(1) }

// get returns the kept value when it is current and usable for mark, else
// what load reads (kept when on). The count is taken before the read: a
// write that commits during it makes the value stale at once. The value is
// shared: callers copy what they hand on.
func (k *kept[T]) get(on bool, mark time.Time, usable func(kept time.Time) bool, load func() (T, error)) (T, error) {
	if !on {
		return load()
	}
	gen := k.gen.Load()
	k.mu.Lock()
	if k.ok && k.at == gen && usable(k.mark) {
		v := k.val
		k.mu.Unlock()
		return v, nil
	}
	k.mu.Unlock()
	v, err := load()
	if err != nil {
		return v, err
	}
	k.mu.Lock()
	k.ok, k.at, k.val, k.mark = true, gen, v, mark
	k.mu.Unlock()
	return v, nil
}

// keeps says whether reads may be kept: the store is its file's one writer.
func (s *Store) keeps() bool { return s.lock != nil }

// caches are the reads a store keeps.
type caches struct {
	sources  kept[[]model.SourceHealth]
	silences kept[[]rules.Silence]
}

// always is a kept read usable at any mark.
func always(time.Time) bool { return true }

// liveSilences is a caller's own copy of the silences that end after since.
func liveSilences(all []rules.Silence, since time.Time) []rules.Silence {
	var out []rules.Silence
	for _, sl := range all {
		if sl.EndsAt.After(since) {
			sl.Matchers = slices.Clone(sl.Matchers)
			out = append(out, sl)
		}
	}
	return out
}
