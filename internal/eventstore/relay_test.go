package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/bus"
	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
)

var cluster *pgtest.Cluster

// pg_stat_statements: TestRelayPlansItsReadOnce counts the relay's plans.
func TestMain(m *testing.M) {
	pgtest.MainWith(m, &cluster, pgtest.Options{StatStatements: true}, Migrations())
}

// recorder is a Publisher that keeps what it was given, in order, and can
// be made to fail.
type recorder struct {
	mu     sync.Mutex
	events []domain.Event
	fail   error
	calls  int
}

func (r *recorder) PublishEvents(_ context.Context, events []domain.Event) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		return 0, r.fail
	}
	r.events = append(r.events, events...)
	return uint64(len(r.events)), nil
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

func (r *recorder) published() []domain.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

type relayBundle struct {
	pool  *pgxpool.Pool
	store *Store
	org   domain.ID
	prop  domain.ID
}

func setup(t *testing.T) relayBundle {
	t.Helper()
	now := time.Now()
	pool := cluster.NewPool(t)
	return relayBundle{pool: pool, store: NewStore(pool), org: domain.NewID(now), prop: domain.NewID(now)}
}

// startRelay runs a relay publishing to pub until the test ends.
func (b relayBundle) startRelay(t *testing.T, pub Publisher, cfg RelayConfig) *Relay {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Millisecond
	}
	if cfg.LeaderRetry == 0 {
		cfg.LeaderRetry = 20 * time.Millisecond
	}
	r := NewRelay(b.pool, pub, cfg, slog.New(slog.DiscardHandler), time.Now, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("start relay: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// event is version v of entity id.
func (b relayBundle) event(entity domain.ID, v int) domain.Event {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return domain.Event{ID: domain.NewID(now), Version: domain.EventVersion, Type: domain.RevenueUpdated, OrgID: b.org,
		PropertyID: &b.prop, UserID: b.org, EntityType: domain.EntityRevenue, EntityID: entity, AggregateVersion: v,
		Timestamp: now, Metadata: json.RawMessage(`{"n":` + fmt.Sprint(v) + `}`)}
}

// commit appends events in one transaction.
func (b relayBundle) commit(t *testing.T, events ...domain.Event) []Position {
	t.Helper()
	var pos []Position
	err := postgres.WithTx(context.Background(), b.pool, func(tx pgx.Tx) error {
		pos = pos[:0]
		for _, ev := range events {
			p, err := AppendTx(context.Background(), tx, ev)
			if err != nil {
				return err
			}
			pos = append(pos, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return pos
}

// commitPairs commits n transactions of two new entities' first events
// each and returns the events in commit order.
func (b relayBundle) commitPairs(t *testing.T, n int) []domain.Event {
	t.Helper()
	var all []domain.Event
	for range n {
		evs := []domain.Event{b.event(domain.NewID(time.Now()), 1), b.event(domain.NewID(time.Now()), 1)}
		b.commit(t, evs...)
		all = append(all, evs...)
	}
	return all
}

// openBus opens an embedded bus of the test's own, closed when it ends.
func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	bs, err := bus.Open(context.Background(), bus.Config{StoreDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bs.Close)
	return bs
}

type relayState struct {
	cursorTx, cursorSeq, horizon, streamSeq int64
}

func (b relayBundle) state(t *testing.T) relayState {
	t.Helper()
	var s relayState
	err := b.pool.QueryRow(context.Background(), `
		SELECT cursor_tx::text::bigint, cursor_seq, horizon::text::bigint, stream_seq FROM relay_state WHERE id = 1`).
		Scan(&s.cursorTx, &s.cursorSeq, &s.horizon, &s.streamSeq)
	if err != nil {
		t.Fatalf("relay state: %v", err)
	}
	return s
}

// waitCycles waits, cycle by cycle of r, until cond holds (at most 20 s).
func waitCycles(t *testing.T, r *Relay, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-r.Cycled():
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// cycles waits for n complete relay cycles.
func cycles(t *testing.T, r *Relay, n int) {
	t.Helper()
	for range n + 1 { // the first may have started before the caller's change
		select {
		case <-r.Cycled():
		case <-time.After(20 * time.Second):
			t.Fatal("the relay stopped cycling")
		}
	}
}

func ids(events []domain.Event) []domain.ID {
	out := make([]domain.ID, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// mustPublishedOnce checks that got holds every event of want exactly once.
func mustPublishedOnce(t *testing.T, got, want []domain.Event) {
	t.Helper()
	seen := map[domain.ID]int{}
	for _, e := range got {
		seen[e.ID]++
	}
	for _, e := range want {
		if seen[e.ID] != 1 {
			t.Errorf("event %s (entity %s v%d) published %d times", e.ID, e.EntityID, e.AggregateVersion, seen[e.ID])
		}
	}
	if len(got) != len(want) {
		t.Errorf("published %d events, want %d", len(got), len(want))
	}
}

func TestRelayPublishesInOrder(t *testing.T) {
	t.Parallel()

	t.Run("in commit position order, each event of an entity by version", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		now := time.Now()
		a, c := domain.NewID(now), domain.NewID(now)
		var want []domain.Event
		var pos []Position
		for v := 1; v <= 5; v++ {
			evs := []domain.Event{b.event(a, v)}
			if v%2 == 1 {
				evs = append(evs, b.event(c, (v+1)/2)) // two entities in one transaction
			}
			pos = append(pos, b.commit(t, evs...)...)
			want = append(want, evs...)
		}
		rec := &recorder{}
		r := b.startRelay(t, rec, RelayConfig{})
		waitCycles(t, r, "all events published", func() bool { return len(rec.published()) >= len(want) })
		got := rec.published()
		mustPublishedOnce(t, got, want)
		if !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("published order %v, want %v", ids(got), ids(want))
		}
		for i, e := range got {
			if e.Sequence != pos[i].Seq {
				t.Errorf("event %d carries sequence %d, want %d", i, e.Sequence, pos[i].Seq)
			}
			if e.Version != domain.EventVersion || e.OrgID != b.org || e.PropertyID == nil || *e.PropertyID != b.prop {
				t.Errorf("event %d envelope = %+v", i, e)
			}
		}
		s := b.state(t)
		if s.streamSeq != int64(len(want)) {
			t.Errorf("recorded stream sequence = %d, want %d", s.streamSeq, len(want))
		}
		if last := pos[len(pos)-1]; s.horizon <= int64(last.TxID) {
			t.Errorf("horizon %d does not pass the last transaction %d", s.horizon, last.TxID)
		}
		if ok, seq, err := b.store.Covered(context.Background()); err != nil || !ok || seq != uint64(len(want)) {
			t.Errorf("Covered = %v, %d, %v; want true, %d", ok, seq, err, len(want))
		}
	})

	t.Run("writers serialized on an entity publish its versions in order", func(t *testing.T) {
		t.Parallel()
		// Like the finance service, each writer takes the entity's lock
		// before it writes anything, so a later version always belongs to
		// a younger transaction.
		b := setup(t)
		entity := domain.NewID(time.Now())
		rec := &recorder{}
		r := b.startRelay(t, rec, RelayConfig{BatchSize: 7})
		const writers, each = 4, 15
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for range each {
					err := postgres.WithTx(context.Background(), b.pool, func(tx pgx.Tx) error {
						ctx := context.Background()
						if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, entity.String()); err != nil {
							return err
						}
						var v int
						if err := tx.QueryRow(ctx, `SELECT coalesce(max(aggregate_version), 0) FROM events WHERE org_id = $1 AND entity_id = $2`,
							b.org, entity).Scan(&v); err != nil {
							return err
						}
						_, err := AppendTx(ctx, tx, b.event(entity, v+1))
						return err
					})
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("writer: %v", err)
		}
		waitCycles(t, r, "all versions published", func() bool { return len(rec.published()) >= writers*each })
		got := rec.published()
		if len(got) != writers*each {
			t.Fatalf("published %d events, want %d", len(got), writers*each)
		}
		for i, e := range got {
			if e.AggregateVersion != i+1 {
				t.Fatalf("event %d is version %d: versions out of order", i, e.AggregateVersion)
			}
		}
	})

	t.Run("a full batch may end inside a transaction", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var want []domain.Event
		for range 3 {
			var evs []domain.Event
			for range 7 {
				evs = append(evs, b.event(domain.NewID(time.Now()), 1))
			}
			b.commit(t, evs...)
			want = append(want, evs...)
		}
		rec := &recorder{}
		r := b.startRelay(t, rec, RelayConfig{BatchSize: 4})
		waitCycles(t, r, "all events published", func() bool { return len(rec.published()) >= len(want) })
		cycles(t, r, 2)
		got := rec.published()
		mustPublishedOnce(t, got, want)
		if !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("published order %v, want %v", ids(got), ids(want))
		}
	})
}

// An event committed late by a transaction that started before others
// (and so has the lower transaction id) is published, never skipped.
func TestRelayLongTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rec := &recorder{}
	r := b.startRelay(t, rec, RelayConfig{})

	long, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback(context.WithoutCancel(ctx))
	late := b.event(domain.NewID(time.Now()), 1)
	latePos, err := AppendTx(ctx, long, late)
	if err != nil {
		t.Fatal(err)
	}
	// Another organization's: one organization's appends wait for each
	// other on its chain head, different organizations' do not.
	early := b.event(domain.NewID(time.Now()), 1)
	early.OrgID = domain.NewID(time.Now())
	earlyPos := b.commit(t, early)[0]
	if earlyPos.TxID <= latePos.TxID {
		t.Fatalf("fixture: the short transaction %d should be younger than the long one %d", earlyPos.TxID, latePos.TxID)
	}
	// The short transaction committed, but the older one still runs: its
	// event is held back so that the cursor never passes the long one.
	cycles(t, r, 3)
	if got := rec.published(); len(got) != 0 {
		t.Fatalf("published %v while an older transaction was still running", ids(got))
	}
	if ok, _, err := b.store.Covered(ctx); err != nil || ok {
		t.Fatalf("Covered = %v, %v while a committed event is unpublished", ok, err)
	}
	if age, err := b.store.OldestUnpublishedAge(ctx, time.Now().Add(time.Minute)); err != nil || age < time.Minute {
		t.Fatalf("oldest unpublished age = %s, %v; want at least 1m", age, err)
	}
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitCycles(t, r, "both events published", func() bool { return len(rec.published()) >= 2 })
	got := rec.published()
	mustPublishedOnce(t, got, []domain.Event{late, early})
	if got[0].ID != late.ID {
		t.Errorf("published %v, want the older transaction's event first", ids(got))
	}
	waitCycles(t, r, "Covered once the publish is recorded", func() bool {
		ok, _, err := b.store.Covered(ctx)
		return err == nil && ok
	})
	if age, err := b.store.OldestUnpublishedAge(ctx, time.Now()); err != nil || age != 0 {
		t.Fatalf("oldest unpublished age = %s, %v; want 0", age, err)
	}
}

// Progress is recorded only once the bus stored the events: a failing
// bus leaves relay_state as it was, and the events go out once it
// recovers.
func TestRelayRecordsProgressOnlyAfterPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first := []domain.Event{b.event(domain.NewID(time.Now()), 1), b.event(domain.NewID(time.Now()), 1)}
	b.commit(t, first...)
	rec := &recorder{}
	r := b.startRelay(t, rec, RelayConfig{})
	waitCycles(t, r, "first events published and recorded", func() bool { return b.state(t).streamSeq >= 2 })
	before := b.state(t)

	rec.setFail(errors.New("bus down"))
	second := []domain.Event{b.event(domain.NewID(time.Now()), 1), b.event(domain.NewID(time.Now()), 1)}
	b.commit(t, second...)
	calls := rec.attempts()
	waitCycles(t, r, "publish attempts while the bus is down", func() bool { return rec.attempts() >= calls+3 })
	if after := b.state(t); after.streamSeq != before.streamSeq || after.cursorTx > before.cursorTx ||
		(after.cursorTx == before.cursorTx && after.cursorSeq != before.cursorSeq) {
		t.Fatalf("relay state moved while publishing failed: %+v, was %+v", after, before)
	}
	if ok, _, err := b.store.Covered(ctx); err != nil || ok {
		t.Fatalf("Covered = %v, %v while the bus is down", ok, err)
	}

	rec.setFail(nil)
	waitCycles(t, r, "events published after recovery", func() bool { return len(rec.published()) >= 4 })
	mustPublishedOnce(t, rec.published(), append(slices.Clone(first), second...))
	// The record follows the publish within a few cycles.
	waitCycles(t, r, "progress recorded after recovery", func() bool { return b.state(t).streamSeq == 4 })
	waitCycles(t, r, "Covered after recovery", func() bool {
		ok, _, err := b.store.Covered(ctx)
		return err == nil && ok
	})
}

// A relay that crashed after publishing but before recording starts again
// from its recorded cursor: it publishes again (never loses), and the
// stream's de-duplication drops the copies.
func TestRelayRepublishAfterCrash(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	bs := openBus(t)
	want := b.commitPairs(t, 5)
	r := b.startRelay(t, bs, RelayConfig{BatchSize: 3})
	streamMsgs := func() uint64 {
		info, err := bs.StreamInfo(ctx, bus.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	waitCycles(t, r, "events in the stream", func() bool { return b.state(t).streamSeq >= int64(len(want)) })
	r.Stop()
	// The crash: the events went out, the record of it did not.
	if _, err := b.pool.Exec(ctx, `UPDATE relay_state SET cursor_tx = '0', cursor_seq = 0 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	more := b.event(domain.NewID(time.Now()), 1)
	b.commit(t, more)
	r2 := b.startRelay(t, bs, RelayConfig{BatchSize: 3})
	waitCycles(t, r2, "the new event in the stream", func() bool { return streamMsgs() >= uint64(len(want)+1) })
	cycles(t, r2, 2)
	if n := streamMsgs(); n != uint64(len(want)+1) {
		t.Fatalf("stream holds %d messages, want %d: a re-publish was not dropped", n, len(want)+1)
	}
	waitCycles(t, r2, "the stream sequence recorded", func() bool { return b.state(t).streamSeq == int64(len(want)+1) })
}

// Of two relays on one database only one publishes; when it stops, the
// other takes over where it left off.
func TestRelayLeadership(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := []domain.Event{b.event(domain.NewID(time.Now()), 1), b.event(domain.NewID(time.Now()), 1)}
	b.commit(t, first...)
	recA, recB := &recorder{}, &recorder{}
	ra := b.startRelay(t, recA, RelayConfig{})
	rb := b.startRelay(t, recB, RelayConfig{})
	// Whichever leads publishes; both keep trying to lead meanwhile.
	published := func() int { return len(recA.published()) + len(recB.published()) }
	deadline := time.Now().Add(20 * time.Second)
	for published() < len(first) {
		if time.Now().After(deadline) {
			t.Fatal("nothing published by either relay")
		}
		select {
		case <-ra.Cycled():
		case <-rb.Cycled():
		case <-time.After(100 * time.Millisecond):
		}
	}
	leader, standby, recLeader, recStandby := ra, rb, recA, recB
	if len(recB.published()) > 0 {
		leader, standby, recLeader, recStandby = rb, ra, recB, recA
	}
	second := b.event(domain.NewID(time.Now()), 1)
	b.commit(t, second)
	waitCycles(t, leader, "the leader publishing and recording", func() bool { return b.state(t).streamSeq >= 3 })
	if n := len(recStandby.published()); n != 0 {
		t.Fatalf("the standby published %d events while the leader ran", n)
	}
	mustPublishedOnce(t, recLeader.published(), append(slices.Clone(first), second))

	leader.Stop()
	third := b.event(domain.NewID(time.Now()), 1)
	b.commit(t, third)
	waitCycles(t, standby, "the standby taking over", func() bool { return len(recStandby.published()) >= 1 })
	mustPublishedOnce(t, recStandby.published(), []domain.Event{third})
}

// An idle relay backs off towards IdleInterval instead of reading the
// outbox every PollInterval: over half a second at 1 ms pauses it would
// cycle hundreds of times, backing off (1, 2, 4 … ms) about ten.
func TestRelayIdleBacksOff(t *testing.T) {
	b := setup(t)
	r := b.startRelay(t, &recorder{}, RelayConfig{PollInterval: time.Millisecond, IdleInterval: time.Hour})
	cycles(t, r, 2)
	n, stop := 0, time.After(500*time.Millisecond)
	for counting := true; counting; {
		select {
		case <-r.Cycled():
			n++
		case <-stop:
			counting = false
		}
	}
	if n > 30 {
		t.Fatalf("an idle relay cycled %d times in 500 ms at IdleInterval 1 h: it does not back off", n)
	}
}

// Wake ends an idle pause: with a ten-minute pause, a commit followed by
// Wake is published at once.
func TestRelayWake(t *testing.T) {
	b := setup(t)
	rec := &recorder{}
	r := NewRelay(b.pool, rec, RelayConfig{PollInterval: 10 * time.Minute, LeaderRetry: 20 * time.Millisecond},
		slog.New(slog.DiscardHandler), time.Now, nil)
	first := r.Cycled()
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("start relay: %v", err)
	}
	t.Cleanup(r.Stop)
	select { // the first cycle found an empty outbox: the relay pauses
	case <-first:
	case <-time.After(20 * time.Second):
		t.Fatal("the relay did not cycle")
	}
	ev := b.event(domain.NewID(time.Now()), 1)
	b.commit(t, ev)
	r.Wake()
	waitCycles(t, r, "the woken relay to publish", func() bool { return len(rec.published()) == 1 })
	if got := rec.published()[0].ID; got != ev.ID {
		t.Fatalf("published %s, want %s", got, ev.ID)
	}
}
