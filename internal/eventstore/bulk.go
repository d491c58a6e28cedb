package eventstore

import (
	"github.com/jackc/pgx/v5/pgtype"

	"hmp/internal/domain"
)

// BulkColumns are the columns a bulk load (hmp seed) copies into the event
// table, in the order of BulkRow's values. seq and tx_id are left to the
// table (identity and the writing transaction) exactly as on append, so
// events copied in order get increasing sequences and the relay's cursor
// can be placed after their transactions.
var BulkColumns = []string{"org_id", "id", "event_type", "entity_type", "entity_id", "aggregate_version",
	"property_id", "user_id", "occurred_at", "metadata"}

// BulkRow returns the row of ev for BulkColumns: the values Queue and
// AppendTx insert.
func BulkRow(ev domain.Event) []any {
	var prop pgtype.UUID
	if ev.PropertyID != nil {
		prop = pgtype.UUID{Bytes: *ev.PropertyID, Valid: true}
	}
	return []any{pgtype.UUID{Bytes: ev.OrgID, Valid: true}, pgtype.UUID{Bytes: ev.ID, Valid: true}, string(ev.Type),
		string(ev.EntityType), pgtype.UUID{Bytes: ev.EntityID, Valid: true}, int32(ev.AggregateVersion), prop,
		pgtype.UUID{Bytes: ev.UserID, Valid: true}, ev.Timestamp, []byte(ev.Metadata)}
}

// PlaceRelayAfterSQL moves the relay's cursor and horizon past every
// transaction committed before the statement runs: a bulk load that wrote
// its history and projections itself runs it last, so that a started relay
// publishes (and the projector applies) none of it again. It must only run
// while no writer is active.
const PlaceRelayAfterSQL = `
	UPDATE relay_state SET cursor_tx = pg_current_xact_id(), cursor_seq = 0,
		horizon = GREATEST(horizon, pg_current_xact_id()), updated_at = now()
	WHERE id = 1`
