package loadtest

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"hmp/internal/measure"
)

// MixedResult is one profile's run of the mixed load. Its JSON form is the
// stable schema of `hmp loadtest mixed --json` (every latency in
// milliseconds under a name ending in Ms).
type MixedResult struct {
	Profile  string  `json:"profile"`
	Scenario string  `json:"scenario"`
	Mode     string  `json:"mode"` // open or closed
	Rate     float64 `json:"rate,omitempty"`
	Clients  int     `json:"clients,omitempty"`
	Orgs     int     `json:"orgs"`
	// DurationMs is the measured window.
	DurationMs float64 `json:"durationMs"`
	ReadShare  float64 `json:"readShare"`
	// Ops are the operations in name order; Reads, Writes and All merge
	// them.
	Ops    []OpStats `json:"ops"`
	Reads  OpStats   `json:"reads"`
	Writes OpStats   `json:"writes"`
	All    OpStats   `json:"all"`
	// Freshness is write to visible in a daily report, end to end.
	Freshness *OpStats `json:"freshness,omitempty"`
	// DrainMs is how long after the load stopped a write made at that
	// moment took to show in the reports: the pipeline's backlog drained.
	DrainMs float64 `json:"drainMs"`
	CPU     *CPU    `json:"cpu,omitempty"`
	// RSSBytes and PeakRSSBytes are this process's (the generator and an
	// in-process API).
	RSSBytes     int64 `json:"rssBytes"`
	PeakRSSBytes int64 `json:"peakRssBytes"`
	// CacheHitRate is hits / (hits + misses) of hmp_cache_hits_total and
	// hmp_cache_misses_total over the window; absent without a cache.
	CacheHitRate *float64 `json:"cacheHitRate,omitempty"`
	// Timeline is per second of the run (warm-up included).
	Timeline []TimePoint `json:"timeline"`
	// Ramp is the ramp's steps and its knee (ramp only).
	Ramp *RampResult `json:"ramp,omitempty"`
	// ColdRedirects counts requests (warm-up included) whose organization
	// was not logged in yet: they went to the most popular one while it
	// logged in aside.
	ColdRedirects uint64 `json:"coldRedirects"`
}

// OpStats are one operation's figures over the measured window.
type OpStats struct {
	Name       string            `json:"name"`
	Write      bool              `json:"write"`
	OK         uint64            `json:"ok"`
	Failed     uint64            `json:"failed"`
	Throughput float64           `json:"throughput"` // successful per second
	Statuses   map[string]uint64 `json:"statuses"`   // answers by status ("0": none)
	FirstError string            `json:"firstError,omitempty"`
	P50Ms      float64           `json:"p50Ms"`
	P95Ms      float64           `json:"p95Ms"`
	P99Ms      float64           `json:"p99Ms"`
	MaxMs      float64           `json:"maxMs"`
	MeanMs     float64           `json:"meanMs"`
	// Histogram is the latency distribution: counts of requests at most
	// LeMs (log-spaced upper bounds), for charts.
	Histogram []Bucket `json:"histogram,omitempty"`
}

// Bucket is one bar of a latency histogram.
type Bucket struct {
	LeMs  float64 `json:"leMs"`
	Count uint64  `json:"count"`
}

// TimePoint is one second of the run.
type TimePoint struct {
	AtS        float64 `json:"atS"`
	Measured   bool    `json:"measured"`
	TargetRate float64 `json:"targetRate,omitempty"`
	ReadOK     uint64  `json:"readOk"`
	WriteOK    uint64  `json:"writeOk"`
	Errors     uint64  `json:"errors"`
	ReadP50Ms  float64 `json:"readP50Ms"`
	ReadP99Ms  float64 `json:"readP99Ms"`
	WriteP50Ms float64 `json:"writeP50Ms"`
	WriteP99Ms float64 `json:"writeP99Ms"`
}

// RampResult is the ramp's steps and where it broke.
type RampResult struct {
	BudgetMs float64    `json:"budgetMs"`
	Steps    []RampStep `json:"steps"`
	// Knee is the last step that held the budget (nil: not even the
	// first); Broke says why the ramp stopped ("" when it ran out of time).
	Knee  *RampStep `json:"knee,omitempty"`
	Broke string    `json:"broke,omitempty"`
}

// RampStep is one rate of the ramp.
type RampStep struct {
	Rate       float64 `json:"rate"`
	Throughput float64 `json:"throughput"`
	P99Ms      float64 `json:"p99Ms"`
	ErrorShare float64 `json:"errorShare"`
	Pass       bool    `json:"pass"`
}

func statsOf(name string, write bool, t *opTally, window time.Duration) OpStats {
	s := OpStats{Name: name, Write: write, OK: t.ok, Failed: t.fail, Statuses: map[string]uint64{}, FirstError: t.firstErr}
	for k, v := range t.statuses {
		s.Statuses[strconv.Itoa(k)] += v
	}
	if window > 0 {
		s.Throughput = round2(float64(t.ok) / window.Seconds())
	}
	h := &t.hist
	s.P50Ms, s.P95Ms, s.P99Ms = ms(h.Quantile(0.5)), ms(h.Quantile(0.95)), ms(h.Quantile(0.99))
	s.MaxMs, s.MeanMs = ms(h.Max()), ms(h.Mean())
	s.Histogram = coarse(h)
	return s
}

// coarse folds h into about four buckets per power of two... of ten:
// bounds 0.1 ms x 10^(k/4).
func coarse(h *Histogram) []Bucket {
	if h.Count() == 0 {
		return nil
	}
	var out []Bucket
	prev := uint64(0)
	for k := 0; k < 40; k++ {
		le := 0.1 * math.Pow(10, float64(k)/4)
		n := h.CountAtMost(time.Duration(le * 1e6))
		out = append(out, Bucket{LeMs: round2(le), Count: n - prev})
		prev = n
		if n >= h.Count() {
			break
		}
	}
	return out
}

// Mixed runs the mixed load once and returns its figures.
func Mixed(ctx context.Context, cfg MixedConfig) (*MixedResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Client == nil || cfg.Tenants == nil || cfg.Tenants.Len() == 0 {
		return nil, errors.New("a client and at least one tenant are required")
	}
	m := &mixed{cfg: cfg, backDay: cfg.Scenario == ScenarioBackDated, hot: cfg.Scenario == ScenarioHotTenant}
	start := time.Now()
	m.rec = newRecorder(start)
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var cacheBefore measure.Metrics
	var cpuFrom cpuSample
	var probe *prober
	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	var probeDone sync.WaitGroup
	begin := func() {
		m.rec.measured.Store(true)
		cpuFrom = sampleCPU(cfg.Postmaster)
		cacheBefore, _ = cfg.Client.Metrics(ctx)
		if cfg.ProbeRate > 0 && cfg.ProbeTenant != nil {
			probe = newProber(FreshnessConfig{Client: cfg.Client, ProbeRate: cfg.ProbeRate, PollInterval: 5 * time.Millisecond, ProbeTimeout: 10 * time.Second}.withDefaults(), *cfg.ProbeTenant)
			probeDone.Go(func() { probe.run(probeCtx) })
		}
	}
	if cfg.Warmup <= 0 {
		begin()
	} else {
		time.AfterFunc(cfg.Warmup, begin) // the first measured request is due then
	}

	var ramp *RampResult
	if cfg.Rate > 0 {
		ramp = m.openLoop(ctx, start, measureFrom, end)
	} else {
		m.closedLoop(ctx, end)
	}
	measuredEnd := time.Now()
	if !m.rec.measured.Load() {
		begin()
	}
	m.rec.measured.Store(false)
	cpuTo := sampleCPU(cfg.Postmaster)
	stopProbe()
	probeDone.Wait()

	res := &MixedResult{Scenario: cfg.Scenario, Orgs: cfg.Tenants.Len(), ReadShare: cfg.ReadShare, Ramp: ramp}
	if cfg.Rate > 0 {
		res.Mode, res.Rate = "open", cfg.Rate
	} else {
		res.Mode, res.Clients = "closed", cfg.Clients
	}
	// The window is the schedule's (the requests due in it), however long
	// its last answers took; a ramp that broke early ends sooner.
	window := min(measuredEnd.Sub(measureFrom), cfg.Duration)
	res.DurationMs = ms(window)
	ok := m.tally(res, window)
	res.CPU = cpuBetween(cpuFrom, cpuTo, ok)
	res.RSSBytes, res.PeakRSSBytes = processRSS()
	if after, err := cfg.Client.Metrics(ctx); err == nil && cacheBefore != nil {
		res.CacheHitRate = cacheHitRate(cacheBefore, after)
	}
	if probe != nil {
		m.freshness(ctx, res, probe)
	}
	res.Timeline = m.rec.points(start, m, ramp)
	res.ColdRedirects = m.cold.Load()
	return res, nil
}

// tally puts every operation's figures in res, and those of the reads,
// the writes and all; it returns the answers that succeeded.
func (m *mixed) tally(res *MixedResult, window time.Duration) uint64 {
	var reads, writes, all opTally
	names := make([]string, 0, len(m.rec.ops))
	for n := range m.rec.ops {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		t := m.rec.ops[n]
		res.Ops = append(res.Ops, statsOf(n, IsWrite(n), t, window))
		into := &reads
		if IsWrite(n) {
			into = &writes
		}
		for _, dst := range []*opTally{into, &all} {
			dst.add(t)
		}
	}
	res.Reads, res.Writes, res.All = statsOf("reads", false, &reads, window), statsOf("writes", true, &writes, window), statsOf("all", false, &all, window)
	return all.ok
}

// add merges t into dst.
func (dst *opTally) add(t *opTally) {
	dst.hist.Merge(&t.hist)
	dst.ok += t.ok
	dst.fail += t.fail
	if dst.statuses == nil {
		dst.statuses = map[int]uint64{}
	}
	for k, v := range t.statuses {
		dst.statuses[k] += v
	}
	if dst.firstErr == "" {
		dst.firstErr = t.firstErr
	}
}

// cacheHitRate is the report cache's hit rate between two scrapes (nil
// without lookups).
func cacheHitRate(before, after measure.Metrics) *float64 {
	hits, misses := sumSeries(after, "hmp_cache_hits_total")-sumSeries(before, "hmp_cache_hits_total"),
		sumSeries(after, "hmp_cache_misses_total")-sumSeries(before, "hmp_cache_misses_total")
	if hits+misses == 0 {
		return nil
	}
	r := round2(hits / (hits + misses))
	return &r
}

// freshness puts the probes' figures in res, and the drain: how long a
// write made now, behind the whole backlog, takes to show.
func (m *mixed) freshness(ctx context.Context, res *MixedResult, probe *prober) {
	cfg := m.cfg
	r := probe.result()
	s := OpStats{Name: "freshness", OK: r.OK, Failed: r.Failed, FirstError: r.FirstError,
		P50Ms: ms(r.Latency.P50), P99Ms: ms(r.Latency.P99), MaxMs: ms(r.Latency.Max), MeanMs: ms(r.Latency.Mean)}
	if r.hist != nil {
		s.P95Ms = ms(r.hist.Quantile(0.95))
	}
	res.Freshness = &s
	p2 := newProber(FreshnessConfig{Client: cfg.Client, PollInterval: 5 * time.Millisecond, ProbeTimeout: cfg.DrainTimeout}.withDefaults(), *cfg.ProbeTenant)
	p2.props = probe.props
	if lat, _, err := p2.probe(ctx, p2.props[0]); err == nil {
		res.DrainMs = ms(lat)
	} else {
		res.DrainMs = -1
		cfg.Logger.Warn("mixed_drain_probe_failed", "error", err.Error())
	}
}

// sumSeries sums the series of a metric name whose labels contain every
// one of match (e.g. `tier="memory"`; none or an empty one matches all).
func sumSeries(m measure.Metrics, name string, match ...string) float64 {
	v, _ := m.Sum(name, match...)
	return v
}

func (r *recorder) points(start time.Time, m *mixed, ramp *RampResult) []TimePoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TimePoint, 0, len(r.timeline))
	for i, s := range r.timeline {
		p := TimePoint{AtS: float64(i) * timelineResolution.Seconds(), Measured: s.measuredSlot,
			ReadOK: s.ok[0], WriteOK: s.ok[1], Errors: s.fail[0] + s.fail[1],
			ReadP50Ms: ms(s.read.Quantile(0.5)), ReadP99Ms: ms(s.read.Quantile(0.99)),
			WriteP50Ms: ms(s.write.Quantile(0.5)), WriteP99Ms: ms(s.write.Quantile(0.99))}
		if m.cfg.Rate > 0 {
			d := time.Duration(i) * timelineResolution
			p.TargetRate = m.rateAt(d, m.stepRate(d))
		}
		out = append(out, p)
	}
	return out
}

// stepRate is the ramp's rate at offset d (the warm-up runs the first
// step's rate).
func (m *mixed) stepRate(d time.Duration) float64 {
	k := 0
	if d > m.cfg.Warmup {
		k = int((d - m.cfg.Warmup) / m.cfg.RampStep)
	}
	return m.cfg.Rate * math.Pow(m.cfg.RampFactor, float64(k))
}

type job struct{ due time.Time }

// openLoop sends requests on schedule, whatever the answers' latency, for
// the run's length (ramp: until a step breaks the budget); each
// request's latency counts from when it was due. It returns the ramp's
// result (ramp only).
func (m *mixed) openLoop(ctx context.Context, start, measureFrom, end time.Time) *RampResult {
	cfg := m.cfg
	jobs := make(chan job, cfg.MaxInFlight)
	var wg sync.WaitGroup
	var steps *rampTally
	if cfg.Scenario == ScenarioRamp {
		steps = &rampTally{}
	}
	for i := range cfg.MaxInFlight {
		wg.Go(func() { m.openWorker(ctx, i, jobs, steps, measureFrom) })
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ramp *RampResult
	if steps != nil {
		ramp = &RampResult{BudgetMs: ms(cfg.RampBudget)}
	}
	next := start
	checked := 0
schedule:
	for next.Before(end) {
		d := next.Sub(start)
		rate := m.rateAt(d, m.stepRate(d))
		if steps != nil && next.After(measureFrom) {
			// Judge step k once step k+1 has run too, so that its slow
			// requests have answered (or count as what they are).
			k := int(next.Sub(measureFrom) / cfg.RampStep)
			for checked < k-1 {
				if !steps.judge(ramp, checked, cfg) {
					break schedule
				}
				checked++
			}
		}
		if wait := time.Until(next); wait > time.Millisecond {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break schedule
			case <-timer.C:
			}
		}
		select {
		case jobs <- job{due: next}:
		case <-ctx.Done():
			break schedule
		}
		next = next.Add(time.Duration(float64(time.Second) / rate))
	}
	close(jobs)
	wg.Wait()
	if steps != nil {
		// Ran out of time: judge the steps not judged yet that ran whole.
		last := next
		if last.After(end) {
			last = end
		}
		steps.judgeRest(ramp, cfg, last.Sub(measureFrom))
	}
	return ramp
}

// openWorker sends the jobs it takes, each timed from when it was due,
// and counts them in the ramp's steps when there is a ramp.
func (m *mixed) openWorker(ctx context.Context, i int, jobs <-chan job, steps *rampTally, measureFrom time.Time) {
	cfg := m.cfg
	w := NewWorker(i, cfg.Seed)
	z := rand.NewZipf(w.Rand, cfg.ZipfS, 1, uint64(cfg.Tenants.Len()-1))
	for j := range jobs {
		sent := time.Now()
		from := j.due
		if sent.Before(from) { // sent within the millisecond before it was due
			from = sent
		}
		name, status, want, err := m.op(ctx, w, z)
		if ctx.Err() != nil {
			continue
		}
		lat := time.Since(from)
		m.rec.record(name, status, want, err, j.due, lat)
		if steps != nil && !j.due.Before(measureFrom) {
			steps.add(int(j.due.Sub(measureFrom)/cfg.RampStep), err == nil && status == want, lat)
		}
	}
}

// judgeRest judges the steps not judged yet that ran whole within ran
// (the measured time scheduled).
func (t *rampTally) judgeRest(ramp *RampResult, cfg MixedConfig, ran time.Duration) {
	whole := int(ran / cfg.RampStep)
	for k := len(ramp.Steps); ramp.Broke == "" && k < min(whole, t.len()); k++ {
		if !t.judge(ramp, k, cfg) {
			break
		}
	}
	if ramp.Broke == "" && len(ramp.Steps) > 0 && !ramp.Steps[len(ramp.Steps)-1].Pass {
		ramp.Broke = "last step over budget"
	}
}

func (m *mixed) closedLoop(ctx context.Context, end time.Time) {
	var wg sync.WaitGroup
	for i := range m.cfg.Clients {
		w := NewWorker(i, m.cfg.Seed)
		z := rand.NewZipf(w.Rand, m.cfg.ZipfS, 1, uint64(m.cfg.Tenants.Len()-1))
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				name, status, want, err := m.op(ctx, w, z)
				if ctx.Err() == nil {
					m.rec.record(name, status, want, err, t0, time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
}

// rampTally keeps each ramp step's requests.
type rampTally struct {
	mu    sync.Mutex
	steps []struct {
		hist     Histogram
		ok, fail uint64
	}
}

func (r *rampTally) add(k int, ok bool, lat time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.steps) <= k {
		r.steps = append(r.steps, struct {
			hist     Histogram
			ok, fail uint64
		}{})
	}
	s := &r.steps[k]
	s.hist.Record(lat)
	if ok {
		s.ok++
	} else {
		s.fail++
	}
}

func (r *rampTally) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.steps)
}

// judge appends step k to res and reports whether it held the budget.
func (r *rampTally) judge(res *RampResult, k int, cfg MixedConfig) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k >= len(r.steps) {
		return true
	}
	s := &r.steps[k]
	n := s.ok + s.fail
	st := RampStep{Rate: round2(cfg.Rate * math.Pow(cfg.RampFactor, float64(k))), Throughput: round2(float64(s.ok) / cfg.RampStep.Seconds()),
		P99Ms: ms(s.hist.Quantile(0.99))}
	if n > 0 {
		st.ErrorShare = float64(s.fail) / float64(n)
	}
	st.Pass = s.hist.Quantile(0.99) <= cfg.RampBudget && st.ErrorShare <= rampMaxErrorShare
	res.Steps = append(res.Steps, st)
	if st.Pass {
		knee := st
		res.Knee = &knee
		return true
	}
	if st.ErrorShare > rampMaxErrorShare {
		res.Broke = "errors over 0.1 %"
	} else {
		res.Broke = "p99 over budget"
	}
	return false
}

// CountAtMost returns how many recorded latencies are at most d (to the
// histogram's precision).
func (h *Histogram) CountAtMost(d time.Duration) uint64 {
	var n uint64
	last := bucketOf(uint64(max(d, 0)))
	for i, c := range h.counts {
		if i > last {
			break
		}
		n += c
	}
	return n
}
