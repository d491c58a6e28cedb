package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"hmp/internal/measure"
)

// Creates is a write workload of revenues and expenses: POST
// /v1/finance/revenues or /v1/finance/expenses as each organization's
// ADMIN (approved at once), spread uniformly over the tenants and their
// properties; amounts 1..10^7, cash or bank, occurred within the last
// MaxAge.
type Creates struct {
	Client  *Client
	Tenants []Tenant
	// ExpenseShare is the fraction of expenses (0..1).
	ExpenseShare float64
	// MaxAge bounds how far back occurredAt goes. Default 7 days.
	MaxAge time.Duration
	// Now is the clock of occurredAt. Default time.Now.
	Now func() time.Time
}

// Op returns the operation the runners call.
func (g *Creates) Op() Op {
	now, age := g.Now, g.MaxAge
	if now == nil {
		now = time.Now
	}
	if age <= 0 {
		age = 7 * 24 * time.Hour
	}
	return func(ctx context.Context, w *Worker) (int, error) {
		t := &g.Tenants[w.Rand.IntN(len(g.Tenants))]
		expense := w.Rand.Float64() < g.ExpenseShare
		path, field, values := "/v1/finance/revenues", "source", sources[:]
		if expense {
			path, field, values = "/v1/finance/expenses", "category", categories[:]
		}
		b := appendCreate(w.Buf[:0], w, t, field, values, now(), age)
		w.Buf = b
		return g.Client.Send(ctx, Request{Method: http.MethodPost, Path: path, Token: t.AdminToken, Body: b})
	}
}

// FreshnessConfig sets up the freshness scenario.
type FreshnessConfig struct {
	// Client drives the API under test.
	Client *Client
	// DatabaseURL is the API's database, when known: the report shows its
	// commit settings and, when it runs on this machine, its CPU.
	DatabaseURL string
	// Orgs organizations with Properties properties each take the write
	// load. Default 50 and 10.
	Orgs, Properties int
	// Rate is the open loop's creates per second. Default 1,000.
	Rate float64
	// ExpenseShare is the fraction of the creates that are expenses.
	// Default 0.4; negative: none.
	ExpenseShare float64
	// Warmup runs the load unmeasured first. Default 5 s; negative: none.
	Warmup time.Duration
	// Duration is the measured window. Default 20 s.
	Duration time.Duration
	// MaxInFlight bounds the open loop's concurrency. Default 512.
	MaxInFlight int
	// ProbeRate is how many probes per second the sampler starts, over
	// ProbeProperties properties of an organization of their own.
	// Defaults 10 and 20.
	ProbeRate       float64
	ProbeProperties int
	// PollInterval is how often a probe reads its daily report until the
	// write shows. Default 1 ms.
	PollInterval time.Duration
	// ProbeTimeout is how long a probe waits for its write to show before
	// it counts as failed. Default 5 s.
	ProbeTimeout time.Duration
	// MaxP99 is the freshness target, both ways. Default 100 ms.
	MaxP99 time.Duration
	// Phases: the machine settles before "warmup" only; Between runs
	// before "warmup" and "measure".
	Phases
}

// Validate reports every problem of a resolved c (see validate.go).
func (c FreshnessConfig) Validate() error {
	var errs []error
	positive(&errs, "duration", c.Duration)
	notNegative(&errs, "warmup", c.Warmup)
	positive(&errs, "rate", c.Rate)
	positive(&errs, "orgs", c.Orgs)
	positive(&errs, "properties", c.Properties)
	positive(&errs, "probe-rate", c.ProbeRate)
	positive(&errs, "probe-properties", c.ProbeProperties)
	if c.ExpenseShare > 1 {
		errs = append(errs, fmt.Errorf("--expense-share must be at most 1, got %g", c.ExpenseShare))
	}
	return errors.Join(errs...)
}

func (c FreshnessConfig) withDefaults() FreshnessConfig {
	if c.Orgs <= 0 {
		c.Orgs = 50
	}
	if c.Properties <= 0 {
		c.Properties = 10
	}
	if c.Rate <= 0 {
		c.Rate = 1000
	}
	switch {
	case c.ExpenseShare == 0:
		c.ExpenseShare = 0.4
	case c.ExpenseShare < 0:
		c.ExpenseShare = 0
	}
	switch {
	case c.Warmup == 0:
		c.Warmup = 5 * time.Second
	case c.Warmup < 0:
		c.Warmup = 0
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.ProbeRate <= 0 {
		c.ProbeRate = 10
	}
	if c.ProbeProperties <= 0 {
		c.ProbeProperties = 20
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Millisecond
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = 5 * time.Second
	}
	if c.MaxP99 <= 0 {
		c.MaxP99 = 100 * time.Millisecond
	}
	c.Phases = c.Phases.withDefaults()
	return c
}

// lagMetric is the projector's freshness histogram.
const lagMetric = "hmp_projector_event_lag_seconds"

// Freshness runs the freshness scenario: revenue and expense creates in
// an open loop at a fixed rate, and the time until each write shows in
// the reports, measured two ways over the same window. Server side: the
// projector's own histogram (event timestamp, taken just before the
// commit, to the batch that applied it having committed), read from GET
// /metrics before and after the window. End to end: a sampler writes a
// cash revenue to a property of its own and polls GET
// /v1/reports/daily-report, without a consistency token, until the day's
// cash received includes it; the sample is the time from the write's 201
// to the answer of the first read that shows it.
func Freshness(ctx context.Context, cfg FreshnessConfig) (*Report, error) {
	cfg = cfg.withDefaults()
	if cfg.Client == nil {
		return nil, errors.New("freshness: a client is required")
	}
	rep := &Report{Scenario: "freshness", StartedAt: time.Now(), Host: ThisHost(), Target: cfg.Client.BaseURL()}
	rep.Params = []Param{
		{"orgs", strconv.Itoa(cfg.Orgs)}, {"properties", strconv.Itoa(cfg.Properties)},
		{"rate", strconv.FormatFloat(cfg.Rate, 'f', -1, 64)}, {"expense-share", strconv.FormatFloat(cfg.ExpenseShare, 'f', -1, 64)},
		{"warmup", cfg.Warmup.String()}, {"duration", cfg.Duration.String()},
		{"probe-rate", strconv.FormatFloat(cfg.ProbeRate, 'f', -1, 64)}, {"probe-properties", strconv.Itoa(cfg.ProbeProperties)},
		{"poll-interval", cfg.PollInterval.String()}, {"probe-timeout", cfg.ProbeTimeout.String()},
	}
	var postmaster int
	if cfg.DatabaseURL != "" {
		settings, err := ServerSettings(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, err
		}
		rep.Server, rep.Durable = settings, Durable(settings)
		postmaster = PostmasterPID(ctx, cfg.DatabaseURL)
	}
	defer cfg.Between("")

	start := time.Now()
	run := RunID()
	tenants, err := Seed(ctx, cfg.Client, run, cfg.Orgs, cfg.Properties, 8)
	if err != nil {
		return nil, err
	}
	probeTenant, err := Seed(ctx, cfg.Client, run+"-probe", 1, cfg.ProbeProperties, 1)
	if err != nil {
		return nil, err
	}
	cfg.Logger.Info("loadtest_seeded", "orgs", cfg.Orgs+1, "properties", cfg.Orgs*cfg.Properties+cfg.ProbeProperties,
		"took", time.Since(start).String())
	op := (&Creates{Client: cfg.Client, Tenants: tenants, ExpenseShare: cfg.ExpenseShare}).Op()
	cfg.settleBefore(ctx, postmaster, "warmup")
	if cfg.Warmup > 0 {
		warm := OpenLoop{Rate: cfg.Rate, Duration: cfg.Warmup, MaxInFlight: cfg.MaxInFlight, Want: http.StatusCreated,
			Seed: cfg.Seed + 500, Postmaster: postmaster}
		if _, err := warm.Run(ctx, op); err != nil {
			return nil, err
		}
	}
	cfg.Between("measure")
	writes, server, e2e, err := measureFreshness(ctx, cfg, op, probeTenant[0], postmaster)
	if err != nil {
		return nil, err
	}
	rep.Results = []Result{writes, server, e2e}
	cfg.Logger.Info("loadtest_phase", "phase", "freshness", "writes_per_s", int(writes.Throughput),
		"server_p99", server.Latency.P99.String(), "e2e_p99", e2e.Latency.P99.String())
	freshnessChecks(rep, cfg, writes, server, e2e)
	return rep, nil
}

// measureFreshness runs the measured window: the write load with the
// probes beside it, and the projector's lag histogram before and after.
func measureFreshness(ctx context.Context, cfg FreshnessConfig, op Op, probeTenant Tenant, postmaster int) (writes, server, e2e Result, err error) {
	before, err := cfg.Client.Metrics(ctx)
	if err != nil {
		return writes, server, e2e, err
	}
	if _, ok := before.Buckets(lagMetric); !ok {
		return writes, server, e2e, fmt.Errorf("freshness: %s/metrics has no %s: is its projector running?", cfg.Client.BaseURL(), lagMetric)
	}
	sampler := newProber(cfg, probeTenant)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		sampler.run(sampleCtx)
	}()
	loop := OpenLoop{Rate: cfg.Rate, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight, Want: http.StatusCreated,
		Seed: cfg.Seed, Postmaster: postmaster}
	writes, err = loop.Run(ctx, op)
	stopSampling()
	<-sampled
	if err != nil {
		return writes, server, e2e, err
	}
	writes.Name, writes.Round = "api open-loop creates", 1
	after, err := drainMetrics(ctx, cfg.Client)
	if err != nil {
		return writes, server, e2e, err
	}
	if server, err = serverFreshness(before, after); err != nil {
		return writes, server, e2e, err
	}
	e2e = sampler.result()
	for _, r := range []*Result{&server, &e2e} {
		r.Elapsed = writes.Elapsed
		r.Throughput = float64(r.OK) / r.Elapsed.Seconds()
	}
	return writes, server, e2e, nil
}

// freshnessChecks adds the run's checks and notes to rep.
func freshnessChecks(rep *Report, cfg FreshnessConfig, writes, server, e2e Result) {
	maxMs := float64(cfg.MaxP99) / 1e6
	rep.Checks = []Check{
		NewCheck("freshness p99 ms, server side (bucket bound)", float64(server.Latency.P99)/1e6, "<=", maxMs),
		NewCheck("freshness p99 ms, end to end", float64(e2e.Latency.P99)/1e6, "<", maxMs),
		NewCheck("probes not shown within "+cfg.ProbeTimeout.String(), float64(e2e.Failed), "<", 1),
		NewCheck("freshness samples, end to end", float64(e2e.OK), ">=", 1),
		NewCheck("API open-loop failed requests", float64(writes.Failed), "<", 1),
	}
	if !rep.Durable && rep.Server != nil {
		rep.Notes = append(rep.Notes, "the server does not make commits durable: these figures are not the durable-write ones")
	}
	rep.Notes = append(rep.Notes,
		"server side: quantiles are the upper bounds of the histogram buckets holding them (the true value is at most that); the mean is exact",
		fmt.Sprintf("end to end: from the probe write's 201 to the answer of the first daily-report read showing it, reads every %s; the probes add %.0f writes/s to the load", cfg.PollInterval, cfg.ProbeRate))
}

// drainMetrics waits, at most 5 s, for the projector to apply what the
// window wrote (its applied count stops moving), then returns a reading.
func drainMetrics(ctx context.Context, c *Client) (measure.Metrics, error) {
	const applied = `hmp_projector_events_total{result="applied"}`
	deadline := time.Now().Add(5 * time.Second)
	prev, err := c.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		cur, err := c.Metrics(ctx)
		if err != nil {
			return nil, err
		}
		if cur[applied] == prev[applied] {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

func serverFreshness(before, after measure.Metrics) (Result, error) {
	b, _ := before.Buckets(lagMetric)
	a, ok := after.Buckets(lagMetric)
	if !ok {
		return Result{}, fmt.Errorf("freshness: the second reading has no %s", lagMetric)
	}
	d, err := a.Sub(b)
	if err != nil {
		return Result{}, fmt.Errorf("freshness: %w", err)
	}
	r := Result{Name: "freshness server side", Mode: "metric", Round: 1, OK: uint64(d.Count), Latency: bucketLatency(d)}
	r.Figures = append(r.Figures, Figure{Name: "mean", Value: round2(float64(r.Latency.Mean) / 1e6), Unit: "ms"})
	// The cumulative counts, up to the first bucket holding them all.
	for i, bound := range d.Bounds {
		if math.IsInf(bound, 1) {
			break
		}
		r.Figures = append(r.Figures, Figure{Name: "≤" + strconv.FormatFloat(bound*1000, 'f', -1, 64) + "ms", Value: d.Cumulative[i]})
		if d.Cumulative[i] >= d.Count {
			break
		}
	}
	return r, nil
}

// prober measures freshness end to end: each probe writes a cash revenue
// to one of its properties and reads that property's daily report until
// the day's cash received equals everything the probes wrote there.
// Probes of one property take turns, so that sum is known exactly.
type prober struct {
	cfg    FreshnessConfig
	tenant Tenant
	props  []*probeProperty

	mu       sync.Mutex
	hist     Histogram
	ok, fail uint64
	skipped  uint64
	reads    uint64
	firstErr string
	wg       sync.WaitGroup
}

type probeProperty struct {
	mu       sync.Mutex
	id       string
	expected map[string]int64 // cash received per business date
	n        int64
}

func newProber(cfg FreshnessConfig, t Tenant) *prober {
	p := &prober{cfg: cfg, tenant: t}
	for _, id := range t.Properties {
		p.props = append(p.props, &probeProperty{id: id, expected: map[string]int64{}})
	}
	return p
}

// run starts a probe every 1/ProbeRate, round robin over the properties,
// until ctx is done, then waits for the probes in flight. A property
// still busy with its previous probe is skipped.
func (p *prober) run(ctx context.Context) {
	t := time.NewTicker(time.Duration(float64(time.Second) / p.cfg.ProbeRate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			p.wg.Wait()
			return
		case <-t.C:
		}
		prop := p.props[i%len(p.props)]
		if !prop.mu.TryLock() {
			p.mu.Lock()
			p.skipped++
			p.mu.Unlock()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer prop.mu.Unlock()
			// A probe runs to its end even when sampling stops: it was
			// started inside the window.
			lat, reads, err := p.probe(context.WithoutCancel(ctx), prop)
			p.record(lat, reads, err)
		}()
	}
}

func (p *prober) record(lat time.Duration, reads uint64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads += reads
	if err != nil {
		p.fail++
		if p.firstErr == "" {
			p.firstErr = err.Error()
		}
		if lat > 0 {
			p.hist.Record(lat) // a probe that never showed counts with its wait
		}
		return
	}
	p.ok++
	p.hist.Record(lat)
}

// probe writes one revenue and waits for it to show; it returns the time
// from the 201 to the first read showing it, and the reads it took.
func (p *prober) probe(ctx context.Context, prop *probeProperty) (time.Duration, uint64, error) {
	prop.n++
	amount := 100 + prop.n // distinct amounts: a read showing another sum is a mismatch
	var created struct {
		BusinessDate string `json:"businessDate"`
	}
	body := map[string]any{"propertyId": prop.id, "source": "room", "amountCents": amount, "paymentMode": "cash",
		"occurredAt": time.Now().UTC().Format(time.RFC3339)}
	if err := p.cfg.Client.call(ctx, http.MethodPost, "/v1/finance/revenues", p.tenant.AdminToken, body, http.StatusCreated, &created); err != nil {
		return 0, 0, fmt.Errorf("probe write: %w", err)
	}
	written := time.Now()
	prop.expected[created.BusinessDate] += amount
	want := prop.expected[created.BusinessDate]
	path := "/v1/reports/daily-report?" + url.Values{"propertyId": {prop.id}, "date": {created.BusinessDate}}.Encode()
	var reads uint64
	for {
		sent := time.Now()
		var day struct {
			CashReceivedCents int64 `json:"cashReceivedCents"`
		}
		err := p.cfg.Client.call(ctx, http.MethodGet, path, p.tenant.AdminToken, nil, http.StatusOK, &day)
		reads++
		seen := time.Now()
		switch {
		case err != nil:
			return seen.Sub(written), reads, fmt.Errorf("probe read: %w", err)
		case day.CashReceivedCents == want:
			return seen.Sub(written), reads, nil
		case day.CashReceivedCents > want:
			return seen.Sub(written), reads, fmt.Errorf("daily report of %s %s shows %d cash received, more than the %d written", prop.id, created.BusinessDate, day.CashReceivedCents, want)
		case seen.Sub(written) >= p.cfg.ProbeTimeout:
			return seen.Sub(written), reads, fmt.Errorf("write not shown after %s", p.cfg.ProbeTimeout)
		}
		time.Sleep(time.Until(sent.Add(p.cfg.PollInterval)))
	}
}

func (p *prober) result() Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := Result{Name: "freshness end to end", Mode: "probe", Round: 1, Clients: len(p.props), Rate: p.cfg.ProbeRate,
		OK: p.ok, Failed: p.fail, Latency: p.hist.Summary(), FirstError: p.firstErr}
	h := p.hist
	r.hist = &h
	if n := p.ok + p.fail; n > 0 {
		r.Figures = append(r.Figures, Figure{Name: "reads per probe", Value: round2(float64(p.reads) / float64(n))})
	}
	r.Figures = append(r.Figures, Figure{Name: "probes skipped (property busy)", Value: float64(p.skipped)})
	return r
}
