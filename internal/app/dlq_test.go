package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/bus"
	"hmp/internal/config"
)

// fastRetries keeps the projector's redelivery delays short, so that many
// deliveries fit in a test.
func fastRetries(c *config.Config) {
	c.Projector.RetryDelay, c.Projector.MaxRetryDelay = 5*time.Millisecond, 50*time.Millisecond
}

// lockFirst takes a partitioned table, and all its partitions, parent
// first, ahead of a trigger's DDL in the same implicit transaction: the
// DDL alone locks the partitions before the parent, and deadlocks with a
// projector batch holding the parent and waiting for a partition.
func lockFirst(table string) string { return "LOCK TABLE " + table + " IN ACCESS EXCLUSIVE MODE;" }

// A database fault is never the event's fault: while the balance tables
// refuse every write with "disk full" (SQLSTATE 53100, raised by a
// trigger), the projector keeps retrying the events well past MaxDeliver
// deliveries without dead-lettering them, and applies them once the fault
// clears. Before, an error class it did not know sent them to the
// dead-letter stream after 5 deliveries, and the reports missed them.
func TestPipelineTransientFaultNeverDeadLetters(t *testing.T) {
	t.Parallel()
	w := pipeStart(t, fastRetries)
	ctx := context.Background()
	w.history(10, 41)
	w.drain()
	if _, err := w.env.App.Pool.Exec(ctx, `
		CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = '53100'; END $$;
		`+lockFirst("daily_cash_balances")+`
		CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON daily_cash_balances FOR EACH ROW EXECUTE FUNCTION disk_full()`); err != nil {
		t.Fatal(err)
	}
	failures := func() int { return strings.Count(w.env.Logs.String(), "projector_batch_failed") }
	before := failures()
	w.history(5, 42)
	w.published()
	w.until("more than 5 failed deliveries", func() bool { return failures()-before > 6 })
	info, err := w.env.App.Bus.ConsumerInfo(ctx, bus.EventsStream, w.env.App.Projector.Config().Durable)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending == 0 {
		t.Fatal("no event is waiting for redelivery during the fault")
	}
	if n := w.stream(bus.DeadLetterStream).State.Msgs; n != 0 {
		t.Fatalf("%d events dead-lettered during a database fault", n)
	}
	if _, err := w.env.App.Pool.Exec(ctx, lockFirst("daily_cash_balances")+` DROP TRIGGER disk_full ON daily_cash_balances`); err != nil {
		t.Fatal(err)
	}
	w.drain()
	if n := w.stream(bus.DeadLetterStream).State.Msgs; n != 0 {
		t.Fatalf("%d events dead-lettered", n)
	}
	w.mustMatchLedger()
	w.mustReconcile()
	if n, events := w.appliedRecords(), w.eventCount(); n != events {
		t.Fatalf("applied records = %d, want one per event (%d)", n, events)
	}
}

// An operator can list the dead letters with their reasons and, once the
// cause is fixed, replay them: each replayed event is applied exactly
// once, the dead-letter stream is emptied, the reports are right.
func TestPipelineDeadLetterReplay(t *testing.T) {
	t.Parallel()
	w := pipeStart(t)
	ctx := context.Background()
	const day = "2026-03-10"
	var first apptest.Row
	if err := w.write(201, "POST", "/v1/finance/revenues", w.org.AdminToken, apptest.Txn{
		PropertyID: w.props[0], Source: "room", AmountCents: 1000, PaymentMode: "cash", OccurredAt: day + "T09:00:00Z",
	}, &first); err != nil {
		t.Fatal(err)
	}
	w.ledger.set("revenue", first)
	w.history(10, 51)
	w.drain()
	// The fault: the day's row corrupted to the edge of bigint, so the next
	// event of the day cannot be applied.
	const edge = 9_223_372_036_854_775_000
	if _, err := w.env.App.Pool.Exec(ctx, `UPDATE daily_cash_balances SET cash_received = $4
		WHERE org_id = $1 AND property_id = $2 AND business_date = $3`, w.org.ID, w.props[0], day, int64(edge)); err != nil {
		t.Fatal(err)
	}
	var failing apptest.Row
	if err := w.write(201, "POST", "/v1/finance/revenues", w.org.AdminToken, apptest.Txn{
		PropertyID: w.props[0], Source: "room", AmountCents: 5000, PaymentMode: "cash", OccurredAt: day + "T10:00:00Z",
	}, &failing); err != nil {
		t.Fatal(err)
	}
	w.ledger.set("revenue", failing)
	w.drain()
	letters, err := w.env.App.Bus.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || !strings.Contains(letters[0].Reason, "overflow") || letters[0].Consumer != w.env.App.Projector.Config().Durable ||
		letters[0].Subject == "" || letters[0].StreamSeq == 0 {
		t.Fatalf("dead letters %+v, want the overflowing event with its reason", letters)
	}
	var ev struct{ EntityID string }
	if err := json.Unmarshal(letters[0].Data, &ev); err != nil || ev.EntityID != failing.ID {
		t.Fatalf("dead letter %s is not the event of %s", letters[0].Data, failing.ID)
	}
	// The fix: the day's row back to what its events say (the reconciler's
	// repair, done by hand here), then the replay.
	if _, err := w.env.App.Pool.Exec(ctx, `UPDATE daily_cash_balances SET cash_received = 1000
		WHERE org_id = $1 AND property_id = $2 AND business_date = $3`, w.org.ID, w.props[0], day); err != nil {
		t.Fatal(err)
	}
	replayed, err := w.env.App.Bus.ReplayDeadLetters(ctx)
	if err != nil || len(replayed) != 1 || replayed[0].Seq != letters[0].Seq {
		t.Fatalf("replayed %+v (%v), want the one dead letter", replayed, err)
	}
	w.drain()
	if left, err := w.env.App.Bus.DeadLetters(ctx); err != nil || len(left) != 0 {
		t.Fatalf("after the replay: dead letters %+v (%v), want none", left, err)
	}
	w.mustMatchLedger()
	w.mustReconcile()
	if n, events := w.appliedRecords(), w.eventCount(); n != events {
		t.Fatalf("applied records = %d, want one per event (%d)", n, events)
	}
	// Nothing left: a second replay does nothing.
	if again, err := w.env.App.Bus.ReplayDeadLetters(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second replay: %+v (%v)", again, err)
	}
}
