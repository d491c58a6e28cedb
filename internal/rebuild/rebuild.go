// Package rebuild rebuilds the report projections (daily_cash_balances and
// monthly_cash_balances) from the event store, the source of truth: per
// organization it folds the events with the projector's own rules into
// shadow tables, compares them with the live rows and swaps the
// differences in, in one transaction under a short lock, so that readers
// see the old rows or the new ones, never a mix. It records each finished
// organization, so an interrupted run resumes where it stopped.
package rebuild

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
	"hmp/internal/reports"
)

// Config selects and tunes a rebuild. The zero value rebuilds every
// organization in a run named "default".
type Config struct {
	// Run names the run; a run with the same name skips the organizations
	// it already finished (resume). Default "default".
	Run string
	// OrgID rebuilds one organization; zero: all.
	OrgID domain.ID
	// PropertyID rebuilds one property of OrgID; zero: all its properties.
	PropertyID domain.ID
	// Retention is the projector's applied-record retention (default 8
	// days): an event older than that counts as applied.
	Retention time.Duration
	// Progress, when set, is called after each organization.
	Progress func(Progress)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Progress is the state of a run.
type Progress struct {
	Orgs, Skipped int
	Events        int64
	ChangedRows   int64
	// LockTotal and LockMax are the time the live tables were locked.
	LockTotal, LockMax time.Duration
	Elapsed            time.Duration
}

// EventsPerSecond is the fold rate of the run.
func (p Progress) EventsPerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// Run rebuilds the projections of the selected organizations, one
// transaction per organization. It stops between organizations when ctx
// ends (an organization in flight rolls back) and can be run again with
// the same Config.Run to resume.
func Run(ctx context.Context, pool *pgxpool.Pool, cfg Config) (Progress, error) {
	if cfg.Run == "" {
		cfg.Run = "default"
	}
	if cfg.Retention == 0 {
		cfg.Retention = 8 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if !cfg.PropertyID.IsZero() && cfg.OrgID.IsZero() {
		return Progress{}, errors.New("rebuild: a property needs its organization")
	}
	start := time.Now()
	var p Progress
	var after *domain.ID
	for {
		if err := ctx.Err(); err != nil {
			return p, err
		}
		org, ok, err := nextOrg(ctx, pool, cfg.OrgID, after)
		if err != nil || !ok {
			p.Elapsed = time.Since(start)
			return p, err
		}
		after = &org
		var done bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rebuild_progress WHERE run = $1 AND org_id = $2)`, cfg.Run, org).Scan(&done); err != nil {
			return p, fmt.Errorf("rebuild: read progress: %w", postgres.Translate(err))
		}
		if done {
			p.Skipped++
			continue
		}
		r, err := rebuildOrg(ctx, pool, cfg, org)
		if err != nil {
			return p, fmt.Errorf("rebuild org %s: %w", org, err)
		}
		p.Orgs++
		p.Events += r.events
		p.ChangedRows += int64(r.changed)
		p.LockTotal += r.lock
		p.LockMax = max(p.LockMax, r.lock)
		p.Elapsed = time.Since(start)
		if cfg.Progress != nil {
			cfg.Progress(p)
		}
	}
}

func nextOrg(ctx context.Context, pool *pgxpool.Pool, only domain.ID, after *domain.ID) (domain.ID, bool, error) {
	if !only.IsZero() {
		return only, after == nil, nil
	}
	var id domain.ID
	err := pool.QueryRow(ctx, `SELECT org_id FROM events WHERE $1::uuid IS NULL OR org_id > $1 ORDER BY org_id LIMIT 1`, after).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.ID{}, false, nil
	}
	if err != nil {
		return domain.ID{}, false, fmt.Errorf("rebuild: next organization: %w", postgres.Translate(err))
	}
	return id, true, nil
}

type orgResult struct {
	events  int64
	changed int
	lock    time.Duration
}

// unappliedSQL lists the seqs of an organization's events the projector
// has not applied, by the projection's own rule (reports.Unapplied). seqs
// limits the check (NULL: every event).
func unappliedSQL() string {
	return `
	SELECT e.seq FROM events e
	WHERE e.org_id = $1 AND ($3::bigint[] IS NULL OR e.seq = ANY ($3)) AND ` + reports.Unapplied("$1", "$2")
}

func unapplied(ctx context.Context, q eventstore.Querier, org domain.ID, floor time.Time, seqs []int64) (map[int64]bool, error) {
	var arg any
	if seqs != nil {
		arg = seqs
	}
	rows, err := q.Query(ctx, unappliedSQL(), org, floor, arg)
	if err != nil {
		return nil, fmt.Errorf("unapplied events: %w", postgres.Translate(err))
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("unapplied events: %w", postgres.Translate(err))
	}
	out := make(map[int64]bool, len(list))
	for _, s := range list {
		out[s] = true
	}
	return out, nil
}

// rebuildOrg folds the organization's applied events without a lock,
// then, locked, folds what was applied meanwhile, stages the shadow rows,
// and swaps the differences into the live tables.
func rebuildOrg(ctx context.Context, pool *pgxpool.Pool, cfg Config, org domain.ID) (orgResult, error) {
	var res orgResult
	floor := cfg.Now().Add(-cfg.Retention)
	// Read the events first, then ask which of them are unapplied: an
	// event committed after the check but read before it would otherwise
	// pass for applied (and the projector would add it a second time).
	var all []eventstore.Linked
	var pos int64
	const page = 5000
	for {
		evs, err := eventstore.ChainAfter(ctx, pool, org, pos, page)
		if err != nil {
			return res, err
		}
		all = append(all, evs...)
		if len(evs) > 0 {
			pos = evs[len(evs)-1].Pos
		}
		if chained(evs) < page {
			break
		}
	}
	pending, err := unapplied(ctx, pool, org, floor, nil)
	if err != nil {
		return res, err
	}
	var fold reports.Fold
	var held []int64 // unapplied when read: looked at again under the lock
	for _, ev := range all {
		if pending[ev.Sequence] {
			held = append(held, ev.Sequence)
			continue
		}
		if err := fold.AddEvent(ev.Event); err != nil {
			return res, fmt.Errorf("fold event %s: %w", ev.ID, err)
		}
		res.events++
	}
	all = nil
	// One attempt, no retry: the fold below adds to the unlocked one.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		f := &fold
		n := res.events
		// Stage before locking: the lock then covers only what was
		// applied meanwhile (usually nothing) and the comparison.
		if err := reports.StageShadow(ctx, tx, f, cfg.PropertyID, cfg.Now(), false); err != nil {
			return err
		}
		// Readers pass; the projector and corrections wait until the
		// swap commits.
		if err := reports.LockCashBook(ctx, tx); err != nil {
			return err
		}
		locked := time.Now()
		// What the projector applied since the unlocked read: later
		// events, and those that were pending then.
		var late []eventstore.Linked
		for after := pos; ; {
			evs, err := eventstore.ChainAfter(ctx, tx, org, after, page)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if ev.Pos > 0 { // pre-chain events were all read above
					late = append(late, ev)
				}
			}
			if chained(evs) < page {
				break
			}
			after = evs[len(evs)-1].Pos
		}
		check := append([]int64{}, held...)
		for _, ev := range late {
			check = append(check, ev.Sequence)
		}
		still, err := unapplied(ctx, tx, org, floor, check)
		if err != nil {
			return err
		}
		if len(held) > 0 {
			evs, err := eventstore.BySeq(ctx, tx, org, held)
			if err != nil {
				return err
			}
			late = append(evs, late...)
		}
		folded := n
		for _, ev := range late {
			if still[ev.Sequence] {
				continue
			}
			if err := f.AddEvent(ev.Event); err != nil {
				return fmt.Errorf("fold event %s: %w", ev.ID, err)
			}
			n++
		}
		if n > folded {
			if err := reports.StageShadow(ctx, tx, f, cfg.PropertyID, cfg.Now(), true); err != nil {
				return err
			}
		}
		changed, err := reports.SwapShadow(ctx, tx, org, cfg.PropertyID)
		if err != nil {
			return err
		}
		lock := time.Since(locked)
		if _, err := tx.Exec(ctx, `
			INSERT INTO rebuild_progress (run, org_id, events, changed_rows, lock_micros, done_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, cfg.Run, org, n, changed, lock.Microseconds(), cfg.Now()); err != nil {
			return fmt.Errorf("record progress: %w", postgres.Translate(err))
		}
		res.events, res.changed, res.lock = n, changed, lock
		return nil
	})
	return res, err
}

// chained counts the events of a ChainAfter page that are in the chain
// (a page is full when limit of them came).
func chained(evs []eventstore.Linked) int {
	n := 0
	for _, ev := range evs {
		if ev.Pos > 0 {
			n++
		}
	}
	return n
}
