package finance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
)

// Group commit. Each commit costs PostgreSQL a transaction, several round
// trips and a WAL flush, and the creates of one organization queue on its
// chain head anyway (eventstore.Stamp holds it from the append to the
// commit), which caps an organization at about one write per flush.
// Instead, at most createLanes create transactions are in flight; a create
// that finds them all busy waits here, and when a transaction ends, every
// create that queued meanwhile (of any organization) commits in the next
// one: one stamp round trip for all their organizations, one batch, one
// volume update per organization, one commit. A create that finds a lane
// free runs at once, as before. Each create is answered only after the
// commit that holds it. If the shared transaction fails, each of its
// creates runs again alone, so a failing request fails alone with its own
// error and the others commit; unless the failure leaves the commit's
// outcome unknown (a broken connection), where a second run could write
// a create twice: then every member gets the error.

// createLanes is how many create transactions run at once: two, so that
// one transaction's flush overlaps the next group's statements; more made
// smaller groups and cost more CPU per create (docs/measuring.md).
const createLanes = 2

// maxGroup bounds the creates one transaction holds: a bigger group only
// makes its first member wait longer for its answer.
const maxGroup = 64

// pendingCreate is one create waiting for its commit.
type pendingCreate struct {
	ctx   context.Context
	actor domain.Actor
	t     Transaction // times are set under the chain head
	pos   eventstore.Position
	err   error
	// done receives nil when the create's group has committed or failed
	// (err tells), or the next group when this create is to lead it.
	done chan []*pendingCreate
}

// createGroups counts the create transactions in flight and holds the
// creates queued behind them.
type createGroups struct {
	mu       sync.Mutex
	inFlight int
	waiting  []*pendingCreate
}

// commitCreate commits p, alone or with the other creates queued at the
// same time, and returns once its transaction has ended.
func (s *Service) commitCreate(p *pendingCreate) error {
	g := &s.groups
	g.mu.Lock()
	if g.inFlight >= createLanes {
		g.waiting = append(g.waiting, p)
		g.mu.Unlock()
		var group []*pendingCreate
		select {
		case group = <-p.done:
		case <-p.ctx.Done():
			// Its client left: out of the queue, nothing written. Once
			// taken into a group it waits for the group's end (bounded:
			// a group stops when every member's client has left).
			g.mu.Lock()
			if i := slices.Index(g.waiting, p); i >= 0 {
				g.waiting = slices.Delete(g.waiting, i, i+1)
				g.mu.Unlock()
				return p.ctx.Err()
			}
			g.mu.Unlock()
			group = <-p.done
		}
		if group == nil {
			return p.err
		}
		s.lead(group)
		return p.err
	}
	g.inFlight++
	g.mu.Unlock()
	s.lead([]*pendingCreate{p})
	return p.err
}

// lead commits group, then hands its lane to the next group's first
// create (or frees it) and answers the group's other creates, also when
// the commit panics: the queue behind it must not hang.
func (s *Service) lead(group []*pendingCreate) {
	defer func() {
		if r := recover(); r != nil {
			for _, m := range group {
				if m.err == nil {
					m.err = fmt.Errorf("create %s: panic: %v", m.t.Kind, r)
				}
			}
			s.handOver(group)
			panic(r)
		}
	}()
	s.runGroup(group)
	s.handOver(group)
}

// handOver passes group's lane on and answers group's other creates.
func (s *Service) handOver(group []*pendingCreate) {
	g := &s.groups
	g.mu.Lock()
	var next []*pendingCreate
	if q := g.waiting; len(q) > 0 {
		n := min(len(q), maxGroup)
		next = q[:n:n]
		if n == len(q) {
			g.waiting = nil
		} else {
			g.waiting = append([]*pendingCreate(nil), q[n:]...)
		}
	} else {
		g.inFlight--
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
	// The shared transaction serves every member, so it ends early only
	// when every member's client has left.
	ctx, cancel := context.WithCancel(context.WithoutCancel(live[0].ctx))
	defer cancel()
	var waiting atomic.Int32
	waiting.Store(int32(len(live)))
	for _, m := range live {
		stop := context.AfterFunc(m.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	err := s.commitGroup(ctx, live)
	if err == nil {
		return
	}
	if !rolledBack(err) {
		// The commit's outcome is unknown (the connection broke): running
		// the members again could write them twice, so each is answered
		// with the error, as a lone create would be.
		for _, m := range live {
			m.err = fmt.Errorf("create %s: %w", m.t.Kind, postgres.Translate(err))
		}
		return
	}
	for _, m := range live {
		m.err = s.commitGroup(m.ctx, []*pendingCreate{m})
	}
}

// errNotSent marks a group's failure before anything reached the database.
var errNotSent = errors.New("not sent")

// rolledBack reports whether a group's transaction certainly did not
// commit: PostgreSQL refused a statement or the commit with an ERROR (the
// session lives on, the transaction is aborted), or the group failed
// before sending anything. A FATAL (the backend was terminated) may come
// after a commit that went through.
func rolledBack(err error) bool {
	if errors.Is(err, errNotSent) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	severity := pgErr.SeverityUnlocalized
	if severity == "" {
		severity = pgErr.Severity
	}
	return severity == "ERROR"
}

// commitGroup writes the rows and events of ms and their volume in one
// transaction. The time of every change is taken under its organization's
// chain head (eventstore.StampEach), once per organization, so the creates
// of one organization share it and the chain order of their events is
// their order in ms.
func (s *Service) commitGroup(ctx context.Context, ms []*pendingCreate) error {
	// Sorted by organization: every group locks chain heads and volume
	// slots in one order, so two groups never wait for each other.
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b *pendingCreate) int { return bytes.Compare(a.actor.OrgID[:], b.actor.OrgID[:]) })
	var orgs []domain.ID
	var volume []int64
	for _, m := range ms {
		if len(orgs) == 0 || orgs[len(orgs)-1] != m.actor.OrgID {
			orgs, volume = append(orgs, m.actor.OrgID), append(volume, 0)
		}
		if counts(m.t.Status) {
			volume[len(volume)-1] += m.t.AmountCents
		}
	}
	// Each member's BeforeCommit hook (its idempotency key) runs in the
	// shared transaction with that member's own context, not the first
	// member's for all: so every key is marked with the write it covers.
	txCtx := postgres.WithoutBeforeCommit(ctx)
	err := s.withTx(txCtx, func(tx pgx.Tx) error {
		times, err := eventstore.StampEach(ctx, tx, orgs, s.now)
		if err != nil {
			return err
		}
		// One round trip after the stamps: the rows, their events, the
		// idempotency records and the volumes commit together or not at
		// all.
		b := &pgx.Batch{}
		o := 0
		for _, m := range ms {
			if m.actor.OrgID != orgs[o] {
				o++
			}
			if err := queueCreate(b, m, times[o]); err != nil {
				return fmt.Errorf("%w: %w", errNotSent, err)
			}
		}
		// Last: each locks one of its organization's volume slots until
		// the commit. A sum fits a slot only if each of its amounts would;
		// a group refused here runs again member by member.
		for i, org := range orgs {
			if volume[i] > 0 {
				b.Queue(addVolume, org, volume[i])
			}
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		for _, m := range ms {
			if hook, ok := postgres.BeforeCommitOf(m.ctx); ok {
				if err := hook(m.ctx, tx); err != nil {
					// Nothing was committed (the transaction rolls back):
					// the members run again alone, where this one's
					// refusal is its own.
					return fmt.Errorf("%w: %w", errNotSent, err)
				}
			}
		}
		return nil
	})
	if err == nil || len(ms) > 1 {
		return err
	}
	m := ms[0]
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
	return nil
}
