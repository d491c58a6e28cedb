package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// The hash chain. Each event's content hash covers its envelope and its
// metadata in a canonical form that survives the trip through jsonb (which
// reorders keys and drops insignificant whitespace), so verify can recompute
// it from the stored row. Its link hash is sha256(prev_hash || content_hash)
// where prev_hash is the link hash of the organization's previous event in
// the chain (empty for the first). The link is computed by the database in
// the appending statement, under the lock of the organization's chain head.

// contentPrefix versions the canonical form.
const contentPrefix = "hmp-event/1\n"

// ContentHash returns the SHA-256 of ev's canonical content: every field
// the store keeps (organization, id, type, entity, version, property,
// user, time to the microsecond) and the metadata with sorted keys.
func ContentHash(ev domain.Event) ([32]byte, error) {
	meta, err := canonicalJSON(ev.Metadata)
	if err != nil {
		return [32]byte{}, fmt.Errorf("canonical metadata of event %s: %w", ev.ID, err)
	}
	prop := ""
	if ev.PropertyID != nil {
		prop = ev.PropertyID.String()
	}
	var b bytes.Buffer
	b.WriteString(contentPrefix)
	for _, kv := range [][2]string{
		{"org", ev.OrgID.String()}, {"id", ev.ID.String()}, {"type", string(ev.Type)},
		{"entity_type", string(ev.EntityType)}, {"entity_id", ev.EntityID.String()},
		{"version", strconv.Itoa(ev.AggregateVersion)}, {"property", prop}, {"user", ev.UserID.String()},
		{"at", storedTime(ev.Timestamp).Format(time.RFC3339Nano)},
	} {
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(kv[1])
		b.WriteByte('\n')
	}
	b.WriteString("metadata=")
	b.Write(meta)
	return sha256.Sum256(b.Bytes()), nil
}

// Link returns the link hash of an event: sha256(prev || content). The
// appending statement computes the same in SQL.
func Link(prev []byte, content [32]byte) [32]byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(content[:])
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// storedTime is t as a timestamptz column keeps it: UTC, microseconds.
// Appends store exactly this value so that the hash and the row agree.
func storedTime(t time.Time) time.Time { return t.UTC().Round(time.Microsecond) }

// canonicalJSON re-encodes a JSON document with sorted object keys, no
// insignificant whitespace, numbers as written and no HTML escaping: the
// same bytes for the metadata a writer sends and the jsonb text read back.
func canonicalJSON(raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return []byte("null"), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // maps encode with sorted keys
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Chain builds the chain of one organization's events for a bulk load
// (hmp seed), which writes events with COPY instead of appending them: the
// rows carry the same chain columns an append would have written, and
// HeadRow is the organization's chain head after them. The zero value is an
// empty chain.
type Chain struct {
	pos  int64
	prev []byte
	hash []byte
	last time.Time
}

// BulkRow returns the row of ev for BulkColumns, as the next link of c.
func (c *Chain) BulkRow(ev domain.Event) ([]any, error) {
	content, err := ContentHash(ev)
	if err != nil {
		return nil, err
	}
	prev := c.hash
	if prev == nil {
		prev = []byte{}
	}
	link := Link(prev, content)
	c.pos++
	c.prev, c.hash = prev, link[:]
	if at := storedTime(ev.Timestamp); at.After(c.last) {
		c.last = at
	}
	return append(bulkRow(ev), c.pos, content[:], prev, c.hash), nil
}

// HeadColumns are the columns of the chain heads table, in the order of
// HeadRow's values.
var HeadColumns = []string{"org_id", "pos", "prev_hash", "hash", "last_at"}

// HeadRow returns the chain head row of org after the events c chained
// (last_at: the latest of their times, which later appends do not go
// below); nil when c chained none.
func (c *Chain) HeadRow(org domain.ID) []any {
	if c.pos == 0 {
		return nil
	}
	return []any{uuidArg(org), c.pos, c.prev, c.hash, c.last}
}

// Linked is an event with its place in its organization's chain (0 for
// an event written before the chain existed).
type Linked struct {
	domain.Event
	Pos int64
}

// ChainAfter returns up to limit events of an organization after chain
// position after, in chain order: the order in which the organization's
// writes committed. Visible positions are always a gapless prefix (a
// position is handed out only after the previous holder committed), so a
// reader that stops at position X has seen every event up to X. With
// after 0 every pre-chain event (Pos 0) comes first, in sequence order
// and beyond limit, so that paging by the last Pos never repeats one.
func ChainAfter(ctx context.Context, q Querier, org domain.ID, after int64, limit int) ([]Linked, error) {
	const cols = `SELECT seq, id, event_type, org_id, property_id, user_id, entity_type, entity_id,
		       aggregate_version, occurred_at, metadata, COALESCE(chain_pos, 0) FROM events `
	var out []Linked
	if after == 0 {
		rows, err := q.Query(ctx, cols+`WHERE org_id = $1 AND chain_pos IS NULL ORDER BY seq`, org)
		if err != nil {
			return nil, fmt.Errorf("pre-chain events: %w", postgres.Translate(err))
		}
		if out, err = pgx.CollectRows(rows, scanLinked); err != nil {
			return nil, fmt.Errorf("pre-chain events: %w", postgres.Translate(err))
		}
	}
	rows, err := q.Query(ctx, cols+`WHERE org_id = $1 AND chain_pos > $2 ORDER BY chain_pos LIMIT $3`, org, after, limit)
	if err != nil {
		return nil, fmt.Errorf("chain after %d: %w", after, postgres.Translate(err))
	}
	chained, err := pgx.CollectRows(rows, scanLinked)
	if err != nil {
		return nil, fmt.Errorf("chain after %d: %w", after, postgres.Translate(err))
	}
	return append(out, chained...), nil
}

// BySeq returns the events of an organization with the given sequences,
// in chain order.
func BySeq(ctx context.Context, q Querier, org domain.ID, seqs []int64) ([]Linked, error) {
	rows, err := q.Query(ctx, `
		SELECT seq, id, event_type, org_id, property_id, user_id, entity_type, entity_id,
		       aggregate_version, occurred_at, metadata, COALESCE(chain_pos, 0)
		FROM events WHERE org_id = $1 AND seq = ANY ($2)
		ORDER BY COALESCE(chain_pos, 0), seq`, org, seqs)
	if err != nil {
		return nil, fmt.Errorf("events by seq: %w", postgres.Translate(err))
	}
	out, err := pgx.CollectRows(rows, scanLinked)
	if err != nil {
		return nil, fmt.Errorf("events by seq: %w", postgres.Translate(err))
	}
	return out, nil
}

func scanLinked(row pgx.CollectableRow) (Linked, error) {
	var (
		l    Linked
		meta []byte
	)
	err := row.Scan(&l.Sequence, &l.ID, &l.Type, &l.OrgID, &l.PropertyID, &l.UserID, &l.EntityType, &l.EntityID,
		&l.AggregateVersion, &l.Timestamp, &meta, &l.Pos)
	l.Metadata, l.Version = meta, domain.EventVersion
	return l, err
}
