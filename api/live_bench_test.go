package api

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/etlhub/etlhub/model"
	"github.com/etlhub/etlhub/store"
)

// BenchmarkDigests: what the event streams' watcher costs the hub each
// second while a page listens, with 5,000 jobs (about 14 ms on the shared
// 2-core machine under load, 1-2% of a core).
func BenchmarkDigests(b *testing.B) {
	views := &fakeViews{v: map[model.JobKey]JobView{}}
	d := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5000; i++ {
		views.v[model.JobKey{Tenant: fmt.Sprintf("t-%04d", i), Job: "roster-import"}] = JobView{Risk: "running", Deadline: &d}
	}
	st, err := store.Open(context.Background(), store.Config{Driver: "sqlite", Path: filepath.Join(b.TempDir(), "h.db")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := &server{o: Options{Views: views, Store: st}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.digests(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
