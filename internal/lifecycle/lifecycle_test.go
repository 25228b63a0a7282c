package lifecycle

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestGroupOrder: services start in order and stop in reverse, a Loop's
// function sees its context cancelled by Stop, and a failed start stops
// what had started.
func TestGroupOrder(t *testing.T) {
	var log []string
	mk := func(name string, fail bool) Service {
		return &Funcs{N: name, StartFn: func(context.Context) error {
			log = append(log, "start "+name)
			if fail {
				return errors.New("no")
			}
			return nil
		}, StopFn: func() { log = append(log, "stop "+name) }}
	}
	cancelled := make(chan struct{})
	loop := NewLoop("loop", func(ctx context.Context) { <-ctx.Done(); close(cancelled) })
	var g Group
	g.Add(mk("store", false), loop, mk("api", false))
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.Stop()
	select {
	case <-cancelled:
	default:
		t.Fatal("the loop's context was not cancelled by Stop")
	}
	if want := []string{"start store", "start api", "stop api", "stop store"}; !reflect.DeepEqual(log, want) {
		t.Fatalf("order %v, want %v", log, want)
	}
	log = nil
	var g2 Group
	g2.Add(mk("a", false), mk("b", true), mk("c", false))
	if err := g2.Start(context.Background()); err == nil || err.Error() != "starting b: no" {
		t.Fatalf("err = %v", err)
	}
	if want := []string{"start a", "start b", "stop a"}; !reflect.DeepEqual(log, want) {
		t.Fatalf("after a failed start %v, want %v", log, want)
	}
	loop.Stop() // twice: nothing
}
