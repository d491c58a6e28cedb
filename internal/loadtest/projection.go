package loadtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/bus"
	"hmp/internal/domain"
	"hmp/internal/measure"
	"hmp/internal/postgres"
	"hmp/internal/reports"
)

// ProjectionProfile is one projector set-up to measure: a scaling
// profile's pool and projector settings (config.LookupProfile has them).
type ProjectionProfile struct {
	Name      string
	Pool      postgres.PoolConfig
	Projector reports.ProjectorConfig
}

// ProjectionConfig sets up the projection scenario.
type ProjectionConfig struct {
	// DatabaseURL is a migrated database this run owns: the projection's
	// tables (daily and monthly balances, applied-event records) are
	// emptied before each profile. Required.
	DatabaseURL string
	// Bus receives the backlog; its events stream must hold no message.
	// Required.
	Bus *bus.Bus
	// Profiles are measured in order, each on the same backlog with a
	// durable consumer of its own. The first is the reference of the
	// ratio. Required.
	Profiles []ProjectionProfile
	// Events are generated over Properties properties of Orgs
	// organizations, business dates over the last Days days. Defaults
	// 200,000, 10,000, 1,000 and 7.
	Events, Properties, Orgs, Days int
	// Rounds repeats the profiles, interleaved. Default 1.
	Rounds int
	// MaxDuration bounds each profile's run; when it is hit, the rate is
	// over what was done and the projection is not checked. Default 10 m.
	MaxDuration time.Duration
	// MinRate (events/s of the last profile) and MinRatio (its rate over
	// the first's) are the targets checked. Defaults 50,000 and 25.
	MinRate, MinRatio float64
	// Phases: the phases are "publish", then each profile's name; Seed
	// makes the backlog repeatable, its ids aside.
	Phases
}

// Validate reports every problem of a resolved c (see validate.go).
func (c ProjectionConfig) Validate() error {
	var errs []error
	positive(&errs, "events", c.Events)
	positive(&errs, "properties", c.Properties)
	positive(&errs, "orgs", c.Orgs)
	positive(&errs, "days", c.Days)
	positive(&errs, "rounds", c.Rounds)
	positive(&errs, "max-duration", c.MaxDuration)
	if c.Orgs > c.Properties {
		errs = append(errs, errors.New("--orgs must not exceed --properties: every organization needs a property"))
	}
	return errors.Join(errs...)
}

func (c ProjectionConfig) withDefaults() ProjectionConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Events, 200_000)
	def(&c.Properties, 10_000)
	def(&c.Orgs, 1_000)
	def(&c.Days, 7)
	def(&c.Rounds, 1)
	if c.MaxDuration <= 0 {
		c.MaxDuration = 10 * time.Minute
	}
	if c.MinRate == 0 {
		c.MinRate = 50_000
	}
	if c.MinRatio == 0 {
		c.MinRatio = 25
	}
	c.Phases = c.Phases.withDefaults()
	return c
}

// publishChunk is how many events one PublishEvents call carries.
const publishChunk = 1000

// ErrInexact is returned (with the report) when a projection did not
// reach the generator's totals to the cent.
var ErrInexact = errors.New("projection inexact")

// Projection runs the projection scenario: generate a backlog of events,
// publish it, then let each profile's projector apply all of it from the
// stream, timing it until its consumer's ack floor reaches the stream's
// end, and check that the balances equal the generator's totals. The
// report holds the publish rate, each profile's events/s, average batch
// and CPU per event, and the ratio of the last profile to the first. A
// projection that is not exact is an error wrapping ErrInexact, returned
// with the report.
func Projection(ctx context.Context, cfg ProjectionConfig) (*Report, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.DatabaseURL == "" || cfg.Bus == nil:
		return nil, errors.New("projection: a database and a bus are required")
	case len(cfg.Profiles) == 0:
		return nil, errors.New("projection: at least one profile is required")
	case cfg.Orgs > cfg.Properties:
		return nil, errors.New("projection: every organization needs a property: orgs must not exceed properties")
	}
	rep := &Report{Scenario: "projection", StartedAt: time.Now(), Host: ThisHost(), Target: "reports projector, in process"}
	profiles := make([]string, len(cfg.Profiles))
	for i, p := range cfg.Profiles {
		pc := p.Projector.WithDefaults()
		profiles[i] = fmt.Sprintf("%s(concurrency %d, batch %d, workers %d, linger %s, pool %d)", p.Name,
			pc.MaxConcurrency, pc.BatchSize, pc.Workers, pc.Linger(), p.Pool.WithDefaults().MaxConns)
	}
	rep.Params = []Param{
		{"events", strconv.Itoa(cfg.Events)}, {"properties", strconv.Itoa(cfg.Properties)}, {"orgs", strconv.Itoa(cfg.Orgs)},
		{"days", strconv.Itoa(cfg.Days)}, {"rounds", strconv.Itoa(cfg.Rounds)}, {"max-duration", cfg.MaxDuration.String()},
		{"seed", strconv.FormatUint(cfg.Seed, 10)}, {"profiles", strings.Join(profiles, " ")},
	}
	settings, err := ServerSettings(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	rep.Server, rep.Durable = settings, Durable(settings)
	run := &projectionRun{cfg: cfg, postmaster: PostmasterPID(ctx, cfg.DatabaseURL)}
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("projection: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	run.conn = conn
	defer cfg.Between("")

	pub, err := run.publish(ctx)
	if err != nil {
		return nil, err
	}
	rep.Results = append(rep.Results, pub)

	inexact, err := run.rounds(ctx, rep)
	if err != nil {
		return nil, err
	}
	rep.Totals = totals(rep.Results)
	batchFigures(rep)
	rep.Checks = append(projectionChecks(rep.Totals, cfg), rep.Checks...)
	if !rep.Durable {
		rep.Notes = append(rep.Notes, "the server does not make commits durable: these figures are not the durable ones")
	}
	rep.Notes = append(rep.Notes, "the projector, the embedded JetStream server and the generator share this process (cores: proc)",
		fmt.Sprintf("each profile starts from empty projection tables and a new durable consumer at the stream's first event; the clock runs from the projector's start until the consumer's ack floor reaches the last event (polled every %s)", floorPoll))
	rep.Notes = append(rep.Notes, run.notes...)
	if len(inexact) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrInexact, strings.Join(inexact, "; "))
	}
	return rep, nil
}

// rounds measures every profile in every round; it returns the names of
// the checks a projection failed.
func (r *projectionRun) rounds(ctx context.Context, rep *Report) (inexact []string, _ error) {
	cfg := r.cfg
	for round := 1; round <= cfg.Rounds; round++ {
		for _, p := range cfg.Profiles {
			res, check, err := r.measure(ctx, p, round)
			if err != nil {
				return nil, err
			}
			rep.Results = append(rep.Results, res)
			if check == nil {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s round %d hit --max-duration %s after %d of %d events: its rate is over what was done, and its projection was not checked",
					p.Name, round, cfg.MaxDuration, res.OK, cfg.Events))
				continue
			}
			rep.Checks = append(rep.Checks, *check)
			if !check.Pass {
				inexact = append(inexact, check.Name)
			}
		}
	}
	return inexact, nil
}

// batchFigures gives each profile's totals its average batch.
func batchFigures(rep *Report) {
	for i := range rep.Totals {
		t := &rep.Totals[i]
		var events, batches float64
		for _, r := range rep.Results {
			if r.Mode == t.Mode {
				if f, ok := figure(r.Figures, "batches"); ok {
					batches += f
					events += float64(r.OK)
				}
			}
		}
		if batches > 0 {
			t.Figures = []Figure{{Name: "avg batch", Value: round2(events / batches), Unit: "events"}, {Name: "batches", Value: batches}}
		}
	}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

func figure(fs []Figure, name string) (float64, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

func projectionChecks(tot []Result, cfg ProjectionConfig) []Check {
	rate := map[string]float64{}
	for _, r := range tot {
		rate[r.Mode] = r.Throughput
	}
	first, last := cfg.Profiles[0].Name, cfg.Profiles[len(cfg.Profiles)-1].Name
	checks := []Check{NewCheck(last+" events/s", rate[projectionMode(last)], ">=", cfg.MinRate)}
	if len(cfg.Profiles) > 1 {
		ratio := 0.0
		if base := rate[projectionMode(first)]; base > 0 {
			ratio = rate[projectionMode(last)] / base
		}
		checks = append(checks, NewCheck(last+" ÷ "+first+" events/s", ratio, ">=", cfg.MinRatio))
	}
	return checks
}

func projectionMode(profile string) string { return "projection " + profile }

// projectionRun is the state the phases of one run share.
type projectionRun struct {
	cfg        ProjectionConfig
	postmaster int
	conn       *pgx.Conn
	gen        *backlog
	// first and last are the stream sequences of the backlog.
	first, last uint64
	// notes are the differences the checks of the projection found.
	notes []string
}

func (r *projectionRun) settle(next string) {
	r.cfg.settleBefore(context.Background(), r.postmaster, next)
}

// publish generates the backlog, then publishes it in chunks, measuring
// the publishing alone.
func (r *projectionRun) publish(ctx context.Context) (Result, error) {
	cfg := r.cfg
	info, err := cfg.Bus.StreamInfo(ctx, bus.EventsStream)
	if err != nil {
		return Result{}, fmt.Errorf("projection: events stream: %w", err)
	}
	if info.State.Msgs != 0 {
		return Result{}, fmt.Errorf("projection: the events stream holds %d messages; the run needs an empty one", info.State.Msgs)
	}
	r.first = info.State.LastSeq + 1

	start := time.Now()
	r.gen = newBacklog(cfg.Seed, cfg.Orgs, cfg.Properties, cfg.Days, time.Now)
	events := make([]domain.Event, cfg.Events)
	for i := range events {
		if events[i], err = r.gen.next(); err != nil {
			return Result{}, fmt.Errorf("projection: generate: %w", err)
		}
	}
	generated := time.Since(start)
	cfg.Logger.Info("loadtest_generated", "events", cfg.Events, "took", generated.Round(time.Millisecond).String())

	r.settle("publish")
	cpuFrom := sampleCPU(r.postmaster)
	start = time.Now()
	for i := 0; i < len(events); i += publishChunk {
		last, err := cfg.Bus.PublishEvents(ctx, events[i:min(i+publishChunk, len(events))])
		if err != nil {
			return Result{}, fmt.Errorf("projection: %w", err)
		}
		r.last = max(r.last, last)
	}
	elapsed := time.Since(start)
	cpuTo := sampleCPU(r.postmaster)
	if got := r.last - r.first + 1; got != uint64(cfg.Events) {
		return Result{}, fmt.Errorf("projection: published %d events, the stream stored %d", cfg.Events, got)
	}
	res := Result{Name: "publish (bus.PublishEvents)", Mode: "publish", Round: 1, Clients: 1, OK: uint64(cfg.Events),
		Elapsed: elapsed, Throughput: float64(cfg.Events) / elapsed.Seconds(), CPU: cpuBetween(cpuFrom, cpuTo, uint64(cfg.Events))}
	res.Figures = append(res.Figures, Figure{Name: "chunk", Value: publishChunk, Unit: "events"},
		Figure{Name: "generated in", Value: round2(generated.Seconds()), Unit: "s"})
	for op, n := range r.gen.mix {
		res.Figures = append(res.Figures, Figure{Name: opNames[op], Value: float64(n)})
	}
	cfg.Logger.Info("loadtest_phase", "phase", "publish", "events_per_s", int(res.Throughput))
	return res, nil
}

// floorPoll is how often a run reads its consumer's ack floor.
const floorPoll = 10 * time.Millisecond

// measure runs one profile's projector over the whole backlog. check is
// nil when MaxDuration ended the run before the projector was done.
func (r *projectionRun) measure(ctx context.Context, prof ProjectionProfile, round int) (Result, *Check, error) {
	cfg := r.cfg
	// Empty tables and a checkpoint: each profile starts from the same
	// state, and no checkpoint the previous one owes lands in its window.
	if err := reports.ResetCashBook(ctx, r.conn); err != nil {
		return Result{}, nil, fmt.Errorf("projection: %w", err)
	}
	if _, err := r.conn.Exec(ctx, `CHECKPOINT`); err != nil {
		cfg.Logger.Warn("loadtest_checkpoint_failed", "error", err.Error())
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL, prof.Pool)
	if err != nil {
		return Result{}, nil, err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return Result{}, nil, fmt.Errorf("projection: %w", err)
	}
	pc := prof.Projector
	pc.Durable = "loadtest-" + consumerName(prof.Name) + "-" + strconv.Itoa(round)
	reg := prometheus.NewRegistry()
	proj := reports.NewProjector(pool, cfg.Bus, pc, cfg.Logger, time.Now, reg)
	defer func() {
		proj.Stop()
		if err := cfg.Bus.DeleteConsumer(context.WithoutCancel(ctx), bus.EventsStream, pc.Durable); err != nil {
			cfg.Logger.Warn("loadtest_consumer_delete_failed", "consumer", pc.Durable, "error", err.Error())
		}
	}()
	r.settle(prof.Name)

	cpuFrom := sampleCPU(r.postmaster)
	start := time.Now()
	if err := proj.Start(ctx); err != nil {
		return Result{}, nil, err
	}
	floor, timedOut, err := r.waitFloor(ctx, pc.Durable, prof.Name, start)
	if err != nil {
		return Result{}, nil, err
	}
	elapsed := time.Since(start)
	cpuTo := sampleCPU(r.postmaster)
	proj.Stop()

	n := done(floor, r.first)
	res := Result{Name: projectionMode(prof.Name), Mode: projectionMode(prof.Name), Round: round,
		Clients: proj.Config().MaxConcurrency, OK: n, Elapsed: elapsed, CPU: cpuBetween(cpuFrom, cpuTo, n)}
	if elapsed > 0 {
		res.Throughput = float64(n) / elapsed.Seconds()
	}
	if err := projectorFigures(reg, &res); err != nil {
		return Result{}, nil, err
	}
	cfg.Logger.Info("loadtest_phase", "phase", prof.Name, "round", round, "events_per_s", int(res.Throughput), "timed_out", timedOut)
	if timedOut {
		return res, nil, nil
	}
	mismatches, err := r.verify(ctx)
	if err != nil {
		return Result{}, nil, err
	}
	check := NewCheck(fmt.Sprintf("%s round %d: projection exact (mismatches)", prof.Name, round), float64(len(mismatches)), "<", 1)
	for _, mm := range mismatches {
		r.notes = append(r.notes, fmt.Sprintf("%s round %d: %s", prof.Name, round, mm))
	}
	return res, &check, nil
}

// waitFloor polls the consumer's ack floor until it reaches the end of
// the backlog or MaxDuration passes (timedOut).
func (r *projectionRun) waitFloor(ctx context.Context, durable, profile string, start time.Time) (floor uint64, timedOut bool, err error) {
	cfg := r.cfg
	tick := time.NewTicker(floorPoll)
	defer tick.Stop()
	nextLog := start.Add(5 * time.Second)
	for floor < r.last {
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-tick.C:
		}
		if floor, err = cfg.Bus.AckFloor(ctx, bus.EventsStream, durable); err != nil {
			return 0, false, fmt.Errorf("projection: %w", err)
		}
		if now := time.Now(); now.After(nextLog) {
			cfg.Logger.Info("loadtest_progress", "profile", profile, "events", done(floor, r.first), "elapsed", now.Sub(start).Round(time.Second).String())
			nextLog = now.Add(5 * time.Second)
		}
		if floor < r.last && time.Since(start) >= cfg.MaxDuration {
			return floor, true, nil
		}
	}
	return floor, false, nil
}

// projectorFigures reads the projector's metrics into res: dead letters,
// the average batch, retries, duplicates and failed batches.
func projectorFigures(reg *prometheus.Registry, res *Result) error {
	m, err := measure.Gather(reg)
	if err != nil {
		return err
	}
	res.Failed = uint64(m[`hmp_projector_events_total{result="dead_lettered"}`])
	batches := m["hmp_projector_batch_size_count"]
	if batches > 0 {
		res.Figures = append(res.Figures, Figure{Name: "avg batch", Value: round2(m["hmp_projector_batch_size_sum"] / batches), Unit: "events"})
	}
	res.Figures = append(res.Figures, Figure{Name: "batches", Value: batches},
		Figure{Name: "retried", Value: m[`hmp_projector_events_total{result="retried"}`]},
		Figure{Name: "duplicates", Value: m[`hmp_projector_events_total{result="duplicate"}`]},
		Figure{Name: "failed batches", Value: m["hmp_projector_failures_total"]})
	if res.Failed > 0 {
		res.FirstError = fmt.Sprintf("%d events dead-lettered", res.Failed)
	}
	return nil
}

func done(floor, first uint64) uint64 {
	if floor < first {
		return 0
	}
	return floor - first + 1
}

// consumerName keeps the letters, digits, dashes and underscores of s: a
// valid durable consumer name.
func consumerName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// projectionSums sums every flow column of the daily rows and of the
// monthly rollups, and counts the applied-event records. It reads the
// whole tables on purpose: this run owns the database.
const projectionSums = `
SELECT COALESCE(sum(cash_received), 0)::bigint, COALESCE(sum(bank_received), 0)::bigint,
	COALESCE(sum(cash_expenses), 0)::bigint, COALESCE(sum(bank_expenses), 0)::bigint,
	COALESCE(sum(pending_cash_received), 0)::bigint, COALESCE(sum(pending_bank_received), 0)::bigint,
	COALESCE(sum(pending_cash_expenses), 0)::bigint, COALESCE(sum(pending_bank_expenses), 0)::bigint,
	COALESCE(sum(approved_count), 0)::bigint, COALESCE(sum(pending_count), 0)::bigint,
	COALESCE(sum(counted_closing), 0)::bigint
FROM daily_cash_balances
UNION ALL
SELECT COALESCE(sum(cash_received), 0)::bigint, COALESCE(sum(bank_received), 0)::bigint,
	COALESCE(sum(cash_expenses), 0)::bigint, COALESCE(sum(bank_expenses), 0)::bigint,
	COALESCE(sum(pending_cash_received), 0)::bigint, COALESCE(sum(pending_bank_received), 0)::bigint,
	COALESCE(sum(pending_cash_expenses), 0)::bigint, COALESCE(sum(pending_bank_expenses), 0)::bigint,
	COALESCE(sum(approved_count), 0)::bigint, COALESCE(sum(pending_count), 0)::bigint, 0::bigint
FROM monthly_cash_balances
UNION ALL
SELECT count(*), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM projector_applied`

// verify compares the projection with the generator's totals and
// returns every difference.
func (r *projectionRun) verify(ctx context.Context) ([]string, error) {
	rows, err := r.conn.Query(ctx, projectionSums)
	if err != nil {
		return nil, fmt.Errorf("projection: read sums: %w", err)
	}
	var got []flowTotals
	for rows.Next() {
		var t flowTotals
		dest := make([]any, len(t))
		for i := range t {
			dest[i] = &t[i]
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, fmt.Errorf("projection: read sums: %w", err)
		}
		got = append(got, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projection: read sums: %w", err)
	}
	if len(got) != 3 {
		return nil, fmt.Errorf("projection: read sums: %d rows", len(got))
	}
	want := r.gen.expected()
	var out []string
	for i, col := range flowColumns {
		if got[0][i] != want[i] {
			out = append(out, fmt.Sprintf("daily_cash_balances.%s sums to %d, want %d", col, got[0][i], want[i]))
		}
		if i < len(flowColumns)-1 && got[1][i] != want[i] {
			out = append(out, fmt.Sprintf("monthly_cash_balances.%s sums to %d, want %d", col, got[1][i], want[i]))
		}
	}
	if applied := got[2][0]; applied != int64(r.cfg.Events) {
		out = append(out, fmt.Sprintf("projector_applied holds %d events, want %d", applied, r.cfg.Events))
	}
	return out, nil
}
