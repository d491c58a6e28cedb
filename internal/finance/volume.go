package finance

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// addVolume adds an amount to its organization's gross volume, kept in 16
// slots (see the migration): it refuses a total past
// domain.MaxOrgVolumeCents (see there why that keeps every report figure
// inside int64), and the write holding this statement then fails as a
// whole. It is queued or run LAST in its transaction: the slot it took
// stays locked until the commit.
const addVolume = `SELECT add_org_volume($1, $2)`

// volumeBound is the constraint name add_org_volume raises with.
const volumeBound = "org_volume_bound"

// counts reports whether a row in state s adds to the volume: only an
// approved or pending state moves money in the reports.
func counts(s domain.Status) bool { return s == domain.Approved || s == domain.Pending }

// execVolume adds the row's amount to the volume in tx, if its new state
// counts.
func execVolume(ctx context.Context, tx pgx.Tx, t *Transaction) error {
	if !counts(t.Status) {
		return nil
	}
	if _, err := tx.Exec(ctx, addVolume, t.OrgID, t.AmountCents); err != nil {
		if overVolume(err) {
			return volumeError(t.AmountCents)
		}
		return fmt.Errorf("add to the organization's volume: %w", postgres.Translate(err))
	}
	return nil
}

// overVolume reports whether err is the volume cap refusing a write.
func overVolume(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && pgErr.ConstraintName == volumeBound
}

func volumeError(amount int64) error {
	return domain.Invalid("body.amountCents", fmt.Sprintf(
		"would take the organization's total volume of approved and pending amounts past %d; no more money can be recorded",
		domain.MaxOrgVolumeCents), amount)
}
