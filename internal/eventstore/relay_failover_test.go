package eventstore

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/postgres/pgtest"
)

// With the first host of a multi-host URL frozen (SIGSTOP) and the second
// promoted, the relay gives up the hung leadership, gets a connection on
// the new primary within its bounded retries, and publishes what is
// committed there.
func TestRelayKeepsPublishingPastFrozenPrimary(t *testing.T) {
	t.Parallel()
	h := pgtest.StartTwoHosts(t, Migrations())
	ctx := context.Background()
	pool, _ := h.Pool(t, 8)
	now := time.Now()
	b := relayBundle{pool: pool, store: NewStore(pool), org: domain.NewID(now), prop: domain.NewID(now)}
	pub := &recorder{}
	b.startRelay(t, pub, RelayConfig{StallTimeout: 2 * time.Second, PublishTimeout: time.Second})
	before := b.event(domain.NewID(now), 1)
	b.commit(t, before)
	waitPublished(t, pub, before.ID)

	h.A.Freeze()
	h.Promote(t)
	after := b.event(domain.NewID(now), 1)
	deadline, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for { // the write, retried as a client would, each with a request's deadline
		actx, acancel := context.WithTimeout(deadline, 3*time.Second)
		err := postgres.WithTx(actx, pool, func(tx pgx.Tx) error {
			_, err := AppendTx(actx, tx, after)
			return err
		})
		acancel()
		if err == nil {
			break
		}
		if deadline.Err() != nil {
			t.Fatalf("no append succeeded with the first host frozen: %v", err)
		}
	}
	waitPublishedBy(t, deadline, pub, after.ID)
}

func waitPublished(t *testing.T, pub *recorder, id domain.ID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitPublishedBy(t, ctx, pub, id)
}

func waitPublishedBy(t *testing.T, ctx context.Context, pub *recorder, id domain.ID) {
	t.Helper()
	for {
		for _, ev := range pub.published() {
			if ev.ID == id {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("event %v never published", id)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
