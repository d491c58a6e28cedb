package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Seed signs up orgs organizations with properties properties each,
// parallel at a time, and returns them in order. run makes the emails of
// this run unique (emails are unique across the platform).
func Seed(ctx context.Context, c *Client, run string, orgs, properties, parallel int) ([]Tenant, error) {
	if orgs < 1 || properties < 1 {
		return nil, errors.New("seed: at least one organization with one property")
	}
	parallel = max(1, min(parallel, orgs))
	tenants := make([]Tenant, orgs)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t, err := seedOne(ctx, c, run, i, properties)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					continue
				}
				tenants[i] = t
			}
		}()
	}
feed:
	for i := range orgs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("seed: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return tenants, nil
}

func seedOne(ctx context.Context, c *Client, run string, i, properties int) (Tenant, error) {
	name := fmt.Sprintf("Load %s %d", run, i)
	t, err := c.Signup(ctx, name, fmt.Sprintf("load-%s-%d@loadtest.invalid", run, i))
	if err != nil {
		return Tenant{}, err
	}
	for p := range properties {
		id, err := c.CreateProperty(ctx, t.AdminToken, fmt.Sprintf("%s hotel %d", name, p))
		if err != nil {
			return Tenant{}, err
		}
		t.Properties = append(t.Properties, id)
	}
	return t, nil
}

// RunID returns a short random name for a run.
func RunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RevenueCreates is the write workload: POST /v1/finance/revenues as each
// organization's ADMIN, spread uniformly over the tenants and their
// properties; amounts 1..10^7, cash or bank, any source, occurred within
// the last 30 days.
type RevenueCreates struct {
	Client  *Client
	Tenants []Tenant
	// IdempotencyKeys sends a fresh Idempotency-Key with every request
	// (the API then also records each outcome).
	IdempotencyKeys bool
	// Now is the clock of occurredAt. Default time.Now.
	Now func() time.Time
}

var sources = [...]string{"room", "addon", "other"}

// Op returns the operation the runners call.
func (g *RevenueCreates) Op() Op {
	now := g.Now
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, w *Worker) (int, error) {
		t := &g.Tenants[w.Rand.IntN(len(g.Tenants))]
		b := appendCreate(w.Buf[:0], w, t, "source", sources[:], now(), 30*24*time.Hour)
		w.Buf = b
		r := Request{Method: http.MethodPost, Path: "/v1/finance/revenues", Token: t.AdminToken, Body: b}
		if g.IdempotencyKeys {
			var k [16]byte
			_, _ = rand.Read(k[:])
			r.IdempotencyKey = hex.EncodeToString(k[:])
		}
		return g.Client.Send(ctx, r)
	}
}

// appendCreate appends to b the JSON body of a create on one of t's
// properties: field (source or category) one of values, an amount of
// 1..10^7 cents, cash or bank, occurred within age before now, each drawn
// from w.Rand in that order.
func appendCreate(b []byte, w *Worker, t *Tenant, field string, values []string, now time.Time, age time.Duration) []byte {
	prop := t.Properties[w.Rand.IntN(len(t.Properties))]
	value := values[w.Rand.IntN(len(values))]
	cents := 1 + w.Rand.Int64N(10_000_000)
	cash := w.Rand.IntN(2) == 0
	at := now.Add(-time.Duration(w.Rand.Int64N(int64(age)))).UTC().Truncate(time.Second)
	return appendTxnBody(b, prop, field, value, cents, cash, at)
}

// appendTxnBody appends the JSON body of a revenue (field "source") or
// expense (field "category") create; the workloads draw the values, each
// in its own order.
func appendTxnBody(b []byte, prop, field, value string, cents int64, cash bool, at time.Time) []byte {
	b = append(b, `{"propertyId":"`...)
	b = append(b, prop...)
	b = append(b, `","`...)
	b = append(b, field...)
	b = append(b, `":"`...)
	b = append(b, value...)
	b = append(b, `","amountCents":`...)
	b = strconv.AppendInt(b, cents, 10)
	b = append(b, `,"paymentMode":"`...)
	if cash {
		b = append(b, "cash"...)
	} else {
		b = append(b, "bank"...)
	}
	b = append(b, `","occurredAt":"`...)
	b = at.AppendFormat(b, time.RFC3339)
	return append(b, `"}`...)
}

// WritesConfig sets up the writes scenario.
type WritesConfig struct {
	// Client drives the API under test.
	Client *Client
	// Orgs organizations with Properties properties each are signed up
	// first. Default 10 and 5.
	Orgs, Properties int
	// Clients is the closed-loop concurrency. Default 32.
	Clients int
	// Warmup precedes every phase and is not measured. Default 2 s;
	// negative: none.
	Warmup time.Duration
	// Duration is the measured length of every phase. Default 10 s.
	Duration time.Duration
	// Rounds repeats pgbench, closed loop and open loop, interleaved, so a
	// noisy machine hurts all three alike. Default 1.
	Rounds int
	// MaxRequests bounds the requests of each closed-loop phase; 0: only
	// Duration does.
	MaxRequests uint64
	// Rate is the open-loop rate per second. Zero: half the pgbench tps of
	// the same round, or half the closed-loop throughput without pgbench;
	// negative: no open-loop phase.
	Rate float64
	// MaxInFlight bounds the open loop's concurrency. Default 512.
	MaxInFlight int
	// IdempotencyKeys sends an Idempotency-Key with every create.
	IdempotencyKeys bool
	// DatabaseURL is the API's database, when known: the report shows its
	// commit settings and, when it runs on this machine, its CPU.
	DatabaseURL string
	// Pgbench, when set, runs the baseline on the API's database (its
	// DatabaseURL defaults to the one above).
	Pgbench *Pgbench
	// MinRatio and MaxP99 are the targets checked: API writes/s at least
	// MinRatio × pgbench tps (default 0.70), p99 under MaxP99 in the open
	// loop (default 20 ms).
	MinRatio float64
	MaxP99   time.Duration
	// Phases: the phases are "pgbench", "closed" and "open" of each
	// round.
	Phases
}

// Validate reports every problem of a resolved c (see validate.go).
func (c WritesConfig) Validate() error {
	var errs []error
	positive(&errs, "duration", c.Duration)
	notNegative(&errs, "warmup", c.Warmup)
	positive(&errs, "clients", c.Clients)
	positive(&errs, "orgs", c.Orgs)
	positive(&errs, "properties", c.Properties)
	positive(&errs, "rounds", c.Rounds)
	return errors.Join(errs...)
}

func (c WritesConfig) withDefaults() WritesConfig {
	if c.Orgs <= 0 {
		c.Orgs = 10
	}
	if c.Properties <= 0 {
		c.Properties = 5
	}
	if c.Clients <= 0 {
		c.Clients = 32
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = 2 * time.Second
	case c.Warmup < 0:
		c.Warmup = 0
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 1
	}
	if c.MinRatio == 0 {
		c.MinRatio = 0.70
	}
	if c.MaxP99 == 0 {
		c.MaxP99 = 20 * time.Millisecond
	}
	c.Phases = c.Phases.withDefaults()
	return c
}

// Writes runs the writes scenario: sign the tenants up, then per round
// pgbench (when configured), the API in closed loop, and the API in open
// loop at a fixed rate; then merge the rounds and check the targets.
func Writes(ctx context.Context, cfg WritesConfig) (*Report, error) {
	cfg = cfg.withDefaults()
	if cfg.Client == nil {
		return nil, errors.New("writes: a client is required")
	}
	w := &writesRun{cfg: cfg, rep: &Report{Scenario: "writes", StartedAt: time.Now(), Host: ThisHost(), Target: cfg.Client.BaseURL()}}
	w.rep.Params = []Param{
		{"orgs", strconv.Itoa(cfg.Orgs)}, {"properties", strconv.Itoa(cfg.Properties)},
		{"clients", strconv.Itoa(cfg.Clients)}, {"warmup", cfg.Warmup.String()}, {"duration", cfg.Duration.String()},
		{"rounds", strconv.Itoa(cfg.Rounds)}, {"idempotency-keys", strconv.FormatBool(cfg.IdempotencyKeys)},
	}
	cleanup, err := w.prepare(ctx)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	start := time.Now()
	tenants, err := Seed(ctx, cfg.Client, RunID(), cfg.Orgs, cfg.Properties, 8)
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("loadtest_seeded", "orgs", cfg.Orgs, "properties", cfg.Orgs*cfg.Properties, "took", time.Since(start).String())
	w.gen = &RevenueCreates{Client: cfg.Client, Tenants: tenants, IdempotencyKeys: cfg.IdempotencyKeys}
	for round := 1; round <= cfg.Rounds; round++ {
		if err := w.round(ctx, round); err != nil {
			return nil, err
		}
	}
	cfg.Between("")
	rep := w.rep
	rep.Totals = totals(rep.Results)
	rep.Checks = writesChecks(rep.Totals, cfg)
	if !rep.Durable && rep.Server != nil {
		rep.Notes = append(rep.Notes, "the server does not make commits durable: these figures are not the durable-write ones")
	}
	return rep, nil
}

// writesRun is one run of the writes scenario.
type writesRun struct {
	cfg        WritesConfig
	rep        *Report
	postmaster int
	gen        *RevenueCreates
}

// prepare reads the database's settings and prepares pgbench's tables;
// the cleanup drops them.
func (w *writesRun) prepare(ctx context.Context) (cleanup func(), err error) {
	cfg := &w.cfg
	if cfg.DatabaseURL != "" {
		settings, err := ServerSettings(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, err
		}
		w.rep.Server, w.rep.Durable = settings, Durable(settings)
		w.postmaster = PostmasterPID(ctx, cfg.DatabaseURL)
	}
	if cfg.Pgbench == nil {
		return func() {}, nil
	}
	if cfg.Pgbench.DatabaseURL == "" {
		cfg.Pgbench.DatabaseURL = cfg.DatabaseURL
	}
	if cfg.Pgbench.Postmaster == 0 {
		cfg.Pgbench.Postmaster = w.postmaster
	}
	if cfg.Pgbench.Orgs == 0 {
		cfg.Pgbench.Orgs = cfg.Orgs
	}
	if cfg.Pgbench.Properties == 0 {
		cfg.Pgbench.Properties = cfg.Properties
	}
	pb := cfg.Pgbench.withDefaults()
	w.rep.Params = append(w.rep.Params, Param{"pgbench-clients", strconv.Itoa(pb.Clients)}, Param{"pgbench-mode", pb.Mode})
	if err := pb.Prepare(ctx); err != nil {
		return nil, err
	}
	return func() { _ = pb.Cleanup(context.WithoutCancel(ctx)) }, nil
}

// settle waits for the machine to go quiet before the phase next.
func (w *writesRun) settle(ctx context.Context, next string) {
	w.cfg.settleBefore(ctx, w.postmaster, next)
}

// round runs pgbench (when set), the closed loop and the open loop once.
func (w *writesRun) round(ctx context.Context, round int) error {
	cfg := w.cfg
	var pgTPS float64
	if cfg.Pgbench != nil {
		w.settle(ctx, "pgbench")
		r, err := cfg.Pgbench.Run(ctx, cfg.Warmup, cfg.Duration)
		if err != nil {
			return err
		}
		r.Round = round
		pgTPS = r.Throughput
		w.rep.Results = append(w.rep.Results, r)
		cfg.Logger.Info("loadtest_phase", "phase", "pgbench", "round", round, "tps", int(r.Throughput))
	}
	w.settle(ctx, "closed")
	closed := ClosedLoop{Clients: cfg.Clients, Warmup: cfg.Warmup, Duration: cfg.Duration, MaxRequests: cfg.MaxRequests,
		Want: http.StatusCreated, Seed: cfg.Seed + uint64(round), Postmaster: w.postmaster}
	r, err := closed.Run(ctx, w.gen.Op())
	if err != nil {
		return err
	}
	r.Name, r.Round = "api closed-loop", round
	w.rep.Results = append(w.rep.Results, r)
	cfg.Logger.Info("loadtest_phase", "phase", "closed", "round", round, "rps", int(r.Throughput), "p99", r.Latency.P99.String())
	if cfg.Rate < 0 {
		return nil
	}
	rate := cfg.Rate
	if rate == 0 {
		rate = r.Throughput / 2
		if pgTPS > 0 {
			rate = pgTPS / 2
		}
	}
	if rate < 1 {
		return nil
	}
	w.settle(ctx, "open")
	open := OpenLoop{Rate: rate, Warmup: cfg.Warmup, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight,
		Want: http.StatusCreated, Seed: cfg.Seed + 1000 + uint64(round), Postmaster: w.postmaster}
	o, err := open.Run(ctx, w.gen.Op())
	if err != nil {
		return err
	}
	o.Name, o.Round = "api open-loop", round
	w.rep.Results = append(w.rep.Results, o)
	cfg.Logger.Info("loadtest_phase", "phase", "open", "round", round, "rate", int(rate), "p99", o.Latency.P99.String())
	return nil
}

// totals merges the results of each mode over the rounds.
func totals(results []Result) []Result {
	var out []Result
	var cpus []CPU // per total: cores × seconds
	index := map[string]int{}
	for _, r := range results {
		i, ok := index[r.Mode]
		if !ok {
			index[r.Mode] = len(out)
			t := Result{Name: r.Name, Mode: r.Mode, Clients: r.Clients, Statuses: map[string]uint64{}, hist: &Histogram{}}
			if r.Mode == "pgbench" {
				t.Name = "pgbench"
			}
			out = append(out, t)
			cpus = append(cpus, CPU{})
			i = len(out) - 1
		}
		t := &out[i]
		if r.CPU != nil {
			sec := r.Elapsed.Seconds()
			c := &cpus[i]
			c.ProcessCores += r.CPU.ProcessCores * sec
			c.OtherCores += r.CPU.OtherCores * sec
			c.PostgresCores += r.CPU.PostgresCores * sec
			c.PostgresPerOp += r.CPU.PostgresPerOp * float64(r.OK)
			c.StealCores += r.CPU.StealCores * sec
			c.IdleCores += r.CPU.IdleCores * sec
			c.ProcessPerOp += r.CPU.ProcessPerOp * float64(r.OK)
			c.OtherPerOp += r.CPU.OtherPerOp * float64(r.OK)
		}
		t.OK += r.OK
		t.Failed += r.Failed
		t.Elapsed += r.Elapsed
		t.Rate += r.Rate
		for k, v := range r.Statuses {
			t.Statuses[k] += v
		}
		if t.FirstError == "" {
			t.FirstError = r.FirstError
		}
		if r.hist != nil {
			t.hist.Merge(r.hist)
		}
		t.Round++ // counts rounds until the loop below
	}
	for i := range out {
		t := &out[i]
		t.Rate /= float64(t.Round)
		t.Round = 0
		if t.Elapsed > 0 {
			t.Throughput = float64(t.OK) / t.Elapsed.Seconds()
		}
		t.Latency = t.hist.Summary()
		if c := cpus[i]; c != (CPU{}) && t.Elapsed > 0 && t.OK > 0 {
			sec, ok := t.Elapsed.Seconds(), float64(t.OK)
			t.CPU = &CPU{ProcessCores: c.ProcessCores / sec, PostgresCores: c.PostgresCores / sec, OtherCores: c.OtherCores / sec,
				StealCores: c.StealCores / sec, IdleCores: c.IdleCores / sec,
				ProcessPerOp: c.ProcessPerOp / ok, PostgresPerOp: c.PostgresPerOp / ok, OtherPerOp: c.OtherPerOp / ok}
		}
	}
	return out
}

func writesChecks(tot []Result, cfg WritesConfig) []Check {
	byMode := map[string]Result{}
	for _, r := range tot {
		byMode[r.Mode] = r
	}
	var checks []Check
	pg, hasPG := byMode["pgbench"]
	closed, hasClosed := byMode["closed"]
	if hasPG && hasClosed && pg.Throughput > 0 {
		checks = append(checks, NewCheck("API writes/s ÷ pgbench tps", closed.Throughput/pg.Throughput, ">=", cfg.MinRatio))
	}
	if open, ok := byMode["open"]; ok {
		checks = append(checks, NewCheck(fmt.Sprintf("API p99 ms at %.0f/s", open.Rate), float64(open.Latency.P99)/1e6, "<", float64(cfg.MaxP99)/1e6))
		checks = append(checks, NewCheck("API open-loop failed requests", float64(open.Failed), "<", 1))
	}
	if hasClosed {
		checks = append(checks, NewCheck("API closed-loop failed requests", float64(closed.Failed), "<", 1))
	}
	return checks
}
