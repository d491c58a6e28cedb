package app_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"hmp/internal/apptest"
	"hmp/internal/bus"
	"hmp/internal/domain"
)

// deadLetters returns every message of the dead-letter stream.
func (w *pipeWorld) deadLetters() []*jetstream.RawStreamMsg {
	w.t.Helper()
	ctx := context.Background()
	letters, err := w.env.App.Bus.DeadLetters(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for _, d := range letters {
		m, err := w.env.App.Bus.StreamMsg(ctx, bus.DeadLetterStream, d.Seq)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// publishRaw puts data on the events stream as if it were an event.
func (w *pipeWorld) publishRaw(subject string, data []byte) uint64 {
	w.t.Helper()
	seq, err := w.env.App.Bus.PublishRaw(context.Background(), subject, data, "")
	if err != nil {
		w.t.Fatal(err)
	}
	return seq
}

// A poison message (undecodable, or decodable but not an event the
// projector can ever apply) goes to the dead-letter stream at once, with
// the reason, and the events around it, in the same batch or not, are all
// applied.
func TestPipelineDeadLetterPoison(t *testing.T) {
	t.Parallel()
	w := pipeStart(t)
	prop, err := domain.ParseID(w.props[0])
	if err != nil {
		t.Fatal(err)
	}
	org, err := domain.ParseID(w.org.ID)
	if err != nil {
		t.Fatal(err)
	}
	subject := bus.EventSubject(org, &prop)
	envelope := func(typ string, md string) []byte {
		b, err := json.Marshal(map[string]any{
			"eventId": domain.NewID(pipeNow).String(), "eventVersion": "v1", "eventType": typ, "orgId": w.org.ID,
			"propertyId": w.props[0], "userId": w.org.AdminID, "entityType": "revenue", "entityId": domain.NewID(pipeNow).String(),
			"aggregateVersion": 1, "timestamp": pipeNow, "metadata": json.RawMessage(md), "sequence": 1_000_000,
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	poisons := []struct {
		name, reason string
		data         []byte
	}{
		{"undecodable", "undecodable event", []byte(`{"eventType": "revenue_added", "orgId": `)},
		{"not json at all", "undecodable event", []byte("\x00\x01 garbage")},
		{"unknown event type", `unknown event type "revenue_archived"`,
			envelope("revenue_archived", `{"status":"approved","amountCents":500,"paymentMode":"cash","businessDate":"2026-06-01"}`)},
		{"a row state no event can carry", "incomplete row state",
			envelope("revenue_added", `{"status":"approved","amountCents":0,"paymentMode":"cash","businessDate":"2026-06-01"}`)},
	}
	want := map[uint64]int{} // stream sequence -> poison
	publish := func(i int) {
		want[w.publishRaw(subject, poisons[i].data)] = i
	}

	// Poison amid a backlog: it arrives in the same batch as good events.
	w.env.App.Projector.Stop()
	o := w.ops(21)
	for i := range 40 {
		if i%10 == 5 {
			publish(i / 10)
		}
		if err := o.step(); err != nil {
			t.Fatal(err)
		}
	}
	w.published()
	if err := w.env.App.Projector.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.drain()
	// ...and alone, while the projector runs.
	publish(0)
	w.history(20, 22)
	w.drain()
	w.mustRead() // the consistency wait is not held up by the poison

	letters := w.deadLetters()
	if len(letters) != len(want) {
		t.Fatalf("dead-letter stream holds %d messages, want %d", len(letters), len(want))
	}
	durable := w.env.App.Projector.Config().Durable
	for _, m := range letters {
		seq, _ := strconv.ParseUint(m.Header.Get(bus.HeaderStreamSeq), 10, 64)
		i, found := want[seq]
		if !found {
			t.Errorf("dead letter of stream sequence %d that was no poison; reason %q", seq, m.Header.Get(bus.HeaderReason))
			continue
		}
		p := poisons[i]
		if r := m.Header.Get(bus.HeaderReason); !strings.Contains(r, p.reason) {
			t.Errorf("%s: reason %q, want it to mention %q", p.name, r, p.reason)
		}
		if got := m.Header.Get(bus.HeaderSubject); got != subject {
			t.Errorf("%s: subject header %q, want %q", p.name, got, subject)
		}
		if got := m.Header.Get(bus.HeaderConsumer); got != durable {
			t.Errorf("%s: consumer header %q, want %q", p.name, got, durable)
		}
		if got := m.Header.Get(bus.HeaderDeliveries); got != "1" {
			t.Errorf("%s: dead-lettered after %s deliveries, want at once", p.name, got)
		}
		if !slices.Equal(m.Data, p.data) {
			t.Errorf("%s: dead letter body %q, want %q", p.name, m.Data, p.data)
		}
		if m.Subject != "hmp.dlq."+durable {
			t.Errorf("%s: dead letter subject %s", p.name, m.Subject)
		}
	}
	w.mustMatchLedger()
	w.mustReconcile()
	if n, events := w.appliedRecords(), w.eventCount(); n != events {
		t.Fatalf("applied records = %d, want one per event (%d)", n, events)
	}
}

// An event whose sums would leave int64 is impossible under the volume
// cap (domain.MaxOrgVolumeCents), but rows written before the cap, or by
// hand, can hold such sums: the projector's arithmetic is checked, and the
// event goes to the dead-letter stream at its first delivery, with the
// reason, while the events delivered with it (of its organization and of
// another) are applied at once. Before, the whole batch failed and the
// event was retried until MaxDeliver.
//
// The day's row is pushed to the edge of bigint by hand, and adding the
// event overflows it, every time.
func TestPipelineDeadLetterOverflow(t *testing.T) {
	t.Parallel()
	w := pipeStart(t)
	ctx := context.Background()
	// A day outside the random history (April to June).
	const broken = "2026-03-10"
	brokenDay := pipeDay{w.props[0], broken}
	brokenMonth := pipeDay{w.props[0], "2026-03-01"}
	var first apptest.Row
	if err := w.write(201, "POST", "/v1/finance/revenues", w.org.AdminToken, apptest.Txn{
		PropertyID: w.props[0], Source: "room", AmountCents: 1000, PaymentMode: "cash", OccurredAt: broken + "T09:00:00Z",
	}, &first); err != nil {
		t.Fatal(err)
	}
	w.ledger.set("revenue", first)
	w.history(20, 31)
	w.drain()
	w.mustMatchLedger()
	const edge = 9_223_372_036_854_775_000
	tag, err := w.env.App.Pool.Exec(ctx, `UPDATE daily_cash_balances SET cash_received = $4
		WHERE org_id = $1 AND property_id = $2 AND business_date = $3`, w.org.ID, w.props[0], broken, int64(edge))
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("push the row to the edge: %v, %d rows", err, tag.RowsAffected())
	}

	// The failing event in the middle of a backlog, with a good event of
	// another organization: its batch fails, the others are then applied
	// one by one.
	w.env.App.Projector.Stop()
	other := w.env.Signup("Overflow Neighbour")
	otherProp := w.env.Property(other.AdminToken, "Next Door", "UTC")
	var neighbour apptest.Row
	if err := w.write(201, "POST", "/v1/finance/revenues", other.AdminToken, apptest.Txn{
		PropertyID: otherProp, Source: "room", AmountCents: 4200, PaymentMode: "cash", OccurredAt: broken + "T11:00:00Z",
	}, &neighbour); err != nil {
		t.Fatal(err)
	}
	o := w.ops(32)
	for range 15 {
		if err := o.step(); err != nil {
			t.Fatal(err)
		}
	}
	var failing apptest.Row
	if err := w.write(201, "POST", "/v1/finance/revenues", w.org.AdminToken, apptest.Txn{
		PropertyID: w.props[0], Source: "room", AmountCents: 5000, PaymentMode: "cash", OccurredAt: broken + "T10:00:00Z",
	}, &failing); err != nil {
		t.Fatal(err)
	}
	w.ledger.set("revenue", failing)
	for range 15 {
		if err := o.step(); err != nil {
			t.Fatal(err)
		}
	}
	w.published()
	if err := w.env.App.Projector.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.until("the failing event in the dead-letter stream", func() bool { return w.stream(bus.DeadLetterStream).State.Msgs > 0 })
	w.history(10, 33) // and writes keep flowing
	w.drain()
	w.mustRead()

	letters := w.deadLetters()
	if len(letters) != 1 {
		t.Fatalf("dead-letter stream holds %d messages, want 1", len(letters))
	}
	m := letters[0]
	var ev struct {
		EntityID string `json:"entityId"`
		Sequence int64  `json:"sequence"`
	}
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.EntityID != failing.ID {
		t.Fatalf("dead letter %s is not the failing event of %s (%v)", m.Data, failing.ID, err)
	}
	if r := m.Header.Get(bus.HeaderReason); !strings.Contains(r, "overflow") || !strings.Contains(r, "out of range") {
		t.Errorf("reason %q, want the overflow and the database error", r)
	}
	if got := m.Header.Get(bus.HeaderDeliveries); got != "1" {
		t.Errorf("dead-lettered after %s deliveries, want at once", got)
	}
	var neighbourCash int64
	if err := w.env.App.Pool.QueryRow(ctx, `SELECT cash_received FROM daily_cash_balances
		WHERE org_id = $1 AND property_id = $2 AND business_date = $3`, other.ID, otherProp, broken).Scan(&neighbourCash); err != nil || neighbourCash != 4200 {
		t.Fatalf("the other organization's day: cash received %d (%v), want 4200", neighbourCash, err)
	}
	var applied bool
	if err := w.env.App.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM projector_applied WHERE org_id = $1 AND event_seq = $2)`,
		w.org.ID, ev.Sequence).Scan(&applied); err != nil || applied {
		t.Fatalf("the dead-lettered event is recorded as applied (%v)", err)
	}
	// Everything else is exact; the broken day kept its value.
	w.mustMatchLedger(brokenDay, brokenMonth)
	var cash int64
	if err := w.env.App.Pool.QueryRow(ctx, `SELECT cash_received FROM daily_cash_balances
		WHERE org_id = $1 AND property_id = $2 AND business_date = $3`, w.org.ID, w.props[0], broken).Scan(&cash); err != nil || cash != edge {
		t.Fatalf("broken day cash received = %d (%v), want it untouched", cash, err)
	}
	// The truth check sees exactly the broken day and its month.
	n, details := w.reconcile()
	if n == 0 {
		t.Fatal("reconciliation found nothing wrong with the broken day")
	}
	for _, d := range details {
		if d["propertyId"] != w.props[0] || (d["period"] != broken && d["period"] != "2026-03") {
			t.Errorf("unexpected mismatch %v", d)
		}
	}
	if n, events := w.appliedRecords(), w.eventCount(); n != events-1 {
		// (the neighbour's event counts on both sides)
		t.Fatalf("applied records = %d, want all %d events but the dead-lettered one", n, events)
	}
}
