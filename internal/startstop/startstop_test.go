package startstop

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

type ctxKey struct{}

func TestBase(t *testing.T) {
	t.Parallel()

	t.Run("runs until Stop, keeping the values but not the cancellation of Start's context", func(t *testing.T) {
		t.Parallel()
		var b Base
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
		started, value := make(chan struct{}), make(chan any, 1)
		var ended atomic.Bool
		b.Start(ctx, func(ctx context.Context) {
			value <- ctx.Value(ctxKey{})
			close(started)
			<-ctx.Done()
			ended.Store(true)
		})
		<-started
		cancel()
		if v := <-value; v != "v" {
			t.Errorf("value %v, want v", v)
		}
		if ended.Load() {
			t.Fatal("the worker ended with its caller's context")
		}
		if !b.Stop() {
			t.Error("Stop of a running worker reported none")
		}
		if !ended.Load() {
			t.Error("Stop returned before the worker did")
		}
	})

	t.Run("Start and Stop twice", func(t *testing.T) {
		t.Parallel()
		var b Base
		if b.Stop() {
			t.Error("Stop before Start reported a worker")
		}
		var runs atomic.Int32
		started := make(chan struct{})
		for range 2 {
			b.Start(context.Background(), func(ctx context.Context) {
				if runs.Add(1) == 1 {
					close(started)
				}
				<-ctx.Done()
			})
		}
		<-started
		if !b.Stop() || b.Stop() {
			t.Error("Stop twice: want true then false")
		}
		if n := runs.Load(); n != 1 {
			t.Errorf("two Starts ran %d workers, want 1", n)
		}
		b.Start(context.Background(), func(ctx context.Context) { <-ctx.Done() })
		if !b.Stop() {
			t.Error("a worker started again after Stop did not run")
		}
	})

	t.Run("a failed prepare leaves the worker stopped", func(t *testing.T) {
		t.Parallel()
		var b Base
		boom := errors.New("boom")
		err := b.StartWith(context.Background(), func(context.Context) (func(context.Context), error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("StartWith = %v, want boom", err)
		}
		if b.Stop() {
			t.Error("a worker whose prepare failed is running")
		}
		var prepared atomic.Int32
		prepare := func(context.Context) (func(context.Context), error) {
			prepared.Add(1)
			return func(ctx context.Context) { <-ctx.Done() }, nil
		}
		for range 2 {
			if err := b.StartWith(context.Background(), prepare); err != nil {
				t.Fatal(err)
			}
		}
		if n := prepared.Load(); n != 1 {
			t.Errorf("prepared %d times for one running worker, want 1", n)
		}
		b.Stop()
	})
}
