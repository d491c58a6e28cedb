package finance

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/idempotency"
	"hmp/internal/postgres"
)

// Group commit. The creates of one organization queue on its chain head
// anyway (eventstore.Stamp holds it from the append to the commit), so at
// most one commit per organization can be in flight and one organization's
// writes are capped at about one per commit (WAL flush) time. Instead of
// waiting on the row lock, a create that finds its organization's
// transaction in flight waits here; when that transaction ends, every
// create that queued meanwhile commits in the next one: one stamp, one
// batch, one volume update and one commit for all of them. A lone create
// runs at once, as before. Each create is answered only after the commit
// that holds it. If the shared transaction fails, each of its creates runs
// again alone, so a failing request fails alone with its own error and the
// others commit.

// maxGroup bounds the creates one transaction holds: a bigger group only
// makes its first member wait longer for its answer.
const maxGroup = 64

// pendingCreate is one create waiting for its commit.
type pendingCreate struct {
	ctx      context.Context
	actor    domain.Actor
	t        Transaction // times are set under the chain head
	remember *Remember
	pos      eventstore.Position
	err      error
	// done receives nil when the create's group has committed or failed
	// (err tells), or the next group when this create is to lead it.
	done chan []*pendingCreate
}

// createGroups holds the organizations with a create transaction in
// flight and the creates queued behind it.
type createGroups struct {
	mu      sync.Mutex
	waiting map[domain.ID][]*pendingCreate // key present: a transaction in flight
}

// commitCreate commits p, alone or with the organization's other creates
// queued at the same time, and returns once its transaction has ended.
func (s *Service) commitCreate(p *pendingCreate) error {
	org := p.actor.OrgID
	g := &s.groups
	g.mu.Lock()
	if g.waiting == nil {
		g.waiting = make(map[domain.ID][]*pendingCreate)
	}
	q, busy := g.waiting[org]
	if busy {
		g.waiting[org] = append(q, p)
		g.mu.Unlock()
		group := <-p.done
		if group == nil {
			return p.err
		}
		s.lead(org, group)
		return p.err
	}
	g.waiting[org] = nil
	g.mu.Unlock()
	s.lead(org, []*pendingCreate{p})
	return p.err
}

// lead commits group, then hands the organization's queue to the next
// group's first create (or marks the organization idle) and answers the
// group's other creates.
func (s *Service) lead(org domain.ID, group []*pendingCreate) {
	s.runGroup(group)
	g := &s.groups
	g.mu.Lock()
	var next []*pendingCreate
	if q := g.waiting[org]; len(q) > 0 {
		n := min(len(q), maxGroup)
		next = q[:n:n]
		if n == len(q) {
			g.waiting[org] = nil
		} else {
			g.waiting[org] = append([]*pendingCreate(nil), q[n:]...)
		}
	} else {
		delete(g.waiting, org)
	}
	g.mu.Unlock()
	if next != nil {
		next[0].done <- next
	}
	for _, m := range group[1:] {
		m.done <- nil
	}
}

// runGroup commits the live creates of group in one transaction; if that
// fails, each again in its own.
func (s *Service) runGroup(group []*pendingCreate) {
	live := group[:0:0]
	for _, m := range group {
		if err := m.ctx.Err(); err != nil {
			m.err = err // its client left before its turn: nothing written
			continue
		}
		live = append(live, m)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		live[0].err = s.commitGroup(live[0].ctx, live)
		return
	}
	// The shared transaction serves every member, so it does not end when
	// the leader's client leaves.
	if err := s.commitGroup(context.WithoutCancel(live[0].ctx), live); err == nil {
		return
	}
	for _, m := range live {
		m.err = s.commitGroup(m.ctx, []*pendingCreate{m})
	}
}

// commitGroup writes the rows and events of ms (of one organization) and
// their volume in one transaction. The time of every change is taken once
// under the chain head (eventstore.Stamp), so all of ms share it and the
// chain order of their events is the batch order.
func (s *Service) commitGroup(ctx context.Context, ms []*pendingCreate) error {
	org := ms[0].actor.OrgID
	err := postgres.WithTx(ctx, s.pool, func(tx pgx.Tx) error {
		at, err := eventstore.Stamp(ctx, tx, org, s.now)
		if err != nil {
			return err
		}
		// One round trip after the stamp: the rows, their events, the
		// idempotency records and the volume commit together or not at all.
		b := &pgx.Batch{}
		var volume int64
		for _, m := range ms {
			if err := queueCreate(b, m, at); err != nil {
				return err
			}
			if counts(m.t.Status) {
				volume += m.t.AmountCents
			}
		}
		// Last: it locks one of the organization's volume slots until the
		// commit. The group's sum fits a slot only if each amount would; a
		// group refused here runs again member by member.
		if volume > 0 {
			b.Queue(addVolume, org, volume)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err == nil || len(ms) > 1 {
		return err
	}
	m := ms[0]
	if idempotency.IsDuplicate(err) {
		return ErrIdempotencyRace
	}
	if overVolume(err) {
		return volumeError(m.t.AmountCents)
	}
	return fmt.Errorf("create %s: %w", m.t.Kind, postgres.Translate(err))
}

// queueCreate adds m's row, its event and its idempotency record, stamped
// at, to b.
func queueCreate(b *pgx.Batch, m *pendingCreate, at time.Time) error {
	t := &m.t
	t.CreatedAt, t.UpdatedAt = at, at
	if t.ReviewedBy != nil {
		t.ReviewedAt = &at
	}
	ev, err := transactionEvent(m.actor, domain.ActionAdded, *t, nil, at, "")
	if err != nil {
		return err
	}
	b.Queue(insertTx, insertArgs(t)...)
	if err := eventstore.Queue(b, ev, &m.pos); err != nil {
		return err
	}
	if m.remember != nil {
		status, body, err := m.remember.Encode(*t)
		if err != nil {
			return fmt.Errorf("encode idempotent response: %w", err)
		}
		idempotency.Queue(b, idempotency.Record{Key: m.remember.Key, RequestHash: m.remember.Hash, Status: status, Response: body, CreatedAt: at})
	}
	return nil
}
