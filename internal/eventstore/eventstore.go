// Package eventstore owns the append-only event table: every state change
// of a revenue, expense, daily approval or cash count appends one event in
// the same transaction as the change. The table doubles as the outbox the
// relay publishes from, and as the audit trail the history API reads.
package eventstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the event table.
func Migrations() postgres.MigrationSet {
	return postgres.EmbeddedSet("eventstore", migrationFiles, partitionMigration(), partitionGuardMigration())
}

// Position is where an appended event landed: its sequence in the store and
// the id of the transaction that wrote it.
type Position struct {
	Seq  int64
	TxID uint64
}

// insertEvent appends one event as the next link of its organization's
// chain: the first statement moves the chain head (creating it for the
// organization's first event) and returns the link, the second stores the
// event with it. The head's row lock, held until the write commits, gives
// the appends of one organization one order; those of different
// organizations do not meet. $11 is the event's content hash. The head
// moves only for an event stamped by the rules of Stamp (not before the
// last event, after the sealed moment); otherwise nothing is inserted and
// the append fails (errUnstamped).
const insertEvent = `
	WITH head AS (
		INSERT INTO event_chain_heads AS h (org_id, pos, prev_hash, hash, last_at)
		VALUES ($1, 1, '\x', sha256($11::bytea), $9)
		ON CONFLICT (org_id) DO UPDATE SET pos = h.pos + 1, prev_hash = h.hash, hash = sha256(h.hash || $11::bytea), last_at = $9
		WHERE (h.last_at IS NULL OR h.last_at <= $9) AND (h.sealed_at IS NULL OR h.sealed_at < $9)
		RETURNING pos, prev_hash, hash)
	INSERT INTO events (org_id, id, event_type, entity_type, entity_id, aggregate_version,
	                    property_id, user_id, occurred_at, metadata, chain_pos, content_hash, prev_hash, hash)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, head.pos, $11, head.prev_hash, head.hash FROM head
	RETURNING seq, tx_id::text::bigint`

// Queue adds the append of ev to b, so that it commits with the caller's
// other statements in b. When the batch runs, pos receives the event's
// position. If another writer already appended this entity version the
// batch fails with a unique violation, see IsVersionConflict. The append
// holds the organization's chain head until the batch's transaction ends.
func Queue(b *pgx.Batch, ev domain.Event, pos *Position) error {
	a, err := args(ev)
	if err != nil {
		return err
	}
	b.Queue(insertEvent, a...).QueryRow(func(row pgx.Row) error {
		var p Position
		if err := row.Scan(&p.Seq, &p.TxID); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return unstamped(ev)
			}
			return err
		}
		if pos != nil {
			*pos = p
		}
		return nil
	})
	return nil
}

// AppendTx appends ev inside tx, as the next link of its organization's
// chain. Other appends of the organization wait for tx to end, so callers
// append late in their transactions.
func AppendTx(ctx context.Context, tx pgx.Tx, ev domain.Event) (Position, error) {
	var p Position
	a, err := args(ev)
	if err != nil {
		return p, err
	}
	if err := tx.QueryRow(ctx, insertEvent, a...).Scan(&p.Seq, &p.TxID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return p, unstamped(ev)
		}
		if IsVersionConflict(err) {
			return p, domain.Conflictf("%s %s was changed concurrently; reload and retry", ev.EntityType, ev.EntityID)
		}
		return p, fmt.Errorf("append event: %w", postgres.Translate(err))
	}
	return p, nil
}

// unstamped is the error of an append refused for its time: the event
// was not stamped under the chain head (Stamp), so its time would not
// follow the chain or would change an answer already given.
func unstamped(ev domain.Event) error {
	return fmt.Errorf("append event %s: its time %s is before its organization's last event or not after a moment already read; stamp it with eventstore.Stamp",
		ev.ID, storedTime(ev.Timestamp).Format(time.RFC3339Nano))
}

// IsVersionConflict reports whether err is a lost race for an entity
// version.
func IsVersionConflict(err error) bool {
	return postgres.IsUniqueViolation(err, "events_entity_version")
}

func args(ev domain.Event) ([]any, error) {
	content, err := ContentHash(ev)
	if err != nil {
		return nil, err
	}
	return []any{ev.OrgID, ev.ID, ev.Type, ev.EntityType, ev.EntityID, ev.AggregateVersion,
		ev.PropertyID, ev.UserID, storedTime(ev.Timestamp), []byte(ev.Metadata), content[:]}, nil
}

// Store reads the event history.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Query selects events of one organization, oldest first.
type Query struct {
	OrgID domain.ID
	// EntityType and EntityID narrow to one entity type / entity; zero: all.
	EntityType domain.EntityType
	EntityID   domain.ID
	// PropertyID narrows to one property; zero: all.
	PropertyID domain.ID
	// OnlyProperties, when not nil, limits the result to events of these
	// properties (a MANAGER's assignments).
	OnlyProperties []domain.ID
	// After is a cursor: the sequence of the last event of the previous page.
	After int64
	// Limit is the page size, 1..1000; default 100.
	Limit int
}

const selectEvents = `
	SELECT seq, id, event_type, org_id, property_id, user_id, entity_type, entity_id,
	       aggregate_version, occurred_at, metadata
	FROM events
	WHERE org_id = $1
	  AND ($2 = '' OR entity_type = $2)
	  AND ($3::uuid IS NULL OR entity_id = $3)
	  AND ($4::uuid IS NULL OR property_id = $4)
	  AND ($5::uuid[] IS NULL OR property_id = ANY ($5))
	  AND seq > $6
	ORDER BY seq
	LIMIT $7`

// List returns a page of events and the cursor of the next page ("" when
// this page is the last).
func (s *Store) List(ctx context.Context, q Query) ([]domain.Event, string, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var entityID, propertyID *domain.ID
	if !q.EntityID.IsZero() {
		entityID = &q.EntityID
	}
	if !q.PropertyID.IsZero() {
		propertyID = &q.PropertyID
	}
	// nil means no filter (SQL NULL); an empty list means no property.
	var only any
	if q.OnlyProperties != nil {
		only = q.OnlyProperties
	}
	rows, err := s.pool.Query(ctx, selectEvents, q.OrgID, string(q.EntityType), entityID, propertyID, only, q.After, q.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", postgres.Translate(err))
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", postgres.Translate(err))
	}
	next := ""
	if len(events) > q.Limit {
		events = events[:q.Limit]
		next = strconv.FormatInt(events[len(events)-1].Sequence, 10)
	}
	return events, next, nil
}

// scanEvent reads one row of the column list used by this package's
// queries into an envelope.
func scanEvent(row pgx.CollectableRow) (domain.Event, error) {
	var (
		e    domain.Event
		meta []byte
	)
	err := row.Scan(&e.Sequence, &e.ID, &e.Type, &e.OrgID, &e.PropertyID, &e.UserID, &e.EntityType, &e.EntityID,
		&e.AggregateVersion, &e.Timestamp, &meta)
	e.Metadata = meta
	e.Version = domain.EventVersion
	return e, err
}

// Querier is a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// EntityEvents returns every event of one entity, in version order: what
// a fold reads.
func EntityEvents(ctx context.Context, q Querier, orgID domain.ID, typ domain.EntityType, id domain.ID) ([]domain.Event, error) {
	rows, err := q.Query(ctx, `
		SELECT seq, id, event_type, org_id, property_id, user_id, entity_type, entity_id,
		       aggregate_version, occurred_at, metadata
		FROM events WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3
		ORDER BY aggregate_version`, orgID, typ, id)
	if err != nil {
		return nil, fmt.Errorf("entity events: %w", postgres.Translate(err))
	}
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("entity events: %w", postgres.Translate(err))
	}
	return events, nil
}
