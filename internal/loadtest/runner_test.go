package loadtest

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func fakeOp(calls *atomic.Int64) Op {
	return func(ctx context.Context, w *Worker) (int, error) {
		n := calls.Add(1)
		runtime.Gosched()
		switch {
		case n%10 == 0:
			return 500, nil
		case n%13 == 0:
			return 0, errors.New("connection refused")
		}
		return 201, nil
	}
}

func TestClosedLoop(t *testing.T) {
	t.Parallel()
	t.Run("counts successes, failures and statuses", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int64
		r, err := ClosedLoop{Clients: 4, Warmup: 10 * time.Millisecond, Duration: 50 * time.Millisecond, Want: 201}.Run(context.Background(), fakeOp(&calls))
		if err != nil {
			t.Fatal(err)
		}
		if r.OK == 0 || r.Failed == 0 || r.Latency.Count != r.OK+r.Failed || r.Throughput <= 0 || r.Mode != "closed" {
			t.Fatalf("result %+v", r)
		}
		if r.Statuses["201"] != r.OK || r.Statuses["500"]+r.Statuses["0"] != r.Failed || r.FirstError == "" {
			t.Fatalf("statuses %v, first error %q", r.Statuses, r.FirstError)
		}
	})
	t.Run("stops after MaxRequests", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int64
		r, err := ClosedLoop{Clients: 8, Duration: time.Hour, MaxRequests: 100, Want: 201}.Run(context.Background(), fakeOp(&calls))
		if err != nil {
			t.Fatal(err)
		}
		if r.OK+r.Failed != 100 {
			t.Fatalf("measured %d requests, want 100", r.OK+r.Failed)
		}
	})
	t.Run("stops when the context ends", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int64
		op := func(ctx context.Context, w *Worker) (int, error) {
			if calls.Add(1) == 50 {
				cancel()
			}
			return 201, nil
		}
		if _, err := (ClosedLoop{Clients: 2, Duration: time.Hour, Want: 201}).Run(ctx, op); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestOpenLoop(t *testing.T) {
	t.Parallel()
	t.Run("sends the scheduled number of requests", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int64
		r, err := OpenLoop{Rate: 2000, Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond, Want: 201, MaxInFlight: 16}.Run(context.Background(), fakeOp(&calls))
		if err != nil {
			t.Fatal(err)
		}
		if r.OK+r.Failed != 200 || calls.Load() != 240 {
			t.Fatalf("measured %d of %d calls, want 200 of 240", r.OK+r.Failed, calls.Load())
		}
		if r.SendLag == nil || r.SendLag.Count != 200 || r.Rate != 2000 || r.Mode != "open" {
			t.Fatalf("result %+v", r)
		}
	})
	t.Run("charges a stall to every request it delayed", func(t *testing.T) {
		t.Parallel()
		// One request stalls 50 ms with one worker: the requests due
		// meanwhile wait, and their latency counts the wait.
		var calls atomic.Int64
		op := func(ctx context.Context, w *Worker) (int, error) {
			if calls.Add(1) == 1 {
				time.Sleep(50 * time.Millisecond)
			}
			return 201, nil
		}
		r, err := OpenLoop{Rate: 1000, Duration: 100 * time.Millisecond, Want: 201, MaxInFlight: 1}.Run(context.Background(), op)
		if err != nil {
			t.Fatal(err)
		}
		// The second request was due at 1 ms and could not leave before
		// the first returned, at 50 ms or later: a bound sleep
		// guarantees, however slow the machine.
		if r.Latency.Max < 49*time.Millisecond || r.SendLag.Max < 49*time.Millisecond {
			t.Fatalf("stall not charged: latency %+v, send lag %+v", r.Latency, *r.SendLag)
		}
	})
}
