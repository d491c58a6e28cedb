package eventstore

import (
	"github.com/jackc/pgx/v5/pgtype"

	"hmp/internal/domain"
)

// BulkColumns are the columns a bulk load (hmp seed) copies into the event
// table, in the order of Chain.BulkRow's values. seq and tx_id are left to
// the table (identity and the writing transaction) exactly as on append, so
// events copied in order get increasing sequences and the relay's cursor
// can be placed after their transactions. The chain columns are computed
// by Chain, as an append would have linked them.
var BulkColumns = []string{"org_id", "id", "event_type", "entity_type", "entity_id", "aggregate_version",
	"property_id", "user_id", "occurred_at", "metadata", "chain_pos", "content_hash", "prev_hash", "hash"}

// bulkRow returns the values Queue and AppendTx insert for ev (without the
// chain columns).
func bulkRow(ev domain.Event) []any {
	var prop pgtype.UUID
	if ev.PropertyID != nil {
		prop = pgtype.UUID{Bytes: *ev.PropertyID, Valid: true}
	}
	return []any{uuidArg(ev.OrgID), uuidArg(ev.ID), string(ev.Type),
		string(ev.EntityType), uuidArg(ev.EntityID), int32(ev.AggregateVersion), prop,
		uuidArg(ev.UserID), storedTime(ev.Timestamp), []byte(ev.Metadata)}
}

func uuidArg(id domain.ID) pgtype.UUID { return pgtype.UUID{Bytes: id, Valid: true} }

// PlaceRelayAfterSQL moves the relay's cursor and horizon past every
// transaction committed before the statement runs: a bulk load that wrote
// its history and projections itself runs it last, so that a started relay
// publishes (and the projector applies) none of it again. It must only run
// while no writer is active.
const PlaceRelayAfterSQL = `
	UPDATE relay_state SET cursor_tx = pg_current_xact_id(), cursor_seq = 0,
		horizon = GREATEST(horizon, pg_current_xact_id()), updated_at = now()
	WHERE id = 1`
