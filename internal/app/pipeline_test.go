package app_test

// The event pipeline loses nothing and applies everything exactly once:
// whatever is published twice, replayed, interrupted mid-batch or
// re-published by a relay that crashed, the balance rows end up equal to
// what the transactions add up to, to the cent. Helpers here start with
// "pipe" so that they never collide with the package's other tests.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"hmp/internal/apptest"
	"hmp/internal/bus"
	"hmp/internal/config"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
)

// pipeNow is the frozen clock of the pipeline tests.
var pipeNow = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

// pipeWorld is a running HMP with one organization of three properties
// (in UTC), a MANAGER of the first two, and a ledger of every row as the
// API last answered it.
type pipeWorld struct {
	t      testing.TB
	env    *apptest.Env
	org    apptest.Org
	props  []string
	mgrID  string
	mgr    string
	ledger *pipeLedger
}

// in returns a copy of w that reports failures to t (a subtest).
func (w *pipeWorld) in(t testing.TB) *pipeWorld {
	c := *w
	e := *w.env
	e.T = t
	c.t, c.env = t, &e
	return &c
}

func pipePool(c *config.Config) { c.Pool = postgres.PoolConfig{MaxConns: 16, MinConns: 1} }

func pipeStart(t *testing.T, opts ...func(*config.Config)) *pipeWorld {
	t.Helper()
	clock := &apptest.Clock{}
	clock.Set(pipeNow)
	env := apptest.Start(t, cluster, append([]func(*config.Config){apptest.WithClock(clock), pipePool}, opts...)...)
	org := env.Signup("Pipeline " + strings.ReplaceAll(t.Name(), "/", " "))
	w := &pipeWorld{t: t, env: env, org: org, ledger: &pipeLedger{rows: map[string]pipeRow{}, counts: map[pipeDay][2]int64{}}}
	for i := range 3 {
		w.props = append(w.props, env.Property(org.AdminToken, fmt.Sprintf("Property %d", i), "UTC"))
	}
	email := strings.ToLower(strings.NewReplacer("/", "", "_", "", " ", "").Replace(t.Name())) + "@pipeline.test"
	w.mgrID, w.mgr = env.Manager(org.AdminToken, email, w.props[0], w.props[1])
	// Lets the MANAGER write although rows of theirs are pending.
	if err := w.write(201, "POST", "/v1/finance/daily-approvals", org.AdminToken,
		map[string]any{"managerUserId": w.mgrID, "date": pipeNow.Format(time.DateOnly)}, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

// pipeRow is a revenue or an expense as the API last answered it.
type pipeRow struct {
	kind, prop, date, mode, status string
	amount                         int64
}

type pipeDay struct{ prop, date string }

// pipeFlows is what rows add up to on one day (or month) of a property.
type pipeFlows struct {
	CashIn, BankIn, CashOut, BankOut             int64
	PendingCashIn, PendingBankIn, PendingCashOut int64
	PendingBankOut, ApprovedCount, PendingCount  int64
	CountedClosing                               *int64
}

func (f pipeFlows) String() string {
	c := "-"
	if f.CountedClosing != nil {
		c = strconv.FormatInt(*f.CountedClosing, 10)
	}
	return fmt.Sprintf("in %d/%d out %d/%d pending in %d/%d out %d/%d counts %d+%d counted %s",
		f.CashIn, f.BankIn, f.CashOut, f.BankOut, f.PendingCashIn, f.PendingBankIn, f.PendingCashOut, f.PendingBankOut,
		f.ApprovedCount, f.PendingCount, c)
}

func (f pipeFlows) equal(o pipeFlows) bool {
	a, b := f, o
	a.CountedClosing, b.CountedClosing = nil, nil
	if a != b {
		return false
	}
	return (f.CountedClosing == nil) == (o.CountedClosing == nil) && (f.CountedClosing == nil || *f.CountedClosing == *o.CountedClosing)
}

func (f pipeFlows) isZero() bool { return f.equal(pipeFlows{}) }

// pipeLedger is the test's own account of every row, kept from the API's
// answers: the truth the projection must match.
type pipeLedger struct {
	mu     sync.Mutex
	rows   map[string]pipeRow
	counts map[pipeDay][2]int64 // counted closing, version
	// last is the newest consistency token a write answered.
	last string
}

func (l *pipeLedger) set(kind string, r apptest.Row) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rows[r.ID] = pipeRow{kind: kind, prop: r.PropertyID, date: r.BusinessDate, mode: r.PaymentMode, status: r.Status, amount: r.AmountCents}
}

func (l *pipeLedger) remove(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.rows, id)
}

// count records a cash count; concurrent counts of one day settle on
// the newest version, as the server does.
func (l *pipeLedger) count(prop, date string, cents int64, version int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := pipeDay{prop, date}
	if int64(version) > l.counts[k][1] {
		l.counts[k] = [2]int64{cents, int64(version)}
	}
}

func (l *pipeLedger) get(id string) (pipeRow, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.rows[id]
	return r, ok
}

// ids lists the rows (sorted, for a deterministic pick) matching keep.
func (l *pipeLedger) ids(keep func(pipeRow) bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, r := range l.rows {
		if keep(r) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// days returns the expected flows per property day and per property month
// (keyed by the month's first day).
func (l *pipeLedger) days() (days, months map[pipeDay]pipeFlows) {
	l.mu.Lock()
	defer l.mu.Unlock()
	days, months = map[pipeDay]pipeFlows{}, map[pipeDay]pipeFlows{}
	for _, r := range l.rows {
		for _, m := range []struct {
			into map[pipeDay]pipeFlows
			key  pipeDay
		}{{days, pipeDay{r.prop, r.date}}, {months, pipeDay{r.prop, r.date[:8] + "01"}}} {
			f := m.into[m.key]
			switch {
			case r.status == "approved":
				f.ApprovedCount++
				*pipePick(&f.CashIn, &f.BankIn, &f.CashOut, &f.BankOut, r) += r.amount
			case r.status == "pending":
				f.PendingCount++
				*pipePick(&f.PendingCashIn, &f.PendingBankIn, &f.PendingCashOut, &f.PendingBankOut, r) += r.amount
			}
			m.into[m.key] = f
		}
	}
	for k, c := range l.counts {
		f := days[k]
		f.CountedClosing = &c[0]
		days[k] = f
	}
	maps.DeleteFunc(days, func(_ pipeDay, f pipeFlows) bool { return f.isZero() })
	maps.DeleteFunc(months, func(_ pipeDay, f pipeFlows) bool { return f.isZero() })
	return days, months
}

func pipePick(cashIn, bankIn, cashOut, bankOut *int64, r pipeRow) *int64 {
	switch {
	case r.kind == "revenue" && r.mode == "cash":
		return cashIn
	case r.kind == "revenue":
		return bankIn
	case r.mode == "cash":
		return cashOut
	}
	return bankOut
}

// write sends a write that must answer want, keeps its consistency token
// and decodes the answer into v (if not nil).
func (w *pipeWorld) write(want int, method, path, token string, body, v any) error {
	r, err := w.env.Send(method, path, token, body)
	if err != nil {
		return err
	}
	if r.Status != want {
		return fmt.Errorf("%s %s: got %s, want %d", method, path, r, want)
	}
	if tok := r.Header.Get("X-Consistency-Token"); tok != "" {
		w.ledger.mu.Lock()
		w.ledger.last = tok
		w.ledger.mu.Unlock()
	}
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			return fmt.Errorf("%s %s: decode %s: %w", method, path, r.Body, err)
		}
	}
	return nil
}

// pipeOps makes random but valid writes of every kind through the API and
// keeps the ledger. Each pipeOps works on its own rows, so several can run
// at once.
type pipeOps struct {
	w    *pipeWorld
	r    *rand.Rand
	mine map[string]bool
	// lane of lanes: the days of June this pipeOps counts cash on, so that
	// concurrent ones never count the same day (the server answers the
	// loser of a race for a day's first count 409).
	lane, lanes int
}

func (w *pipeWorld) ops(seed uint64) *pipeOps {
	return &pipeOps{w: w, r: rand.New(rand.NewPCG(seed, 17)), mine: map[string]bool{}, lanes: 1}
}

func (o *pipeOps) at() string {
	d := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, o.r.IntN(76)) // 2026-04-01 .. 2026-06-15
	return d.Add(time.Duration(o.r.IntN(12*60)) * time.Minute).Format(time.RFC3339)
}

func (o *pipeOps) mode() string { return []string{"cash", "bank"}[o.r.IntN(2)] }

func (o *pipeOps) kind() string { return []string{"revenue", "expense"}[o.r.IntN(2)] }

func (o *pipeOps) txn(prop string, kind string) apptest.Txn {
	t := apptest.Txn{PropertyID: prop, AmountCents: 1 + o.r.Int64N(500_000), PaymentMode: o.mode(), OccurredAt: o.at()}
	if kind == "revenue" {
		t.Source = []string{"room", "addon", "other"}[o.r.IntN(3)]
	} else {
		t.Category = "supplies"
	}
	return t
}

func (o *pipeOps) create(manager bool) error {
	kind := o.kind()
	token, prop := o.w.org.AdminToken, o.w.props[o.r.IntN(3)]
	if manager {
		token, prop = o.w.mgr, o.w.props[o.r.IntN(2)]
	}
	var row apptest.Row
	if err := o.w.write(201, "POST", "/v1/finance/"+kind+"s", token, o.txn(prop, kind), &row); err != nil {
		return err
	}
	o.w.ledger.set(kind, row)
	o.mine[row.ID] = true
	return nil
}

// pick returns one of this pipeOps' rows matching keep, or "".
func (o *pipeOps) pick(keep func(pipeRow) bool) (string, pipeRow) {
	ids := o.w.ledger.ids(keep)
	ids = slices.DeleteFunc(ids, func(id string) bool { return !o.mine[id] })
	if len(ids) == 0 {
		return "", pipeRow{}
	}
	id := ids[o.r.IntN(len(ids))]
	r, _ := o.w.ledger.get(id)
	return id, r
}

func (o *pipeOps) patch(manager bool) error {
	id, row := o.pick(func(r pipeRow) bool {
		return r.status != "rejected" && (!manager || r.prop == o.w.props[0] || r.prop == o.w.props[1])
	})
	if id == "" {
		return o.create(manager)
	}
	body := map[string]any{}
	props := o.w.props
	token := o.w.org.AdminToken
	if manager {
		props, token = props[:2], o.w.mgr
	}
	switch o.r.IntN(5) {
	case 0:
		body["occurredAt"] = o.at()
	case 1:
		body["propertyId"] = props[o.r.IntN(len(props))]
	case 2:
		body["paymentMode"] = map[string]string{"cash": "bank", "bank": "cash"}[row.mode]
	case 3:
		body["amountCents"] = 1 + o.r.Int64N(500_000)
	default:
		body["occurredAt"], body["amountCents"], body["propertyId"] = o.at(), 1+o.r.Int64N(500_000), props[o.r.IntN(len(props))]
	}
	var out apptest.Row
	if err := o.w.write(200, "PATCH", "/v1/finance/"+row.kind+"s/"+id, token, body, &out); err != nil {
		return err
	}
	o.w.ledger.set(row.kind, out)
	return nil
}

func (o *pipeOps) review() error {
	id, row := o.pick(func(r pipeRow) bool { return r.status == "pending" })
	if id == "" {
		return o.create(true)
	}
	verb := "approve"
	if o.r.IntN(3) == 0 {
		verb = "reject"
	}
	var out apptest.Row
	if err := o.w.write(200, "POST", "/v1/finance/"+row.kind+"s/"+id+"/"+verb, o.w.org.AdminToken, map[string]any{}, &out); err != nil {
		return err
	}
	o.w.ledger.set(row.kind, out)
	return nil
}

func (o *pipeOps) remove(manager bool) error {
	id, row := o.pick(func(r pipeRow) bool { return !manager || r.prop == o.w.props[0] || r.prop == o.w.props[1] })
	if id == "" {
		return o.create(false)
	}
	if !manager {
		if err := o.w.write(204, "DELETE", "/v1/finance/"+row.kind+"s/"+id, o.w.org.AdminToken, nil, nil); err != nil {
			return err
		}
		o.w.ledger.remove(id)
		return nil
	}
	var req struct{ DeletionRequestID string }
	if err := o.w.write(202, "DELETE", "/v1/finance/"+row.kind+"s/"+id, o.w.mgr, nil, &req); err != nil {
		return err
	}
	if err := o.w.write(200, "POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/approve", o.w.org.AdminToken, map[string]any{}, nil); err != nil {
		return err
	}
	o.w.ledger.remove(id)
	return nil
}

func (o *pipeOps) cashCount() error {
	prop := o.w.props[o.r.IntN(3)]
	day := 1 + o.lane + o.lanes*o.r.IntN((15-o.lane+o.lanes-1)/o.lanes) // 1..15, in this lane
	date := time.Date(2026, 6, day, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	var c struct {
		CountedClosingCents int64
		Version             int
	}
	if err := o.w.write(201, "POST", "/v1/reports/cash-counts", o.w.org.AdminToken,
		map[string]any{"propertyId": prop, "date": date, "countedClosingCents": o.r.Int64N(10_000_000)}, &c); err != nil {
		return err
	}
	o.w.ledger.count(prop, date, c.CountedClosingCents, c.Version)
	return nil
}

// step makes one random write.
func (o *pipeOps) step() error {
	switch n := o.r.IntN(100); {
	case n < 30:
		return o.create(false)
	case n < 50:
		return o.create(true)
	case n < 65:
		return o.patch(n < 60)
	case n < 70:
		return o.patch(true)
	case n < 82:
		return o.review()
	case n < 88:
		return o.remove(false)
	case n < 92:
		return o.remove(true)
	default:
		return o.cashCount()
	}
}

// history makes n random writes of every kind.
func (w *pipeWorld) history(n int, seed uint64) {
	w.t.Helper()
	o := w.ops(seed)
	for range n {
		if err := o.step(); err != nil {
			w.t.Fatal(err)
		}
	}
}

// eventCount is the number of events in the event store.
func (w *pipeWorld) eventCount() int64 {
	w.t.Helper()
	var n int64
	if err := w.env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *pipeWorld) stream(name string) *jetstream.StreamInfo {
	w.t.Helper()
	info, err := w.env.App.Bus.StreamInfo(context.Background(), name)
	if err != nil {
		w.t.Fatal(err)
	}
	return info
}

// until polls cond, at most every 10 ms and at every committed batch,
// failing the test after 60 s.
func (w *pipeWorld) until(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for !cond() {
		tick := time.NewTimer(10 * time.Millisecond)
		select {
		case <-w.env.App.Projector.Applied():
		case <-tick.C:
		case <-deadline.C:
			tick.Stop()
			w.t.Fatalf("timed out after 60s waiting for %s", what)
		}
		tick.Stop()
	}
}

// published waits until the relay has put every committed event on the
// stream.
func (w *pipeWorld) published() {
	w.t.Helper()
	store := eventstore.NewStore(w.env.App.Pool)
	w.until("the relay to publish every event", func() bool {
		ok, _, err := store.Covered(context.Background())
		if err != nil {
			w.t.Fatalf("covered: %v", err)
		}
		return ok
	})
}

// drain waits until every committed event is on the stream and the
// projector has settled every message of the stream (acknowledged or
// dead-lettered).
func (w *pipeWorld) drain() {
	w.t.Helper()
	w.published()
	durable := w.env.App.Projector.Config().Durable
	w.until("the projector to settle every message", func() bool {
		last := w.stream(bus.EventsStream).State.LastSeq
		info, err := w.env.App.Bus.ConsumerInfo(context.Background(), bus.EventsStream, durable)
		if err != nil {
			return false // being recreated
		}
		return info.AckFloor.Stream >= last && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// pipeTable reads a balance table: flows per property and day (daily) or
// month (monthly), and a digest of every column of every row.
func (w *pipeWorld) table(monthly bool) (map[pipeDay]pipeFlows, string) {
	w.t.Helper()
	q := `SELECT property_id::text, business_date::text, cash_received, bank_received, cash_expenses, bank_expenses,
		pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
		approved_count, pending_count, counted_closing, counted_version, updated_at
		FROM daily_cash_balances WHERE org_id = $1 ORDER BY property_id, business_date`
	if monthly {
		q = `SELECT property_id::text, month::text, cash_received, bank_received, cash_expenses, bank_expenses,
		pending_cash_received, pending_bank_received, pending_cash_expenses, pending_bank_expenses,
		approved_count, pending_count, NULL::bigint, 0, updated_at
		FROM monthly_cash_balances WHERE org_id = $1 ORDER BY property_id, month`
	}
	rows, err := w.env.App.Pool.Query(context.Background(), q, w.org.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	out := map[pipeDay]pipeFlows{}
	var digest strings.Builder
	for rows.Next() {
		var (
			k       pipeDay
			f       pipeFlows
			version int
			updated time.Time
		)
		if err := rows.Scan(&k.prop, &k.date, &f.CashIn, &f.BankIn, &f.CashOut, &f.BankOut,
			&f.PendingCashIn, &f.PendingBankIn, &f.PendingCashOut, &f.PendingBankOut,
			&f.ApprovedCount, &f.PendingCount, &f.CountedClosing, &version, &updated); err != nil {
			w.t.Fatal(err)
		}
		fmt.Fprintf(&digest, "%s %s %s v%d %s\n", k.prop, k.date, f, version, updated.Format(time.RFC3339Nano))
		if !f.isZero() {
			out[k] = f
		}
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	return out, digest.String()
}

// snapshot is every column of every balance row of the organization.
func (w *pipeWorld) snapshot() string {
	w.t.Helper()
	_, d := w.table(false)
	_, m := w.table(true)
	return d + "--\n" + m
}

// mustMatchLedger checks every daily and monthly row against the ledger,
// to the cent, except the rows (days or months) named in skip.
func (w *pipeWorld) mustMatchLedger(skip ...pipeDay) {
	w.t.Helper()
	wantDays, wantMonths := w.ledger.days()
	gotDays, _ := w.table(false)
	gotMonths, _ := w.table(true)
	for what, pair := range map[string][2]map[pipeDay]pipeFlows{"day": {gotDays, wantDays}, "month": {gotMonths, wantMonths}} {
		got, want := pair[0], pair[1]
		for _, k := range skip {
			delete(got, k)
			delete(want, k)
		}
		var diffs []string
		for k := range got {
			if !got[k].equal(want[k]) {
				diffs = append(diffs, fmt.Sprintf("%s %s %s: got %s, want %s", what, k.prop, k.date, got[k], want[k]))
			}
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s %s: missing, want %s", what, k.prop, k.date, want[k]))
			}
		}
		slices.Sort(diffs)
		if len(diffs) > 0 {
			w.t.Errorf("%d %s rows differ from the transactions:\n%s", len(diffs), what, strings.Join(diffs, "\n"))
		}
	}
	if len(wantDays) == 0 {
		w.t.Fatal("fixture: the ledger is empty")
	}
}

// reconcile asks the server to recompute the organization's cash book
// from the transactions and returns the number of mismatches.
func (w *pipeWorld) reconcile() (int64, []map[string]any) {
	w.t.Helper()
	out := reconcileJob(w.t, w.env, w.org.AdminToken, map[string]any{})
	if out.DaysChecked == 0 {
		w.t.Fatalf("reconciliation checked no day")
	}
	details := make([]map[string]any, len(out.Mismatches))
	for i, m := range out.Mismatches {
		details[i] = map[string]any{"propertyId": m.PropertyID, "period": m.Period, "field": m.Field, "expected": m.Expected, "actual": m.Actual}
	}
	return out.MismatchCount, details
}

func (w *pipeWorld) mustReconcile() {
	w.t.Helper()
	if n, details := w.reconcile(); n != 0 {
		w.t.Fatalf("reconciliation found %d mismatches: %v", n, details)
	}
}

// mustRead makes a report read with the newest consistency token and
// fails unless it answers 200: the pipeline is not stuck.
func (w *pipeWorld) mustRead() {
	w.t.Helper()
	w.ledger.mu.Lock()
	tok := w.ledger.last
	w.ledger.mu.Unlock()
	w.env.Must(200, "GET", "/v1/reports/monthly-report?year=2026&month=6", w.org.AdminToken, nil, "X-Consistency-Token", tok)
}

func (w *pipeWorld) appliedRecords() int64 {
	w.t.Helper()
	var n int64
	if err := w.env.App.Pool.QueryRow(context.Background(), `SELECT count(*) FROM projector_applied`).Scan(&n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// republishAll publishes every message of the events stream once more
// under a new message id, so the stream's de-duplication keeps them all.
func (w *pipeWorld) republishAll() int {
	w.t.Helper()
	ctx := context.Background()
	b := w.env.App.Bus
	last := w.stream(bus.EventsStream).State.LastSeq
	n := 0
	for seq := uint64(1); seq <= last; seq++ {
		m, err := b.StreamMsg(ctx, bus.EventsStream, seq)
		if err != nil {
			w.t.Fatal(err)
		}
		// PublishRaw fails on a copy taken for a duplicate.
		if _, err := b.PublishRaw(ctx, m.Subject, m.Data, fmt.Sprintf("copy-%d-of-%s", seq, m.Header.Get("Nats-Msg-Id"))); err != nil {
			w.t.Fatalf("re-publish %d: %v", seq, err)
		}
		n++
	}
	return n
}

// Exactly once: every event published twice (under new message ids, so
// the stream keeps both copies) and the whole stream replayed from the
// start, twice, leaves every balance row as it was, to the cent.
func TestPipelineExactlyOnce(t *testing.T) {
	t.Parallel()
	w := pipeStart(t)
	ctx := context.Background()
	// Hold the projector so that the copies arrive before their originals
	// are applied, often in the same batch.
	w.env.App.Projector.Stop()
	w.history(150, 1)
	w.published()
	events := w.eventCount()
	if n := w.stream(bus.EventsStream).State.Msgs; n != uint64(events) {
		t.Fatalf("the stream holds %d messages for %d events", n, events)
	}
	if copies := w.republishAll(); copies != int(events) {
		t.Fatalf("re-published %d messages, want %d", copies, events)
	}
	if err := w.env.App.Projector.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w.drain()
	w.mustMatchLedger()
	w.mustReconcile()
	if n := w.appliedRecords(); n != events {
		t.Fatalf("applied records = %d, want one per event (%d)", n, events)
	}
	before := w.snapshot()

	t.Run("replay after the consumer is deleted under the running projector", func(t *testing.T) {
		w := w.in(t)
		durable := w.env.App.Projector.Config().Durable
		if err := w.env.App.Bus.DeleteConsumer(ctx, bus.EventsStream, durable); err != nil {
			t.Fatal(err)
		}
		w.until("the projector to recreate its consumer", func() bool {
			_, err := w.env.App.Bus.ConsumerInfo(ctx, bus.EventsStream, durable)
			return err == nil
		})
		w.drain()
		if after := w.snapshot(); after != before {
			t.Fatalf("a replay changed the balances:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("replay after a restart from a reset consumer", func(t *testing.T) {
		w := w.in(t)
		w.env.App.Projector.Stop()
		durable := w.env.App.Projector.Config().Durable
		if err := w.env.App.Bus.DeleteConsumer(ctx, bus.EventsStream, durable); err != nil {
			t.Fatal(err)
		}
		if err := w.env.App.Projector.Start(ctx); err != nil {
			t.Fatal(err)
		}
		w.drain()
		if after := w.snapshot(); after != before {
			t.Fatalf("a replay changed the balances:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if n := w.appliedRecords(); n != events {
			t.Fatalf("applied records = %d, want %d", n, events)
		}
	})

	t.Run("new writes still apply after the replays", func(t *testing.T) {
		w := w.in(t)
		w.history(20, 2)
		w.drain()
		w.mustMatchLedger()
		w.mustReconcile()
		w.mustRead()
	})
}

// killBatches kills projector transactions mid-batch: it blocks writes
// to the daily balances, so that batches stop after recording their events
// as applied, terminates the backends caught waiting on it (only the
// projector writes there), then lets go. It returns how many it killed,
// waiting at most 2 s for a batch to come along.
func (w *pipeWorld) killBatches(ctx context.Context) (int64, error) {
	conn, err := w.env.App.Pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `LOCK TABLE daily_cash_balances IN SHARE MODE`); err != nil {
		return 0, err
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var n int64
		err := tx.QueryRow(ctx, `
			SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid))`).Scan(&n)
		if err != nil || n > 0 || time.Now().After(deadline) {
			return n, err
		}
		<-tick.C
	}
}

// Kill mid-batch: with writes flowing, the projector is stopped and
// started again while batches are in flight, and its batch transactions
// are killed in the database mid-way; the balances still come out exact.
func TestPipelineKilledMidBatch(t *testing.T) {
	t.Parallel()
	// A message stranded by a stop (delivered to this process, never
	// handled) would only come back after AckWait: an hour here, so the
	// drain below fails unless a stop hands on everything it fetched.
	w := pipeStart(t, func(c *config.Config) { c.Projector.AckWait = time.Hour })
	ctx := context.Background()
	const writers = 4
	errs := make(chan error, writers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		o := w.ops(uint64(100 + i))
		o.lane, o.lanes = i, writers
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := o.step(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait(); close(errs) })
	defer stopWriters()

	// Alternate restarts and kills until there were five of each, each
	// right after a batch committed (so that others are in flight).
	var round, restarts, killRounds, kills int64
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for restarts < 5 || killRounds < 5 {
		select {
		case <-w.env.App.Projector.Applied():
		case err := <-errs:
			t.Fatalf("writer: %v", err)
		case <-deadline.C:
			t.Fatalf("after 60s: %d restarts, %d kill rounds", restarts, killRounds)
		}
		round++
		if round%2 == 1 {
			w.env.App.Projector.Stop()
			if err := w.env.App.Projector.Start(ctx); err != nil {
				t.Fatal(err)
			}
			restarts++
			continue
		}
		n, err := w.killBatches(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			killRounds++
			kills += n
		}
	}
	stopWriters()
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("restarted the projector %d times and killed %d batch transactions mid-flight", restarts, kills)
	// More writes after the turmoil.
	w.history(30, 7)
	w.drain()
	w.mustMatchLedger()
	w.mustReconcile()
	w.mustRead()
	if n, events := w.appliedRecords(), w.eventCount(); n != events {
		t.Fatalf("applied records = %d, want one per event (%d)", n, events)
	}
}

// A relay that crashes after publishing but before recording its progress
// publishes again: the stream drops the copies and nothing is lost.
func TestPipelineRelayCrash(t *testing.T) {
	t.Parallel()
	w := pipeStart(t)
	ctx := context.Background()
	w.history(60, 3)
	w.drain()
	w.mustMatchLedger()
	before := w.snapshot()
	msgs := w.stream(bus.EventsStream).State.Msgs

	t.Run("restart from an older cursor", func(t *testing.T) {
		w := w.in(t)
		w.env.App.Relay.Stop()
		// The crash: everything went out, the record says nothing did.
		if _, err := w.env.App.Pool.Exec(ctx, `UPDATE relay_state SET cursor_tx = '0', cursor_seq = 0 WHERE id = 1`); err != nil {
			t.Fatal(err)
		}
		if err := w.env.App.Relay.Start(ctx); err != nil {
			t.Fatal(err)
		}
		w.until("the relay to pass the reset cursor again", func() bool {
			var tx int64
			err := w.env.App.Pool.QueryRow(ctx, `SELECT cursor_tx::text::bigint FROM relay_state`).Scan(&tx)
			return err == nil && tx > 0
		})
		w.drain()
		if n := w.stream(bus.EventsStream).State.Msgs; n != msgs {
			t.Fatalf("stream holds %d messages after the re-publish, want %d", n, msgs)
		}
		if after := w.snapshot(); after != before {
			t.Fatalf("the re-publish changed the balances:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})

	t.Run("publish succeeds, recording fails", func(t *testing.T) {
		w := w.in(t)
		// Every attempt to record progress fails until the constraint goes.
		if _, err := w.env.App.Pool.Exec(ctx, `ALTER TABLE relay_state ADD CONSTRAINT pipe_no_progress CHECK (stream_seq < 0) NOT VALID`); err != nil {
			t.Fatal(err)
		}
		var stuck int64
		if err := w.env.App.Pool.QueryRow(ctx, `SELECT stream_seq FROM relay_state`).Scan(&stuck); err != nil {
			t.Fatal(err)
		}
		o := w.ops(4)
		for range 20 {
			if err := o.step(); err != nil {
				t.Fatal(err)
			}
		}
		events := w.eventCount()
		// The events reach the stream and the projection although the relay
		// cannot record it...
		w.until("the unrecorded events on the stream", func() bool { return w.stream(bus.EventsStream).State.Msgs >= uint64(events) })
		var seq int64
		if err := w.env.App.Pool.QueryRow(ctx, `SELECT stream_seq FROM relay_state`).Scan(&seq); err != nil || seq != stuck {
			t.Fatalf("relay progress moved to %d (%v) while recording fails", seq, err)
		}
		// ...and go out again at every retry, dropped by the stream.
		if _, err := w.env.App.Pool.Exec(ctx, `ALTER TABLE relay_state DROP CONSTRAINT pipe_no_progress`); err != nil {
			t.Fatal(err)
		}
		w.drain()
		if n := w.stream(bus.EventsStream).State.Msgs; n != uint64(events) {
			t.Fatalf("stream holds %d messages for %d events", n, events)
		}
		w.mustMatchLedger()
		w.mustReconcile()
		w.mustRead()
	})
}
