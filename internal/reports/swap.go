package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// The columns compared between shadow and live rows (updated_at is not).
const (
	dailyValues = `cash_received, bank_received, cash_expenses, bank_expenses, pending_cash_received,
		pending_bank_received, pending_cash_expenses, pending_bank_expenses, approved_count, pending_count,
		counted_closing, counted_version`
	monthlyValues = `cash_received, bank_received, cash_expenses, bank_expenses, pending_cash_received,
		pending_bank_received, pending_cash_expenses, pending_bank_expenses, approved_count, pending_count`
)

// shadowTable is one live table of the cash book and its shadow.
type shadowTable struct {
	live, shadow, key, values string
	cols                      []string
	zeroFrom, zeroTo          int // the value columns of a row, to skip empty ones
}

var shadowTables = []shadowTable{
	{live: "daily_cash_balances", shadow: "rebuild_daily", key: "business_date", values: dailyValues, cols: DailyColumns, zeroFrom: 3, zeroTo: 15},
	{live: "monthly_cash_balances", shadow: "rebuild_monthly", key: "month", values: monthlyValues, cols: MonthlyColumns, zeroFrom: 3, zeroTo: 13},
}

// Rebuilding the cash book (package rebuild) folds the events into shadow
// tables and swaps the differences in: StageShadow fills the shadows,
// LockCashBook keeps the other writers out, SwapShadow makes the live rows
// equal to the shadows. All three run in the rebuild's one transaction.

// StageShadow writes the fold's rows of the scope (an organization, or
// one of its properties: prop zero means all) into temporary shadow tables
// of tx, dropped at commit. again says tx staged before: the shadows are
// emptied and filled anew. Rows that move nothing are left out: they equal
// no row.
func StageShadow(ctx context.Context, tx pgx.Tx, f *Fold, prop domain.ID, now time.Time, again bool) error {
	daily, monthly := f.Rows(now)
	for i, rows := range [][][]any{daily, monthly} {
		p := shadowTables[i]
		keep := rows[:0]
		for _, r := range rows {
			if !prop.IsZero() && r[1].(pgtype.UUID).Bytes != prop {
				continue
			}
			if empty(r[p.zeroFrom:p.zeroTo]) {
				continue
			}
			keep = append(keep, r)
		}
		sql := fmt.Sprintf(`CREATE TEMP TABLE %s (LIKE %s INCLUDING DEFAULTS) ON COMMIT DROP`, p.shadow, p.live)
		if again {
			sql = `TRUNCATE ` + p.shadow
		}
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("create shadow %s: %w", p.shadow, postgres.Translate(err))
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{p.shadow}, p.cols, pgx.CopyFromRows(keep)); err != nil {
			return fmt.Errorf("stage shadow %s: %w", p.shadow, postgres.Translate(err))
		}
	}
	return nil
}

// LockCashBook locks the live tables until tx ends against every other
// writer (the projector, corrections), not against readers (ACCESS SHARE
// passes SHARE ROW EXCLUSIVE). Locking a partitioned table locks its
// partitions.
func LockCashBook(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `LOCK TABLE daily_cash_balances, monthly_cash_balances IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock cash book: %w", postgres.Translate(err))
	}
	return nil
}

// SwapShadow makes the live rows of the scope (org, and prop unless zero)
// equal to the shadow rows StageShadow wrote in tx: deletes live rows the
// shadow lacks (unless they move nothing), inserts and updates the rest
// where they differ. Call it after LockCashBook in the same tx; it answers
// the number of live rows changed. It names no partition: on a partitioned
// table the statements route by org_id.
func SwapShadow(ctx context.Context, tx pgx.Tx, org, prop domain.ID) (int, error) {
	changed := 0
	var propArg *domain.ID
	if !prop.IsZero() {
		propArg = &prop
	}
	for _, p := range shadowTables {
		tag, err := tx.Exec(ctx, fmt.Sprintf(`
			DELETE FROM %[1]s l
			WHERE l.org_id = $1 AND ($2::uuid IS NULL OR l.property_id = $2)
			  AND NOT EXISTS (SELECT 1 FROM %[2]s s WHERE s.org_id = l.org_id AND s.property_id = l.property_id AND s.%[3]s = l.%[3]s)
			  AND (%[4]s) IS DISTINCT FROM (%[5]s)`, p.live, p.shadow, p.key, p.values, zeros(p)), org, propArg)
		if err != nil {
			return 0, fmt.Errorf("swap %s: %w", p.live, postgres.Translate(err))
		}
		changed += int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, fmt.Sprintf(`
			INSERT INTO %[1]s SELECT * FROM %[2]s
			ON CONFLICT (org_id, property_id, %[3]s) DO UPDATE SET (%[4]s, updated_at) = ROW(%[6]s, EXCLUDED.updated_at)
			WHERE (%[5]s) IS DISTINCT FROM (%[6]s)`, p.live, p.shadow, p.key, p.values,
			prefixed(p, p.live), prefixed(p, "EXCLUDED")))
		if err != nil {
			return 0, fmt.Errorf("swap %s: %w", p.live, postgres.Translate(err))
		}
		changed += int(tag.RowsAffected())
	}
	return changed, nil
}

func empty(vals []any) bool {
	for _, v := range vals {
		switch x := v.(type) {
		case int64:
			if x != 0 {
				return false
			}
		case int32:
			if x != 0 {
				return false
			}
		case pgtype.Int8:
			if x.Valid {
				return false
			}
		}
	}
	return true
}

// zeros is the value list of a row that moves nothing.
func zeros(p shadowTable) string {
	if p.live == "daily_cash_balances" {
		return "0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL::bigint, 0"
	}
	return "0, 0, 0, 0, 0, 0, 0, 0, 0, 0"
}

// prefixed qualifies each value column with table.
func prefixed(p shadowTable, table string) string {
	out := ""
	for i, c := range p.cols[p.zeroFrom:p.zeroTo] {
		if i > 0 {
			out += ", "
		}
		out += table + "." + c
	}
	return out
}
