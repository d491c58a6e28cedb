package eventstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// Break is the first broken link of an organization's chain.
type Break struct {
	OrgID domain.ID `json:"orgId"`
	// Seq and EventID name the event where the chain breaks (zero when the
	// break is the chain head or a missing event).
	Seq     int64     `json:"seq,omitempty"`
	EventID domain.ID `json:"eventId"`
	// Pos is the chain position that does not hold.
	Pos int64 `json:"pos"`
	// What says what differs.
	What string `json:"what"`
}

func (b Break) String() string {
	return fmt.Sprintf("org %s: chain position %d (event seq %d, id %s): %s", b.OrgID, b.Pos, b.Seq, b.EventID, b.What)
}

// Verification is what Verify found.
type Verification struct {
	Orgs int `json:"orgs"`
	// Events is the number of chained events checked.
	Events int64 `json:"events"`
	// Unchained counts events written before the chain existed (migration
	// 00004); they are not covered.
	Unchained int64 `json:"unchained"`
	// Breaks holds the first broken link of each broken chain.
	Breaks []Break `json:"breaks"`
	// Heads are the head hashes of the chains checked (hex), when asked
	// for: an operator who records them elsewhere can later tell a
	// rewritten chain from the one they saw.
	Heads map[domain.ID]string `json:"heads,omitempty"`
}

// VerifyOptions narrows and reports a Verify run.
type VerifyOptions struct {
	// OrgID checks one organization; zero: every organization with a
	// chain head or events.
	OrgID domain.ID
	// Heads asks for each chain's head hash in the result.
	Heads bool
	// Progress, when set, is called after each organization.
	Progress func(done int, events int64)
	// Page is the number of events read per query; default 2000.
	Page int
}

// nextVerifyOrg is the least organization after $1 (NULL: the first) that
// has a chain head or events.
const nextVerifyOrg = `
	SELECT org_id FROM (SELECT LEAST(
		(SELECT org_id FROM event_chain_heads WHERE $1::uuid IS NULL OR org_id > $1 ORDER BY org_id LIMIT 1),
		(SELECT org_id FROM events WHERE $1::uuid IS NULL OR org_id > $1 ORDER BY org_id LIMIT 1)) AS org_id) n
	WHERE org_id IS NOT NULL`

// Verify walks the hash chain of each organization in chain order and
// recomputes every link: the content hash from the stored row, the link
// hash from it and the previous link, the positions without a gap, and the
// chain head. It reports the first broken link per organization. It reads
// only (pages of one organization at a time) and runs beside writers:
// events appended meanwhile are checked when the walk reaches them, and
// the head comparison re-reads the head in the walk's last snapshot.
func Verify(ctx context.Context, pool *pgxpool.Pool, o VerifyOptions) (Verification, error) {
	if o.Page <= 0 {
		o.Page = 2000
	}
	var v Verification
	if o.Heads {
		v.Heads = map[domain.ID]string{}
	}
	next := func(after *domain.ID) (domain.ID, bool, error) {
		if !o.OrgID.IsZero() {
			return o.OrgID, after == nil, nil
		}
		// The organizations are those with a chain head (an organization
		// whose events are all gone still has one) and those with events
		// older than the chain: loose index scans over both primary keys,
		// one probe each per organization instead of reading every event.
		var id domain.ID
		err := pool.QueryRow(ctx, nextVerifyOrg, after).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.ID{}, false, nil
		}
		if err != nil {
			return domain.ID{}, false, fmt.Errorf("verify: next organization: %w", postgres.Translate(err))
		}
		return id, true, nil
	}
	var after *domain.ID
	for {
		org, ok, err := next(after)
		if err != nil {
			return v, err
		}
		if !ok {
			return v, nil
		}
		after = &org
		b, n, unchained, head, err := verifyOrg(ctx, pool, org, o.Page)
		if err != nil {
			return v, err
		}
		v.Orgs++
		v.Events += n
		v.Unchained += unchained
		if b != nil {
			v.Breaks = append(v.Breaks, *b)
		}
		if o.Heads && head != nil {
			v.Heads[org] = hex.EncodeToString(head)
		}
		if o.Progress != nil {
			o.Progress(v.Orgs, v.Events)
		}
	}
}

const selectChainPage = `
	SELECT seq, id, event_type, org_id, property_id, user_id, entity_type, entity_id,
	       aggregate_version, occurred_at, metadata, chain_pos, content_hash, prev_hash, hash
	FROM events
	WHERE org_id = $1 AND chain_pos > $2
	ORDER BY chain_pos
	LIMIT $3`

// verifyOrg checks one organization's chain and returns its first break
// (nil: intact), the chained events checked, the unchained (pre-chain)
// events and the head hash.
func verifyOrg(ctx context.Context, pool *pgxpool.Pool, org domain.ID, page int) (*Break, int64, int64, []byte, error) {
	var (
		pos      int64
		prevHash = []byte{}
		prevSeq  int64
		n        int64
	)
	brk := func(seq int64, id domain.ID, p int64, format string, args ...any) *Break {
		return &Break{OrgID: org, Seq: seq, EventID: id, Pos: p, What: fmt.Sprintf(format, args...)}
	}
	for {
		rows, err := pool.Query(ctx, selectChainPage, org, pos, page)
		if err != nil {
			return nil, n, 0, nil, fmt.Errorf("verify org %s: %w", org, postgres.Translate(err))
		}
		type link struct {
			ev                   domain.Event
			pos                  int64
			content, prev, chain []byte
		}
		links, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (link, error) {
			var (
				l    link
				meta []byte
			)
			err := row.Scan(&l.ev.Sequence, &l.ev.ID, &l.ev.Type, &l.ev.OrgID, &l.ev.PropertyID, &l.ev.UserID,
				&l.ev.EntityType, &l.ev.EntityID, &l.ev.AggregateVersion, &l.ev.Timestamp, &meta,
				&l.pos, &l.content, &l.prev, &l.chain)
			l.ev.Metadata = meta
			return l, err
		})
		if err != nil {
			return nil, n, 0, nil, fmt.Errorf("verify org %s: %w", org, postgres.Translate(err))
		}
		for _, l := range links {
			ev := l.ev
			switch {
			case l.pos != pos+1:
				return brk(ev.Sequence, ev.ID, pos+1, "chain position %d is missing: the chain jumps from %d to %d (an event was deleted or moved)", pos+1, pos, l.pos), n, 0, nil, nil
			case !bytes.Equal(l.prev, prevHash):
				return brk(ev.Sequence, ev.ID, l.pos, "prev_hash %x is not the hash %x of chain position %d (event seq %d)", l.prev, prevHash, pos, prevSeq), n, 0, nil, nil
			}
			content, err := ContentHash(ev)
			if err != nil {
				return brk(ev.Sequence, ev.ID, l.pos, "metadata is not JSON: %v", err), n, 0, nil, nil
			}
			if !bytes.Equal(content[:], l.content) {
				return brk(ev.Sequence, ev.ID, l.pos, "content differs from what was hashed when it was written (stored content_hash %x, recomputed %x): its envelope or metadata was changed", l.content, content), n, 0, nil, nil
			}
			if want := Link(l.prev, content); !bytes.Equal(want[:], l.chain) {
				return brk(ev.Sequence, ev.ID, l.pos, "hash %x is not sha256(prev_hash || content_hash) = %x", l.chain, want), n, 0, nil, nil
			}
			pos, prevHash, prevSeq = l.pos, l.chain, ev.Sequence
			n++
		}
		if len(links) < page {
			break
		}
	}
	// The head must sit on the last link: a head further on means events
	// at the end were deleted.
	var (
		headPos  int64
		headHash []byte
	)
	err := pool.QueryRow(ctx, `SELECT pos, hash FROM event_chain_heads WHERE org_id = $1`, org).Scan(&headPos, &headHash)
	if errors.Is(err, pgx.ErrNoRows) {
		if pos > 0 {
			return brk(0, domain.ID{}, pos, "the chain has %d events but no chain head (event_chain_heads row deleted)", pos), n, 0, nil, nil
		}
	} else if err != nil {
		return nil, n, 0, nil, fmt.Errorf("verify org %s: read chain head: %w", org, postgres.Translate(err))
	}
	// An event appended after the walk read its page moves the head past
	// it; read on to the head's position before calling that a break.
	if headPos > pos {
		more, err := countChained(ctx, pool, org, pos, headPos)
		if err != nil {
			return nil, n, 0, nil, err
		}
		if more < headPos-pos {
			return brk(0, domain.ID{}, pos+1, "the chain head is at position %d but the chain ends at %d: its last events were deleted", headPos, pos), n, 0, nil, nil
		}
	} else if headPos == pos && pos > 0 && !bytes.Equal(headHash, prevHash) {
		return brk(prevSeq, domain.ID{}, pos, "the chain head's hash %x is not the last event's hash %x", headHash, prevHash), n, 0, nil, nil
	} else if headPos < pos {
		return brk(prevSeq, domain.ID{}, pos, "the chain head is at position %d, behind the last event at %d", headPos, pos), n, 0, nil, nil
	}
	// Events outside the chain: those written before it existed are
	// counted; one written after the first chained event was inserted
	// around the append path.
	var unchained int64
	var strayID *domain.ID
	var straySeq *int64
	err = pool.QueryRow(ctx, `
		WITH first AS (SELECT min(seq) AS s FROM events WHERE org_id = $1 AND chain_pos IS NOT NULL)
		SELECT count(*) FILTER (WHERE first.s IS NULL OR e.seq < first.s),
		       (array_agg(e.id ORDER BY e.seq) FILTER (WHERE e.seq > first.s))[1],
		       min(e.seq) FILTER (WHERE e.seq > first.s)
		FROM events e, first WHERE e.org_id = $1 AND e.chain_pos IS NULL`, org).Scan(&unchained, &strayID, &straySeq)
	if err != nil {
		return nil, n, 0, nil, fmt.Errorf("verify org %s: unchained events: %w", org, postgres.Translate(err))
	}
	if strayID != nil {
		return brk(*straySeq, *strayID, 0, "the event is not in the chain (written around the append path)"), n, unchained, nil, nil
	}
	return nil, n, unchained, headHash, nil
}

// countChained counts the chained events of org after position from up to
// position to.
func countChained(ctx context.Context, pool *pgxpool.Pool, org domain.ID, from, to int64) (int64, error) {
	var c int64
	err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE org_id = $1 AND chain_pos > $2 AND chain_pos <= $3`, org, from, to).Scan(&c)
	if err != nil {
		return 0, fmt.Errorf("verify org %s: %w", org, postgres.Translate(err))
	}
	return c, nil
}
