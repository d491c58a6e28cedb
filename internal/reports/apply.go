package reports

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// applyBatch is the whole effect of a batch in ONE statement (one round
// trip, one implicit transaction): record the events as applied, keep the
// changes of those that were new, and fold them into the daily rows and
// the monthly rollups with one multi-row upsert each. A concurrent batch
// holding the same event waits on its applied record and then skips it,
// so every event takes effect exactly once. Rows are fed in key order so
// that concurrent batches lock them in the same order.
//
// The arithmetic is checked: the sums are numeric and the additions
// bigint, and PostgreSQL fails a statement whose result leaves bigint
// (SQLSTATE 22003) instead of wrapping; the whole batch then changes
// nothing. Under the volume cap (domain.MaxOrgVolumeCents) no event can do
// that; one that does anyway (rows written before the cap, or by hand) is
// singled out by the projector and dead-lettered, and the rest of its
// batch applied.
const applyBatch = `
WITH applied AS (
	INSERT INTO projector_applied (org_id, event_seq, applied_at)
	SELECT o, s, $1 FROM unnest($2::uuid[], $3::bigint[]) AS t(o, s) ORDER BY o, s
	ON CONFLICT DO NOTHING
	RETURNING org_id, event_seq
), fresh AS (
	-- One row per change: which flow column it moves (0-3 approved cash in,
	-- bank in, cash out, bank out; 4-7 the same pending; -1 a cash count)
	-- by a signed amount; the row count moves by the amount's sign.
	SELECT c.o, c.p, c.dt,
		CASE WHEN c.col = 0 THEN c.amt ELSE 0 END AS cr, CASE WHEN c.col = 1 THEN c.amt ELSE 0 END AS br,
		CASE WHEN c.col = 2 THEN c.amt ELSE 0 END AS ce, CASE WHEN c.col = 3 THEN c.amt ELSE 0 END AS be,
		CASE WHEN c.col = 4 THEN c.amt ELSE 0 END AS pcr, CASE WHEN c.col = 5 THEN c.amt ELSE 0 END AS pbr,
		CASE WHEN c.col = 6 THEN c.amt ELSE 0 END AS pce, CASE WHEN c.col = 7 THEN c.amt ELSE 0 END AS pbe,
		CASE WHEN c.col BETWEEN 0 AND 3 THEN sign(c.amt) ELSE 0 END AS ac,
		CASE WHEN c.col BETWEEN 4 AND 7 THEN sign(c.amt) ELSE 0 END AS pc,
		CASE WHEN c.col = -1 THEN c.amt END AS cc, c.cv
	FROM unnest($4::uuid[], $5::bigint[], $6::uuid[], $7::date[], $8::int[], $9::bigint[], $10::int[])
		AS c(o, s, p, dt, col, amt, cv)
	JOIN applied a ON a.org_id = c.o AND a.event_seq = c.s
), daily AS (
	INSERT INTO daily_cash_balances AS r (org_id, property_id, business_date, ` + flowColumns + `,
		counted_closing, counted_version, updated_at)
	SELECT o, p, dt, sum(cr), sum(br), sum(ce), sum(be), sum(pcr), sum(pbr), sum(pce), sum(pbe),
		sum(ac)::int, sum(pc)::int,
		(array_agg(cc ORDER BY cv DESC) FILTER (WHERE cv > 0))[1], max(cv), $1
	FROM fresh GROUP BY o, p, dt ORDER BY o, p, dt
	ON CONFLICT (org_id, property_id, business_date) DO UPDATE SET ` + addFlows + `,
		counted_closing = CASE WHEN EXCLUDED.counted_version > r.counted_version THEN EXCLUDED.counted_closing ELSE r.counted_closing END,
		counted_version = GREATEST(r.counted_version, EXCLUDED.counted_version)
	RETURNING 1
), monthly AS (
	INSERT INTO monthly_cash_balances AS r (org_id, property_id, month, ` + flowColumns + `, updated_at)
	SELECT o, p, date_trunc('month', dt)::date, sum(cr), sum(br), sum(ce), sum(be), sum(pcr), sum(pbr), sum(pce), sum(pbe),
		sum(ac)::int, sum(pc)::int, $1
	FROM fresh WHERE cc IS NULL -- a cash count moves no money
	GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
	ON CONFLICT (org_id, property_id, month) DO UPDATE SET ` + addFlows + `
	RETURNING 1
)
SELECT org_id, event_seq FROM applied`

// applier writes batches of events into the projection.
type applier struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

type eventRef struct {
	org domain.ID
	seq int64
}

// apply applies the events not applied before and returns which were new.
// effects[i] is the effect of events[i]. A batch may carry an event twice
// (a re-publish next to its original): only its first copy counts.
func (a *applier) apply(ctx context.Context, events []domain.Event, effects [][]change) (map[eventRef]bool, error) {
	now := a.now().UTC()
	first := make(map[eventRef]int, len(events))
	refs := make([]eventRef, 0, len(events))
	for i, ev := range events {
		r := eventRef{ev.OrgID, ev.Sequence}
		if _, dup := first[r]; !dup {
			first[r] = i
			refs = append(refs, r)
		}
	}
	slices.SortFunc(refs, func(x, y eventRef) int {
		if c := slices.Compare(x.org[:], y.org[:]); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	orgs := make([]pgtype.UUID, len(refs))
	seqs := make([]int64, len(refs))
	var c changeArrays
	for i, r := range refs {
		orgs[i], seqs[i] = pgtype.UUID{Bytes: r.org, Valid: true}, r.seq
		for _, ch := range effects[first[r]] {
			c.append(r, ch)
		}
	}
	args := append([]any{now, orgs, seqs}, c.args()...)
	fresh := make(map[eventRef]bool, len(refs))
	err := postgres.Retry(ctx, func() error {
		clear(fresh)
		rows, err := a.pool.Query(ctx, applyBatch, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var org pgtype.UUID
			var seq int64
			if err := rows.Scan(&org, &seq); err != nil {
				rows.Close()
				return err
			}
			fresh[eventRef{org.Bytes, seq}] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("apply batch: %w", err)
	}
	return fresh, nil
}

// changeArrays are the parallel arrays of the change rows of a batch: one
// row per moved flow column (a change moves exactly one) or cash count.
type changeArrays struct {
	orgs, props []pgtype.UUID
	seqs        []int64
	dates       []time.Time
	cols        []int32
	amounts     []int64
	versions    []int32
}

func (a *changeArrays) append(r eventRef, c change) {
	col, amt := int32(-1), int64(0)
	if c.counted != nil {
		amt = *c.counted
	} else {
		f := c.flows
		for i, v := range [...]int64{f.CashReceived, f.BankReceived, f.CashExpenses, f.BankExpenses,
			f.PendingCashReceived, f.PendingBankReceived, f.PendingCashExpenses, f.PendingBankExpenses} {
			if v != 0 {
				col, amt = int32(i), v
				break
			}
		}
		if col < 0 {
			return // a change that moves nothing
		}
	}
	a.orgs = append(a.orgs, pgtype.UUID{Bytes: r.org, Valid: true})
	a.seqs = append(a.seqs, r.seq)
	a.props = append(a.props, pgtype.UUID{Bytes: c.key.property, Valid: true})
	a.dates = append(a.dates, c.key.date.Time())
	a.cols = append(a.cols, col)
	a.amounts = append(a.amounts, amt)
	a.versions = append(a.versions, int32(c.countedVersion))
}

func (a *changeArrays) args() []any {
	return []any{a.orgs, a.seqs, a.props, a.dates, a.cols, a.amounts, a.versions}
}

// prune deletes applied-event records older than before, in chunks, and
// returns how many it deleted. Chunks are picked by key, not ctid: a ctid
// is unique only within one partition.
func (a *applier) prune(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := a.pool.Exec(ctx, `
			DELETE FROM projector_applied a
			USING (SELECT org_id, event_seq FROM projector_applied WHERE applied_at < $1 LIMIT 10000) old
			WHERE a.org_id = old.org_id AND a.event_seq = old.event_seq`, before)
		if err != nil {
			return total, fmt.Errorf("prune applied events: %w", postgres.Translate(err))
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}
