package loadtest

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Worker is the per-goroutine state a workload uses to build requests:
// its own random source and scratch buffer, so generating a request takes
// no lock.
type Worker struct {
	// ID numbers the workers from 0.
	ID int
	// Rand is this worker's random source.
	Rand *rand.Rand
	// Buf is scratch space for encoding bodies; it may be kept and grown.
	Buf []byte
}

// NewWorker returns the state of worker id; workers of one seed generate
// the same sequence of requests run after run.
func NewWorker(id int, seed uint64) *Worker {
	return &Worker{ID: id, Rand: rand.New(rand.NewPCG(seed, uint64(id))), Buf: make([]byte, 0, 512)}
}

// Op performs one request for worker w and returns the HTTP status (0 when
// no answer arrived, with err saying why).
type Op func(ctx context.Context, w *Worker) (status int, err error)

// Result is one measured phase of a run.
type Result struct {
	// Name says what was measured, e.g. "api closed-loop".
	Name string `json:"name"`
	// Mode is closed (fixed concurrency), open (fixed rate) or pgbench.
	Mode string `json:"mode"`
	// Round numbers repeated phases from 1.
	Round int `json:"round"`
	// Clients is the concurrency: closed-loop clients, or the most requests
	// an open-loop phase kept in flight.
	Clients int `json:"clients"`
	// Rate is the target rate of an open-loop phase, per second.
	Rate float64 `json:"rate,omitempty"`
	// Elapsed is the measured window (warm-up excluded).
	Elapsed time.Duration `json:"elapsedNs"`
	// OK counts the successful requests of the window, Failed the others
	// (unexpected status or no answer).
	OK     uint64 `json:"ok"`
	Failed uint64 `json:"failed"`
	// Throughput is successful requests (pgbench: transactions) per second.
	Throughput float64 `json:"throughput"`
	// Latency covers every request of the window, failed ones included.
	// Open loop: measured from the time each request was due, so a stalled
	// server is charged for the requests it kept waiting.
	Latency Latency `json:"latency"`
	// SendLag (open loop) is how late requests left against their
	// schedule: high values mean the generator or the server's queue held
	// them back; both are in Latency already.
	SendLag *Latency `json:"sendLag,omitempty"`
	// Statuses counts answers by status code ("0": no answer).
	Statuses map[string]uint64 `json:"statuses,omitempty"`
	// FirstError is an example of a failure, for the operator.
	FirstError string `json:"firstError,omitempty"`
	// CPU is where the machine's CPU went during the window (Linux only).
	CPU *CPU `json:"cpu,omitempty"`
	// Figures are what a scenario measured beyond the columns above.
	Figures []Figure `json:"figures,omitempty"`

	hist *Histogram // for merging rounds
}

// tally records a phase's requests. Workers share a few tallies (one per
// shard, under its lock) so that memory stays bounded however many
// workers an open loop runs.
type tally struct {
	mu       sync.Mutex
	hist     Histogram
	lag      Histogram
	ok, fail uint64
	statuses map[int]uint64
	firstErr string
}

func newTallies() []*tally {
	t := make([]*tally, 4*runtime.GOMAXPROCS(0))
	for i := range t {
		t[i] = &tally{}
	}
	return t
}

func (t *tally) add(status int, want int, err error, lat, lag time.Duration, open bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hist.Record(lat)
	if open {
		t.lag.Record(lag)
	}
	if t.statuses == nil {
		t.statuses = map[int]uint64{}
	}
	t.statuses[status]++
	if err == nil && status == want {
		t.ok++
		return
	}
	t.fail++
	if t.firstErr == "" {
		if err != nil {
			t.firstErr = err.Error()
		} else {
			t.firstErr = "status " + strconv.Itoa(status)
		}
	}
}

func merge(r *Result, tallies []*tally, elapsed time.Duration, open bool) {
	var all, lag Histogram
	r.Statuses = map[string]uint64{}
	for _, t := range tallies {
		all.Merge(&t.hist)
		lag.Merge(&t.lag)
		r.OK += t.ok
		r.Failed += t.fail
		for s, n := range t.statuses {
			r.Statuses[strconv.Itoa(s)] += n
		}
		if r.FirstError == "" {
			r.FirstError = t.firstErr
		}
	}
	r.Elapsed = elapsed
	if elapsed > 0 {
		r.Throughput = float64(r.OK) / elapsed.Seconds()
	}
	r.Latency = all.Summary()
	r.hist = &all
	if open {
		s := lag.Summary()
		r.SendLag = &s
	}
}

// ClosedLoop runs Clients workers that each send a request, wait for the
// answer and send the next, for Warmup then Duration (or until
// MaxRequests were measured). Only requests sent after the warm-up count.
type ClosedLoop struct {
	Clients     int
	Warmup      time.Duration
	Duration    time.Duration
	MaxRequests uint64
	// Want is the status a successful request answers (e.g. 201).
	Want int
	// Seed makes the generated workload repeatable.
	Seed uint64
	// Postmaster is the PID of the PostgreSQL cluster whose CPU to account
	// for; 0: unknown.
	Postmaster int
}

// Run measures op. It returns when the phase is over or ctx is done.
func (c ClosedLoop) Run(ctx context.Context, op Op) (Result, error) {
	if c.Clients < 1 || c.Duration <= 0 {
		return Result{}, errors.New("closed loop: clients and duration must be positive")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	measureFrom := start.Add(c.Warmup)
	end := measureFrom.Add(c.Duration)
	var (
		wg       sync.WaitGroup
		sent     atomic.Uint64
		lastDone atomic.Int64
	)
	cpuFrom := make(chan cpuSample, 1)
	cpuTimer := time.AfterFunc(c.Warmup, func() { cpuFrom <- sampleCPU(c.Postmaster) })
	defer cpuTimer.Stop()
	tallies := newTallies()
	for i := range c.Clients {
		w := NewWorker(i, c.Seed)
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				measured := !t0.Before(measureFrom)
				if measured && c.MaxRequests > 0 && sent.Add(1) > c.MaxRequests {
					return
				}
				status, err := op(ctx, w)
				t1 := time.Now()
				if measured && ctx.Err() == nil {
					t.add(status, c.Want, err, t1.Sub(t0), 0, false)
					storeMax(&lastDone, t1.UnixNano())
				}
			}
		}(tallies[i%len(tallies)])
	}
	wg.Wait()
	cpuTo := sampleCPU(c.Postmaster)
	r := Result{Mode: "closed", Clients: c.Clients}
	elapsed := time.Duration(lastDone.Load() - measureFrom.UnixNano())
	merge(&r, tallies, max(elapsed, 0), false)
	select {
	case from := <-cpuFrom:
		r.CPU = cpuBetween(from, cpuTo, r.OK)
	default:
	}
	return r, ctx.Err()
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}

// OpenLoop sends requests at a fixed Rate whatever the answers' latency,
// for Warmup then Duration, keeping at most MaxInFlight in flight. The
// latency of a request is measured from the time it was due, not from
// when it could be sent, so a server that stalls is charged for every
// request it delayed (no coordinated omission).
type OpenLoop struct {
	// Rate is requests per second.
	Rate     float64
	Warmup   time.Duration
	Duration time.Duration
	// MaxInFlight bounds concurrency (workers). Default 512.
	MaxInFlight int
	// Want is the status a successful request answers (e.g. 201).
	Want int
	Seed uint64
	// Postmaster is the PID of the PostgreSQL cluster whose CPU to account
	// for; 0: unknown.
	Postmaster int
}

// Run measures op at the fixed rate. It returns when the phase is over
// and every request sent has answered (or timed out), or ctx is done.
func (o OpenLoop) Run(ctx context.Context, op Op) (Result, error) {
	if o.Rate <= 0 || o.Duration <= 0 {
		return Result{}, errors.New("open loop: rate and duration must be positive")
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 512
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	interval := time.Duration(float64(time.Second) / o.Rate)
	total := int64((o.Warmup + o.Duration) / interval)
	warm := int64(o.Warmup / interval)
	type job struct {
		due      time.Time
		measured bool
	}
	jobs := make(chan job, o.MaxInFlight)
	var wg sync.WaitGroup
	tallies := newTallies()
	for i := range o.MaxInFlight {
		w := NewWorker(i, o.Seed)
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			for j := range jobs {
				sent := time.Now()
				status, err := op(ctx, w)
				if j.measured && ctx.Err() == nil {
					from := j.due
					if sent.Before(from) { // sent early, see below
						from = sent
					}
					t.add(status, o.Want, err, time.Since(from), sent.Sub(j.due), true)
				}
			}
		}(tallies[i%len(tallies)])
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var cpuFrom cpuSample
	start := time.Now()
	var measureFrom time.Time
schedule:
	for i := int64(0); i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if i == warm {
			measureFrom = due
			cpuFrom = sampleCPU(o.Postmaster)
		}
		// Requests due within a millisecond leave together: a wake-up per
		// request would cost the generator more CPU than the request. Their
		// latency counts from when they left (see the workers).
		if d := time.Until(due); d > time.Millisecond {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break schedule
			case <-timer.C:
			}
		}
		select {
		case jobs <- job{due: due, measured: i >= warm}:
		case <-ctx.Done():
			break schedule
		}
	}
	close(jobs)
	wg.Wait()
	cpuTo := sampleCPU(o.Postmaster)
	if measureFrom.IsZero() {
		measureFrom = start
	}
	r := Result{Mode: "open", Clients: o.MaxInFlight, Rate: o.Rate}
	merge(&r, tallies, start.Add(time.Duration(total)*interval).Sub(measureFrom), true)
	r.CPU = cpuBetween(cpuFrom, cpuTo, r.OK)
	return r, ctx.Err()
}
