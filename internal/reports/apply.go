package reports

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// The projection's SQL. Deltas arrive as parallel arrays and are applied
// with one multi-row upsert per table; rows are sorted by key first so
// that concurrent batches lock rows in the same order.
const (
	markApplied = `
	INSERT INTO projector_applied (org_id, event_seq, applied_at)
	SELECT o, s, $3 FROM unnest($1::uuid[], $2::bigint[]) AS t(o, s)
	ON CONFLICT DO NOTHING
	RETURNING org_id, event_seq`

	upsertDaily = `
	INSERT INTO daily_cash_balances AS d (org_id, property_id, business_date,
		cash_received, bank_received, cash_expenses, bank_expenses,
		pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
		approved_count, pending_count, counted_closing, counted_version, updated_at)
	SELECT o, p, dt, cr, br, ce, be, pcr, pbr, pce, pbe, ac, pc, cc, cv, $16
	FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
		$8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::int[], $13::int[], $14::bigint[], $15::int[])
		AS t(o, p, dt, cr, br, ce, be, pcr, pbr, pce, pbe, ac, pc, cc, cv)
	ON CONFLICT (org_id, property_id, business_date) DO UPDATE SET
		cash_received = d.cash_received + EXCLUDED.cash_received,
		bank_received = d.bank_received + EXCLUDED.bank_received,
		cash_expenses = d.cash_expenses + EXCLUDED.cash_expenses,
		bank_expenses = d.bank_expenses + EXCLUDED.bank_expenses,
		pending_cash_received = d.pending_cash_received + EXCLUDED.pending_cash_received,
		pending_bank_received = d.pending_bank_received + EXCLUDED.pending_bank_received,
		pending_cash_expenses = d.pending_cash_expenses + EXCLUDED.pending_cash_expenses,
		pending_bank_expenses = d.pending_bank_expenses + EXCLUDED.pending_bank_expenses,
		approved_count = d.approved_count + EXCLUDED.approved_count,
		pending_count = d.pending_count + EXCLUDED.pending_count,
		counted_closing = CASE WHEN EXCLUDED.counted_version > d.counted_version THEN EXCLUDED.counted_closing ELSE d.counted_closing END,
		counted_version = GREATEST(d.counted_version, EXCLUDED.counted_version),
		updated_at = EXCLUDED.updated_at`

	upsertMonthly = `
	INSERT INTO monthly_cash_balances AS m (org_id, property_id, month,
		cash_received, bank_received, cash_expenses, bank_expenses,
		pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
		approved_count, pending_count, updated_at)
	SELECT o, p, dt, cr, br, ce, be, pcr, pbr, pce, pbe, ac, pc, $14
	FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
		$8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::int[], $13::int[])
		AS t(o, p, dt, cr, br, ce, be, pcr, pbr, pce, pbe, ac, pc)
	ON CONFLICT (org_id, property_id, month) DO UPDATE SET
		cash_received = m.cash_received + EXCLUDED.cash_received,
		bank_received = m.bank_received + EXCLUDED.bank_received,
		cash_expenses = m.cash_expenses + EXCLUDED.cash_expenses,
		bank_expenses = m.bank_expenses + EXCLUDED.bank_expenses,
		pending_cash_received = m.pending_cash_received + EXCLUDED.pending_cash_received,
		pending_bank_received = m.pending_bank_received + EXCLUDED.pending_bank_received,
		pending_cash_expenses = m.pending_cash_expenses + EXCLUDED.pending_cash_expenses,
		pending_bank_expenses = m.pending_bank_expenses + EXCLUDED.pending_bank_expenses,
		approved_count = m.approved_count + EXCLUDED.approved_count,
		pending_count = m.pending_count + EXCLUDED.pending_count,
		updated_at = EXCLUDED.updated_at`
)

// applier writes batches of events into the projection.
type applier struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

type eventRef struct {
	org domain.ID
	seq int64
}

// apply applies the events not applied before, all in one transaction, and
// returns how many were new. changes[i] is the effect of events[i].
func (a *applier) apply(ctx context.Context, events []domain.Event, effects [][]change) (int, error) {
	now := a.now().UTC()
	orgs := make([]pgtype.UUID, len(events))
	seqs := make([]int64, len(events))
	order := make([]int, len(events))
	for i := range events {
		order[i] = i
	}
	// Lock applied-record keys in one global order too.
	slices.SortFunc(order, func(x, y int) int {
		if c := slices.Compare(events[x].OrgID[:], events[y].OrgID[:]); c != 0 {
			return c
		}
		return cmp.Compare(events[x].Sequence, events[y].Sequence)
	})
	for i, j := range order {
		orgs[i] = pgtype.UUID{Bytes: events[j].OrgID, Valid: true}
		seqs[i] = events[j].Sequence
	}
	applied := 0
	err := postgres.WithTx(ctx, a.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, markApplied, orgs, seqs, now)
		if err != nil {
			return fmt.Errorf("mark applied: %w", err)
		}
		fresh := make(map[eventRef]bool, len(events))
		for rows.Next() {
			var r eventRef
			var org pgtype.UUID
			if err := rows.Scan(&org, &r.seq); err != nil {
				rows.Close()
				return fmt.Errorf("mark applied: %w", err)
			}
			r.org = org.Bytes
			fresh[r] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("mark applied: %w", postgres.Translate(err))
		}
		applied = len(fresh)
		if applied == 0 {
			return nil
		}
		days := map[dayKey]*change{}
		for i, ev := range events {
			// A batch may carry an event twice (a re-publish next to the
			// original): only its first copy counts.
			ref := eventRef{ev.OrgID, ev.Sequence}
			if !fresh[ref] {
				continue
			}
			delete(fresh, ref)
			for _, c := range effects[i] {
				cur := days[c.key]
				if cur == nil {
					cur = &change{key: c.key}
					days[c.key] = cur
				}
				cur.flows.add(c.flows, 1)
				if c.counted != nil && c.countedVersion > cur.countedVersion {
					cur.counted, cur.countedVersion = c.counted, c.countedVersion
				}
			}
		}
		if len(days) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		b.Queue(upsertDaily, dailyArgs(days, now)...)
		if margs := monthlyArgs(days, now); len(margs[0].([]pgtype.UUID)) > 0 {
			b.Queue(upsertMonthly, margs...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("upsert balances: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return applied, nil
}

type rowArrays struct {
	orgs, props                        []pgtype.UUID
	dates                              []time.Time
	cr, br, ce, be, pcr, pbr, pce, pbe []int64
	ac, pc                             []int32
}

func (r *rowArrays) append(org, prop domain.ID, date domain.Date, f Flows) {
	r.orgs = append(r.orgs, pgtype.UUID{Bytes: org, Valid: true})
	r.props = append(r.props, pgtype.UUID{Bytes: prop, Valid: true})
	r.dates = append(r.dates, date.Time())
	r.cr, r.br, r.ce, r.be = append(r.cr, f.CashReceived), append(r.br, f.BankReceived), append(r.ce, f.CashExpenses), append(r.be, f.BankExpenses)
	r.pcr, r.pbr = append(r.pcr, f.PendingCashReceived), append(r.pbr, f.PendingBankReceived)
	r.pce, r.pbe = append(r.pce, f.PendingCashExpenses), append(r.pbe, f.PendingBankExpenses)
	r.ac, r.pc = append(r.ac, int32(f.ApprovedCount)), append(r.pc, int32(f.PendingCount))
}

func (r *rowArrays) args() []any {
	return []any{r.orgs, r.props, r.dates, r.cr, r.br, r.ce, r.be, r.pcr, r.pbr, r.pce, r.pbe, r.ac, r.pc}
}

func compareKeys(a, b dayKey) int {
	if c := slices.Compare(a.org[:], b.org[:]); c != 0 {
		return c
	}
	if c := slices.Compare(a.property[:], b.property[:]); c != 0 {
		return c
	}
	return a.date.Compare(b.date)
}

func dailyArgs(days map[dayKey]*change, now time.Time) []any {
	keys := make([]dayKey, 0, len(days))
	for k := range days {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	var r rowArrays
	counted := make([]*int64, 0, len(keys))
	versions := make([]int32, 0, len(keys))
	for _, k := range keys {
		c := days[k]
		r.append(k.org, k.property, k.date, c.flows)
		counted = append(counted, c.counted)
		versions = append(versions, int32(c.countedVersion))
	}
	return append(r.args(), counted, versions, now)
}

func monthlyArgs(days map[dayKey]*change, now time.Time) []any {
	months := map[dayKey]*Flows{}
	for k, c := range days {
		if c.flows.IsZero() {
			continue // a cash count moves no money
		}
		mk := dayKey{k.org, k.property, k.date.MonthStart()}
		f := months[mk]
		if f == nil {
			f = &Flows{}
			months[mk] = f
		}
		f.add(c.flows, 1)
	}
	keys := make([]dayKey, 0, len(months))
	for k := range months {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	var r rowArrays
	for _, k := range keys {
		r.append(k.org, k.property, k.date, *months[k])
	}
	return append(r.args(), now)
}

// prune deletes applied-event records older than before, in chunks, and
// returns how many it deleted.
func (a *applier) prune(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := a.pool.Exec(ctx, `
			DELETE FROM projector_applied WHERE ctid = ANY (ARRAY(
				SELECT ctid FROM projector_applied WHERE applied_at < $1 LIMIT 10000))`, before)
		if err != nil {
			return total, fmt.Errorf("prune applied events: %w", postgres.Translate(err))
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}
