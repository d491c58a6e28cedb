package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/domain"
	"hmp/internal/reconcile"
	"hmp/internal/tools"
)

// world is a running HMP with two organizations of two properties each,
// their books written through the API and projected.
type world struct {
	t     *testing.T
	env   *apptest.Env
	pool  *pgxpool.Pool
	orgs  []apptest.Org
	props [][]string // props[o][p]
}

// The dates the books have rows on (two months).
var bookDates = []string{"2026-03-02", "2026-03-05", "2026-04-10"}

func setup(t *testing.T, opts ...func(*config.Config)) *world {
	t.Helper()
	env := apptest.Start(t, cluster, opts...)
	w := &world{t: t, env: env, pool: env.App.Pool}
	for o := range 2 {
		org := env.Signup(fmt.Sprintf("Drift Org %d", o))
		w.orgs = append(w.orgs, org)
		var props []string
		for p := range 2 {
			prop := env.Property(org.AdminToken, fmt.Sprintf("Lodge %d-%d", o, p), "UTC")
			props = append(props, prop)
			for i, d := range bookDates {
				env.Revenue(org.AdminToken, apptest.Txn{PropertyID: prop, AmountCents: int64(1000*(o+1) + 100*p + i), PaymentMode: "cash", OccurredAt: d + "T10:00:00Z"})
				env.Expense(org.AdminToken, apptest.Txn{PropertyID: prop, Category: "supplies", AmountCents: int64(50 + i), PaymentMode: "bank", OccurredAt: d + "T11:00:00Z"})
			}
			env.Must(201, "POST", "/v1/reports/cash-counts", org.AdminToken, map[string]any{"propertyId": prop, "date": bookDates[0], "countedClosingCents": 900})
		}
		w.props = append(w.props, props)
	}
	w.drain()
	if n := w.mismatches(); n != 0 {
		t.Fatalf("fixture: %d mismatches before any drift", n)
	}
	return w
}

// drain waits until the projector has applied every event.
func (w *world) drain() {
	w.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		applied := w.env.App.Projector.Applied()
		var left int
		err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM events e WHERE NOT EXISTS (
			SELECT 1 FROM projector_applied a WHERE a.org_id = e.org_id AND a.event_seq = e.seq)`).Scan(&left)
		if err != nil {
			w.t.Fatal(err)
		}
		if left == 0 {
			return
		}
		select {
		case <-applied:
		case <-deadline:
			w.t.Fatalf("%d events still not applied", left)
		}
	}
}

// reconcile runs the truth check over everything, as `hmp reconcile` does.
func (w *world) reconcile(fix bool) tools.ReconcileResult {
	w.t.Helper()
	res, err := tools.Reconcile(context.Background(), config.Config{DatabaseURL: w.env.App.DatabaseURL}, slog.New(slog.DiscardHandler), nil, nil, fix)
	if err != nil {
		w.t.Fatal(err)
	}
	return res
}

func (w *world) mismatches() int64 { return w.reconcile(false).Mismatches }

// drift is one injected corruption.
type drift struct {
	sql string
	o   int // organization and property index
	p   int
	n   int64 // mismatches it causes
}

// drifts corrupts daily rows, monthly rollups and a count of several
// organizations, properties and dates behind the projector's back.
var drifts = []drift{
	{`UPDATE daily_cash_balances SET cash_received = cash_received + 7 WHERE org_id = $1 AND property_id = $2 AND business_date = '2026-03-02'`, 0, 0, 1},
	{`UPDATE daily_cash_balances SET bank_expenses = 0, approved_count = approved_count - 1 WHERE org_id = $1 AND property_id = $2 AND business_date = '2026-04-10'`, 0, 1, 2},
	{`UPDATE monthly_cash_balances SET cash_received = cash_received - 3 WHERE org_id = $1 AND property_id = $2 AND month = '2026-03-01'`, 1, 0, 1},
	{`DELETE FROM daily_cash_balances WHERE org_id = $1 AND property_id = $2 AND business_date = '2026-03-05'`, 1, 1, 3},
	{`INSERT INTO daily_cash_balances (org_id, property_id, business_date, cash_expenses, approved_count, updated_at)
		VALUES ($1, $2, '2026-05-05', 50, 1, now())`, 1, 0, 2},
	{`UPDATE daily_cash_balances SET counted_closing = 901 WHERE org_id = $1 AND property_id = $2 AND business_date = '2026-03-02'`, 0, 1, 1},
	// A count the projection holds and the truth lacks: the repair drops it.
	{`UPDATE daily_cash_balances SET counted_closing = 77, counted_version = 4 WHERE org_id = $1 AND property_id = $2 AND business_date = '2026-04-10'`, 1, 1, 1},
}

// corrupt injects every drift and returns the mismatches they cause.
func (w *world) corrupt() int64 {
	w.t.Helper()
	n := w.inject()
	if got := w.mismatches(); got != n {
		w.t.Fatalf("after corruption reconciliation finds %d mismatches, want %d: %+v", got, n, w.reconcile(false).Details)
	}
	return n
}

// inject injects every drift and returns the mismatches they cause.
func (w *world) inject() int64 {
	w.t.Helper()
	var n int64
	for _, d := range drifts {
		tag, err := w.pool.Exec(context.Background(), d.sql, w.orgs[d.o].ID, w.props[d.o][d.p])
		if err != nil || tag.RowsAffected() != 1 {
			w.t.Fatalf("%s: %v (%d rows)", d.sql, err, tag.RowsAffected())
		}
		n += d.n
	}
	return n
}

// awaitClean waits until reconciliation finds nothing, waking on each
// written correction batch.
func (w *world) awaitClean(poke func()) {
	w.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		flushed := w.env.App.Corrections.Flushed()
		res := w.reconcile(false)
		if res.Mismatches == 0 {
			return
		}
		if poke != nil {
			poke()
		}
		select {
		case <-flushed:
		case <-deadline:
			w.t.Fatalf("drift not repaired: %d mismatches %+v", res.Mismatches, res.Details)
		}
	}
}

// daily reads one daily report.
func (w *world) daily(o, p int, date string) map[string]any {
	w.t.Helper()
	return w.env.Must(200, "GET", "/v1/reports/daily-report?propertyId="+w.props[o][p]+"&date="+date, w.orgs[o].AdminToken, nil).Map(w.t)
}

// The truth of property (o, p) on bookDates[i]: what setup wrote.
func wantReceived(o, p, i int) float64 { return float64(1000*(o+1) + 100*p + i) }

func TestFixRepairsEveryDriftExactly(t *testing.T) {
	t.Parallel()
	// hmp reconcile --fix runs beside the server, in a process of its own
	// that cannot reach the server's report cache: what the server served
	// before the fix stays until its TTL. Read the repaired rows uncached.
	w := setup(t, func(c *config.Config) { c.Cache.Entries = -1 })
	n := w.corrupt()
	if got := w.daily(0, 0, "2026-03-02")["cashReceivedCents"]; got != wantReceived(0, 0, 0)+7 {
		t.Fatalf("corrupted day served %v", got)
	}
	res := w.reconcile(true)
	if res.Mismatches != n || res.Fixed == nil || res.Fixed.Mismatches != 0 {
		t.Fatalf("reconcile --fix found %d (want %d), left %+v", res.Mismatches, n, res.Fixed)
	}
	if got := w.daily(0, 0, "2026-03-02")["cashReceivedCents"]; got != wantReceived(0, 0, 0) {
		t.Fatalf("repaired day served %v, want %v", got, wantReceived(0, 0, 0))
	}
	if got := w.daily(0, 1, "2026-03-02")["countedClosingCents"]; got != float64(900) {
		t.Fatalf("repaired count served %v, want 900", got)
	}
	if again := w.reconcile(true); again.Mismatches != 0 {
		t.Fatalf("a second --fix found %d mismatches", again.Mismatches)
	}
}

func TestFixOneOrganizationOrProperty(t *testing.T) {
	t.Parallel()
	w := setup(t)
	n := w.corrupt()
	ctx, cfg, logger := context.Background(), config.Config{DatabaseURL: w.env.App.DatabaseURL}, slog.New(slog.DiscardHandler)
	org0, _ := domain.ParseID(w.orgs[0].ID)
	prop10, _ := domain.ParseID(w.props[1][0])
	org1, _ := domain.ParseID(w.orgs[1].ID)
	res, err := tools.Reconcile(ctx, cfg, logger, &org0, nil, true)
	if err != nil || res.Mismatches != 4 || res.Fixed.Mismatches != 0 {
		t.Fatalf("--fix --org: %+v %v", res, err)
	}
	res, err = tools.Reconcile(ctx, cfg, logger, &org1, &prop10, true)
	if err != nil || res.Mismatches != 3 || res.Fixed.Mismatches != 0 {
		t.Fatalf("--fix --property: %+v %v", res, err)
	}
	if left := w.mismatches(); left != n-7 {
		t.Fatalf("%d mismatches left outside the scopes fixed, want %d", left, n-7)
	}
}

func TestSweepRepairsChangedProperties(t *testing.T) {
	t.Parallel()
	w := setup(t, func(c *config.Config) {
		c.Reconcile.SweepEvery = 50 * time.Millisecond
		c.Reconcile.FlushEvery = 50 * time.Millisecond
	})
	w.inject() // the sweep may catch some at once: no count to check
	// The sweep looks at what the projector changed: a write to each
	// drifted property brings it into the next sweep.
	for _, d := range drifts {
		w.env.Revenue(w.orgs[d.o].AdminToken, apptest.Txn{PropertyID: w.props[d.o][d.p], AmountCents: 1, PaymentMode: "cash", OccurredAt: "2026-06-01T10:00:00Z"})
	}
	w.awaitClean(nil)
}

func TestSampledReadsRepairTheirDays(t *testing.T) {
	t.Parallel()
	w := setup(t, func(c *config.Config) {
		c.Reconcile.SampleRate = 10000
		c.Reconcile.FlushEvery = 50 * time.Millisecond
	})
	w.corrupt()
	// Reading each drifted day (or a day of each drifted month) samples
	// it; the check and the repair happen after the read answered.
	read := func() {
		for _, d := range []struct {
			o, p int
			date string
		}{{0, 0, "2026-03-02"}, {0, 1, "2026-04-10"}, {1, 0, "2026-03-02"}, {1, 1, "2026-03-05"}, {1, 0, "2026-05-05"}, {0, 1, "2026-03-02"}, {1, 1, "2026-04-10"}} {
			w.daily(d.o, d.p, d.date)
		}
	}
	read()
	w.awaitClean(read)
}

// A correction racing a projector write to the same row counts both: the
// correction is the difference to the truth of its snapshot, added to the
// newest row, so a delta committed after its snapshot survives.
func TestCorrectionRacingAProjectorWriteStaysExact(t *testing.T) {
	t.Parallel()
	w := setup(t)
	ctx := context.Background()
	o, p, date := 0, 0, "2026-03-02"
	if _, err := w.pool.Exec(ctx, drifts[0].sql, w.orgs[o].ID, w.props[o][p]); err != nil {
		t.Fatal(err)
	}
	// A writer, like a transaction and its projection, holds the row.
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `INSERT INTO transactions (org_id, id, kind, property_id, source, amount_cents, currency, payment_mode,
		occurred_at, business_date, status, version, created_by, created_at, updated_by, updated_at)
		SELECT $1, gen_random_uuid(), 'revenue', $2, 'room', 100, 'USD', 'cash', now(), $3, 'approved', 1, u.id, now(), u.id, now()
		FROM users u WHERE u.org_id = $1 LIMIT 1`, w.orgs[o].ID, w.props[o][p], date)
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		`UPDATE daily_cash_balances SET cash_received = cash_received + 100, approved_count = approved_count + 1 WHERE org_id = $1 AND property_id = $2 AND business_date = $3`,
		`UPDATE monthly_cash_balances SET cash_received = cash_received + 100, approved_count = approved_count + 1 WHERE org_id = $1 AND property_id = $2 AND month = date_trunc('month', $3::date)`,
	} {
		if _, err := tx.Exec(ctx, sql, w.orgs[o].ID, w.props[o][p], date); err != nil {
			t.Fatal(err)
		}
	}
	org, _ := domain.ParseID(w.orgs[o].ID)
	prop, _ := domain.ParseID(w.props[o][p])
	d, _ := domain.ParseDate(date)
	done := make(chan error, 1)
	var res reconcile.Correction
	go func() {
		var err error
		res, err = reconcile.Correct(ctx, w.pool, []reconcile.Key{{OrgID: org, PropertyID: prop, Date: d}}, time.Now().Add(-time.Hour), time.Now())
		done <- err
	}()
	// Wait until the correction waits for the writer's row lock.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the correction never waited for the row lock")
		}
		select {
		case err := <-done:
			t.Fatalf("the correction did not wait for the writer: %+v %v", res, err)
		case <-time.After(5 * time.Millisecond): // poll interval, not a wait for the outcome
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || res.Rows != 1 {
		t.Fatalf("correction: %+v %v", res, err)
	}
	if left := w.reconcile(false); left.Mismatches != 0 {
		t.Fatalf("after the race: %+v", left.Details)
	}
	if got := w.daily(o, p, date)["cashReceivedCents"]; got != wantReceived(o, p, 0)+100 {
		t.Fatalf("day served %v, want %v", got, wantReceived(o, p, 0)+100)
	}
}

// A property with events the projector has not applied yet is left alone:
// their transactions are in the truth but not in the projection, and
// correcting now would count them twice when they land.
func TestCorrectionDefersPropertiesWithUnappliedEvents(t *testing.T) {
	t.Parallel()
	w := setup(t)
	ctx := context.Background()
	w.corrupt()
	w.env.App.Projector.Stop()
	w.env.Revenue(w.orgs[0].AdminToken, apptest.Txn{PropertyID: w.props[0][0], AmountCents: 55, PaymentMode: "cash", OccurredAt: "2026-03-02T12:00:00Z"})
	org, _ := domain.ParseID(w.orgs[0].ID)
	prop, _ := domain.ParseID(w.props[0][0])
	res, err := reconcile.Correct(ctx, w.pool, []reconcile.Key{{OrgID: org, PropertyID: prop, Date: domain.Date{Year: 2026, Month: 3, Day: 2}}}, time.Now().Add(-time.Hour), time.Now())
	if err != nil || res.Rows != 0 || res.Deferred != 1 {
		t.Fatalf("correction of an unsettled property: %+v %v", res, err)
	}
	if err := w.env.App.Projector.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.drain()
	fixed := w.reconcile(true)
	if fixed.Fixed.Mismatches != 0 {
		t.Fatalf("after the events landed: %+v", fixed.Fixed.Details)
	}
	if got := w.daily(0, 0, "2026-03-02")["cashReceivedCents"]; got != wantReceived(0, 0, 0)+55 {
		t.Fatalf("day served %v, want %v", got, wantReceived(0, 0, 0)+55)
	}
}

// Writes keep landing on the drifted properties while the batcher corrects
// them: every correction is exact or deferred, never wrong, so once the
// writes stop and a last pass runs, nothing is left, and no figure that
// was not drifted ever became wrong.
func TestCorrectionsDuringConcurrentWritesStayExact(t *testing.T) {
	t.Parallel()
	w := setup(t)
	ctx := context.Background()
	w.corrupt()
	before := w.reconcile(false).Details
	var keys []reconcile.Key
	for _, m := range before {
		keys = append(keys, reconcile.Key{OrgID: m.OrgID, PropertyID: m.PropertyID, Date: m.Date})
	}
	// Each writer writes, then reads its write back (waiting for its
	// projection), so its property is settled between writes and the
	// corrections land among them.
	const perWriter = 25
	var wg sync.WaitGroup
	var writes atomic.Int64
	for o := range 2 {
		for p := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					d := bookDates[i%len(bookDates)]
					r, err := w.env.Send("POST", "/v1/finance/revenues", w.orgs[o].AdminToken, apptest.Txn{PropertyID: w.props[o][p],
						Source: "room", AmountCents: int64(i + 1), PaymentMode: "cash", OccurredAt: d + "T09:00:00Z"})
					if err != nil || r.Status != 201 {
						t.Errorf("write: %v %v", r, err)
						return
					}
					writes.Add(1)
					r, err = w.env.Send("GET", "/v1/reports/daily-report?propertyId="+w.props[o][p]+"&date="+d, w.orgs[o].AdminToken, nil,
						"X-Consistency-Token", r.Header.Get("X-Consistency-Token"))
					if err != nil || r.Status != 200 {
						t.Errorf("read: %v %v", r, err)
						return
					}
				}
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var applied, rounds int
	for running := true; running; rounds++ {
		select {
		case <-done:
			running = false
		default:
		}
		res, err := reconcile.Correct(ctx, w.pool, keys, time.Now().Add(-time.Hour), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		applied += res.Rows
	}
	w.drain()
	// Whatever is still wrong now must be drift injected and not yet
	// corrected (deferred every time), with exactly its injected size.
	after := w.reconcile(false).Details
	for _, m := range after {
		i := slices.IndexFunc(before, func(b reconcile.Mismatch) bool {
			return b.PropertyID == m.PropertyID && b.Period == m.Period && b.Field == m.Field
		})
		if i < 0 || m.Actual-m.Expected != before[i].Actual-before[i].Expected {
			t.Fatalf("a figure went wrong during the corrections: %+v (injected: %+v)", m, before)
		}
	}
	if fixed := w.reconcile(true); fixed.Fixed.Mismatches != 0 {
		t.Fatalf("after the writes: %+v", fixed.Fixed.Details)
	}
	t.Logf("%d writes, %d correction rounds writing %d rows while they ran, %d drifts left for the last pass", writes.Load(), rounds, applied, len(after))
}

// A batch that fails is retried with backoff until it is written; a
// Flush cut short puts it back in the queue, never drops it.
func TestFailingBatchIsRetriedNotDropped(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.corrupt()
	var keys []reconcile.Key
	for _, m := range w.reconcile(false).Details {
		keys = append(keys, reconcile.Key{OrgID: m.OrgID, PropertyID: m.PropertyID, Date: m.Date})
	}
	b := reconcile.NewCorrectionBatcher(w.pool, reconcile.Config{}, nil, slog.New(slog.DiscardHandler), time.Now, nil)
	var tries atomic.Int64
	failing := atomic.Bool{}
	failing.Store(true)
	reconcile.SetBeforeWrite(b, func() error {
		tries.Add(1)
		if failing.Load() {
			return errors.New("injected: the database refused the batch")
		}
		return nil
	})
	b.Enqueue(keys...)
	queued := b.Pending()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := b.Flush(ctx); err == nil || !strings.Contains(err.Error(), "injected") && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush of a failing batch: %v", err)
	}
	if tries.Load() < 2 || b.Pending() != queued {
		t.Fatalf("%d tries, %d queued after the failed flush, want >= 2 and %d", tries.Load(), b.Pending(), queued)
	}
	// The database recovers after two more failures: the retry gets it through.
	var left atomic.Int64
	left.Store(2)
	reconcile.SetBeforeWrite(b, func() error {
		if left.Add(-1) >= 0 {
			return errors.New("injected: still failing")
		}
		return nil
	})
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.Pending() != 0 {
		t.Fatalf("%d corrections still queued", b.Pending())
	}
	if n := w.mismatches(); n != 0 {
		t.Fatalf("%d mismatches after the retried batch", n)
	}
}

// The baseline profile writes corrections row by row, with the same
// result.
func TestRowByRowCorrectionsAreExact(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.corrupt()
	res, err := tools.Reconcile(context.Background(), config.Config{DatabaseURL: w.env.App.DatabaseURL, Profile: "baseline"}, slog.New(slog.DiscardHandler), nil, nil, true)
	if err != nil || res.Fixed.Mismatches != 0 {
		t.Fatalf("row-by-row --fix: %+v %v", res.Fixed, err)
	}
}

// A job that outlives its deadline is recorded as failed, with why; the
// next one of the organization runs.
func TestJobPastItsDeadlineFails(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster, func(c *config.Config) { c.Reconcile.JobDeadline = time.Nanosecond })
	org := env.Signup("Slow Books")
	await := func(id string) map[string]any {
		deadline := time.After(30 * time.Second)
		for {
			finished := env.App.Reconciliation.Finished()
			job := env.Must(200, "GET", "/v1/reports/reconciliation/"+id, org.AdminToken, nil).Map(t)
			if job["status"] != "running" {
				return job
			}
			select {
			case <-finished:
			case <-deadline:
				t.Fatalf("job %s still running", id)
			}
		}
	}
	for range 2 {
		job := env.Must(202, "POST", "/v1/reports/reconciliation", org.AdminToken, map[string]any{}).Map(t)
		if loc := env.Must(202, "POST", "/v1/reports/reconciliation", org.AdminToken, nil); loc.Header.Get("Location") == "" {
			t.Fatalf("no Location: %s", loc)
		}
		got := await(job["id"].(string))
		if got["status"] != "failed" || !strings.Contains(got["error"].(string), "did not finish within") {
			t.Fatalf("job past its deadline: %v", got)
		}
	}
}

// The events are the record: a transactions row changed behind their back
// is not a truth to repair the reports to. --fix refuses, names the row,
// and leaves the cash book as it was; `hmp rebuild` is the repair.
func TestFixRefusesATableThatIsNotTheFold(t *testing.T) {
	t.Parallel()
	w := setup(t)
	ctx := context.Background()
	var id string
	if err := w.pool.QueryRow(ctx, `
		UPDATE transactions SET amount_cents = amount_cents + 500
		WHERE (org_id, id) = (SELECT org_id, id FROM transactions WHERE org_id = $1 AND status = 'approved' LIMIT 1)
		RETURNING id`, w.orgs[0].ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	before := w.mismatches()
	if before == 0 {
		t.Fatal("the changed row made no mismatch between the table and the cash book")
	}
	_, err := tools.Reconcile(ctx, config.Config{DatabaseURL: w.env.App.DatabaseURL}, slog.New(slog.DiscardHandler), nil, nil, true)
	if !errors.Is(err, tools.ErrTableNotTheFold) || !strings.Contains(err.Error(), id) {
		t.Fatalf("--fix over a changed row: %v; want ErrTableNotTheFold naming %s", err, id)
	}
	if after := w.mismatches(); after != before {
		t.Errorf("the refused --fix changed the cash book: %d mismatches, were %d", after, before)
	}
	// Another organization's --fix is not held up by it.
	if _, err := tools.Reconcile(ctx, config.Config{DatabaseURL: w.env.App.DatabaseURL}, slog.New(slog.DiscardHandler), mustID(t, w.orgs[1].ID), nil, true); err != nil {
		t.Errorf("--fix of the other organization: %v", err)
	}
}

func mustID(t *testing.T, s string) *domain.ID {
	t.Helper()
	id, err := domain.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return &id
}
