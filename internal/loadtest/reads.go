package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"hmp/internal/measure"
)

// ReadsConfig sets up the reads scenario on one server: daily-report
// reads of Zipf-chosen (tenant, property, date) by a closed loop, beside a
// trickle of revenue creates whose projection invalidates the cache.
// Zero values mean the defaults.
type ReadsConfig struct {
	Client  *Client
	Tenants []Tenant
	// Name labels the result, e.g. "cached". Default "reads".
	Name string
	// Days is how far back the dates read go: the last Days days, today
	// included. Default 30.
	Days int
	// ZipfS is the skew (> 1) over the reads, ranked most recent date
	// first, then tenant, then property: a few recent days of a few
	// tenants take most reads, as on a real dashboard. Default 1.1.
	ZipfS float64
	// Clients is the closed loop's concurrency. Default 64.
	Clients int
	// Duration is the measured window (default 10 s); Warmup runs the
	// load unmeasured first (default none).
	Duration, Warmup time.Duration
	// WriteRate is the trickle of revenue creates per second run beside
	// the reads (their days go stale in the cache). Default 5; negative:
	// none.
	WriteRate float64
	// Seed makes the workload repeatable.
	Seed uint64
	// Now is the clock of the dates read. Default time.Now.
	Now func() time.Time
}

// Validate reports every problem of a resolved c (see validate.go).
func (c ReadsConfig) Validate() error {
	var errs []error
	positive(&errs, "days", c.Days)
	positive(&errs, "clients", c.Clients)
	positive(&errs, "duration", c.Duration)
	if c.ZipfS <= 1 {
		errs = append(errs, fmt.Errorf("--zipf must be above 1, got %g", c.ZipfS))
	}
	return errors.Join(errs...)
}

func (c ReadsConfig) withDefaults() ReadsConfig {
	if c.Name == "" {
		c.Name = "reads"
	}
	if c.Days == 0 {
		c.Days = 30
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.1
	}
	if c.Clients == 0 {
		c.Clients = 64
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.WriteRate == 0 {
		c.WriteRate = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ReadsResult is one server's run of the reads scenario.
type ReadsResult struct {
	Name string `json:"name"`
	// Reads is the closed loop of daily-report reads.
	Reads Result `json:"reads"`
	// Writes counts the trickle's creates answered 201, WriteErrors the
	// others.
	Writes      uint64 `json:"writes"`
	WriteErrors uint64 `json:"writeErrors"`
	// Cache holds the server's cache figures over the window; nil when it
	// has no cache (HMP_CACHE_ENTRIES=-1).
	Cache *CacheFigures `json:"cache,omitempty"`
}

// CacheFigures are a server's cache metrics over a window.
type CacheFigures struct {
	// HitRate is hits over lookups of the in-process tier, overall and by
	// TTL class (nil when there were no such lookups).
	HitRate           *float64 `json:"hitRate"`
	HitRateActive     *float64 `json:"hitRateActive"`
	HitRateHistorical *float64 `json:"hitRateHistorical"`
	Lookups           float64  `json:"lookups"`
	// Invalidations counts the changes applied; InvalidationLag is their
	// delay from the projector's commit to their application on the
	// server, as bucket upper bounds.
	Invalidations   float64 `json:"invalidations"`
	InvalidationLag Latency `json:"invalidationLag"`
}

// readPaths lists the daily-report reads, most popular first: recent
// dates first, then tenants, then properties.
func readPaths(tenants []Tenant, today time.Time, days int) []Request {
	var out []Request
	for d := range days {
		date := today.AddDate(0, 0, -d).Format(time.DateOnly)
		for _, t := range tenants {
			for _, p := range t.Properties {
				out = append(out, Request{Method: http.MethodGet, Path: "/v1/reports/daily-report?propertyId=" + p + "&date=" + date, Token: t.AdminToken})
			}
		}
	}
	return out
}

// Reads runs the reads scenario against cfg.Client's server.
func Reads(ctx context.Context, cfg ReadsConfig) (*ReadsResult, error) {
	cfg = cfg.withDefaults()
	if cfg.Client == nil || len(cfg.Tenants) == 0 {
		return nil, errors.New("reads: a client and at least one tenant")
	}
	if cfg.ZipfS <= 1 {
		return nil, fmt.Errorf("reads: zipf skew must be above 1, got %v", cfg.ZipfS)
	}
	paths := readPaths(cfg.Tenants, cfg.Now().UTC(), cfg.Days)
	// One Zipf source per worker: rand.Zipf is not safe for concurrent use.
	var zmu sync.Mutex
	zipfs := map[*Worker]*rand.Zipf{}
	op := func(ctx context.Context, w *Worker) (int, error) {
		zmu.Lock()
		z, ok := zipfs[w]
		if !ok {
			z = rand.NewZipf(w.Rand, cfg.ZipfS, 1, uint64(len(paths)-1))
			zipfs[w] = z
		}
		zmu.Unlock()
		return cfg.Client.Send(ctx, paths[z.Uint64()])
	}

	res := &ReadsResult{Name: cfg.Name}
	// The trickle runs through warm-up and window alike.
	wctx, stopWrites := context.WithCancel(ctx)
	defer stopWrites()
	var writes sync.WaitGroup
	if cfg.WriteRate > 0 {
		writes.Add(1)
		go func() {
			defer writes.Done()
			g := &RevenueCreates{Client: cfg.Client, Tenants: cfg.Tenants, Now: cfg.Now}
			// Long enough for the reads; canceled when they end.
			r, _ := OpenLoop{Rate: cfg.WriteRate, Duration: cfg.Warmup + cfg.Duration + time.Minute, MaxInFlight: 8, Want: http.StatusCreated, Seed: cfg.Seed + 1}.Run(wctx, g.Op())
			res.Writes, res.WriteErrors = r.OK, r.Failed
		}()
	}
	if cfg.Warmup > 0 {
		if _, err := (ClosedLoop{Clients: cfg.Clients, Duration: cfg.Warmup, Want: http.StatusOK, Seed: cfg.Seed}).Run(ctx, op); err != nil {
			return nil, fmt.Errorf("reads warm-up: %w", err)
		}
	}
	before, err := cfg.Client.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	r, err := ClosedLoop{Clients: cfg.Clients, Duration: cfg.Duration, Want: http.StatusOK, Seed: cfg.Seed}.Run(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("reads: %w", err)
	}
	after, err := cfg.Client.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	stopWrites()
	writes.Wait()
	r.Name = cfg.Name + " daily-report closed-loop"
	res.Reads = r
	res.Cache = cacheFigures(before, after)
	return res, nil
}

// cacheFigures reads the cache's hits, misses and invalidation lag of the
// in-process tier between two scrapes; nil without cache metrics.
func cacheFigures(before, after measure.Metrics) *CacheFigures {
	if _, ok := after.Buckets("hmp_cache_invalidation_lag_seconds"); !ok {
		return nil
	}
	count := func(name, class string) float64 {
		return sumSeries(after, name, `tier="memory"`, class) - sumSeries(before, name, `tier="memory"`, class)
	}
	rate := func(class string) (*float64, float64) {
		h, m := count("hmp_cache_hits_total", class), count("hmp_cache_misses_total", class)
		if h+m == 0 {
			return nil, 0
		}
		v := h / (h + m)
		return &v, h + m
	}
	f := &CacheFigures{}
	f.HitRate, f.Lookups = rate("")
	f.HitRateActive, _ = rate(`class="active"`)
	f.HitRateHistorical, _ = rate(`class="historical"`)
	f.Invalidations = sumSeries(after, "hmp_cache_invalidations_total") - sumSeries(before, "hmp_cache_invalidations_total")
	a, _ := after.Buckets("hmp_cache_invalidation_lag_seconds")
	if b, ok := before.Buckets("hmp_cache_invalidation_lag_seconds"); ok {
		if d, err := a.Sub(b); err == nil {
			a = d
		}
	}
	f.InvalidationLag = bucketLatency(a)
	return f
}

// ReadsReport sets the reads scenario's runs side by side: the first is
// the cached server's, the second the uncached one's.
type ReadsReport struct {
	Host    Host          `json:"host"`
	Params  []Param       `json:"params"`
	Results []ReadsResult `json:"results"`
	// Ratio is the first run's reads per second over the second's.
	Ratio float64 `json:"ratio"`
}

// NewReadsReport sets results side by side.
func NewReadsReport(params []Param, results ...ReadsResult) *ReadsReport {
	r := &ReadsReport{Host: ThisHost(), Params: params, Results: results}
	if len(results) == 2 {
		r.Ratio = ratio(results[0].Reads.Throughput, results[1].Reads.Throughput)
	}
	return r
}

// Print writes the report as a table.
func (r *ReadsReport) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "reads: daily-report reads, Zipf over tenants, properties and dates (%s)\n", paramString(r.Params))
	fmt.Fprintf(&b, "%-10s %10s %8s %9s %9s %7s %8s %8s %10s %7s %12s\n",
		"run", "reads/s", "failed", "p50", "p99", "hit", "active", "hist.", "inval.", "writes", "inval-lag99")
	for _, x := range r.Results {
		hit, act, hist, inv, lag := "-", "-", "-", "-", "-"
		if c := x.Cache; c != nil {
			hit, act, hist = pct(c.HitRate), pct(c.HitRateActive), pct(c.HitRateHistorical)
			inv = fmt.Sprintf("%.0f", c.Invalidations)
			lag = fmtDur(c.InvalidationLag.P99)
			if c.InvalidationLag.Count == 0 {
				lag = "none"
			}
		}
		fmt.Fprintf(&b, "%-10s %10.0f %8d %9s %9s %7s %8s %8s %10s %7d %12s\n", x.Name, x.Reads.Throughput, x.Reads.Failed,
			fmtDur(x.Reads.Latency.P50), fmtDur(x.Reads.Latency.P99), hit, act, hist, inv, x.Writes, lag)
	}
	if len(r.Results) == 2 {
		fmt.Fprintf(&b, "throughput %s/%s: %.1fx\n", r.Results[0].Name, r.Results[1].Name, r.Ratio)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100**v)
}

// WriteJSON writes r as indented JSON.
func (r *ReadsReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func paramString(ps []Param) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Name + "=" + p.Value
	}
	return strings.Join(s, " ")
}
