// Package startstop is the start/stop base of the long-running workers
// (relay, pruner, consumer, detector, evaluator …), after river's
// rivershared/startstop: Start runs the worker in the background until
// Stop, both safe to call twice and from several goroutines.
package startstop

import (
	"context"
	"sync"
)

// Base runs one worker's goroutine between Start and Stop. A worker holds
// one Base (the zero value is stopped and ready) and forwards its own
// Start and Stop to it.
type Base struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs run in a goroutine with a context that Stop cancels: it
// keeps ctx's values but not its cancellation, since a worker lives until
// Stop, not until the caller's request ends. It does nothing when the
// worker runs already.
func (b *Base) Start(ctx context.Context, run func(ctx context.Context)) {
	_ = b.StartWith(ctx, func(context.Context) (func(context.Context), error) { return run, nil })
}

// StartWith is Start for a worker that must prepare before it runs
// (subscribe, read a start time): prepare is called, under the lock and
// with ctx as given, only when the worker is stopped; the function it
// returns then runs as Start's run does. An error from prepare leaves the
// worker stopped and is returned.
func (b *Base) StartWith(ctx context.Context, prepare func(ctx context.Context) (func(ctx context.Context), error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		return nil
	}
	run, err := prepare(ctx)
	if err != nil {
		return err
	}
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.done = make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		run(ctx)
	}(b.done)
	return nil
}

// Stop cancels the running worker's context and waits for its goroutine
// to return. It reports whether it stopped one: false when the worker was
// not running (never started, or stopped already), so that what a worker
// does after its last run (a final flush) happens once.
func (b *Base) Stop() bool {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.cancel = nil
	b.mu.Unlock()
	if cancel == nil {
		return false
	}
	cancel()
	<-done
	return true
}

// Signal tells waiters that something happened once more (a cycle ran, a
// batch committed): the channel Wait returns closes at the next Fire, so
// tests wait on the event instead of sleeping. The zero value is ready; a
// Signal must not be copied after first use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{} // nil until someone waits
}

// Wait returns a channel closed by the next Fire.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Fire closes the channel of every Wait since the last Fire.
func (s *Signal) Fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
