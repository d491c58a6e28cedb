package rebuild_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"hmp/internal/bus"
	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/idempotency"
	"hmp/internal/natstest"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/rebuild"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
)

// cluster is this package's throwaway PostgreSQL with the event store,
// the write side that fills it, and the projections rebuild writes.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster,
		tenancy.Migrations(), eventstore.Migrations(), finance.Migrations(), idempotency.Migrations(), reports.Migrations())
}

// fixture is a database whose events the real pipeline (outbox relay,
// embedded NATS, projector) has projected: two organizations, the first
// with two properties, their books written through finance.
type fixture struct {
	pool  *pgxpool.Pool
	proj  *reports.Projector
	orgs  []domain.ID
	props [][]domain.ID // props[o][p]
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	f := &fixture{pool: cluster.NewPool(t)}
	ten, err := tenancy.New(f.pool, time.Now, tenancy.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ten.Close)
	fin := finance.New(f.pool, ten, time.Now)
	for o, nprops := range []int{2, 1} {
		org, u, err := ten.Signup(ctx, tenancy.SignupInput{OrgName: fmt.Sprintf("Org %d", o), Email: fmt.Sprintf("admin%d@rebuild.test", o),
			Password: "correct horse", DisplayName: "Admin"})
		if err != nil {
			t.Fatal(err)
		}
		admin := domain.Actor{OrgID: org.ID, UserID: u.ID, Role: domain.Admin}
		var props []domain.ID
		for p := range nprops {
			prop, err := ten.CreateProperty(ctx, admin, tenancy.PropertyInput{Name: fmt.Sprintf("Lodge %d", p), Type: "hotel", Timezone: "UTC"})
			if err != nil {
				t.Fatal(err)
			}
			props = append(props, prop.ID)
		}
		m, err := ten.CreateUser(ctx, admin, tenancy.CreateUserInput{Email: fmt.Sprintf("mgr%d@rebuild.test", o), Password: "manager pass",
			DisplayName: "Manager", Role: domain.Manager, PropertyIDs: props})
		if err != nil {
			t.Fatal(err)
		}
		mgr := domain.Actor{OrgID: org.ID, UserID: m.ID, Role: domain.Manager}
		f.orgs, f.props = append(f.orgs, org.ID), append(f.props, props)
		seedBook(t, fin, admin, mgr, props)
	}
	f.proj = startPipeline(t, f.pool)
	f.drain(t)
	return f
}

// seedBook writes a history on each property over three days: approved
// and pending rows in cash and bank, edits that move a row to another
// day, a rejection and a deletion.
func seedBook(t *testing.T, fin *finance.Service, admin, mgr domain.Actor, props []domain.ID) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	day := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	for p, prop := range props {
		create := func(actor domain.Actor, kind domain.Kind, amount int64, mode domain.PaymentMode, at time.Time) finance.Transaction {
			in := finance.CreateInput{PropertyID: prop, AmountCents: amount, PaymentMode: mode, OccurredAt: at}
			if kind == domain.Revenue {
				in.Source = "room"
			} else {
				in.Category = "supplies"
			}
			r, _, err := createRow(ctx, fin, actor, kind, in)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		base := int64(1000 * (p + 1))
		create(admin, domain.Revenue, base, domain.Cash, day(0))
		create(admin, domain.Expense, base/10, domain.Bank, day(1))
		moved := create(admin, domain.Revenue, base+7, domain.Bank, day(2))
		if _, _, err := fin.Update(ctx, admin, domain.Revenue, moved.ID, finance.PatchInput{OccurredAt: ptr(day(1)), AmountCents: ptr(base + 8)}); err != nil {
			t.Fatal(err)
		}
		pending := create(mgr, domain.Revenue, base+3, domain.Cash, day(0))
		rejected := create(mgr, domain.Expense, base+5, domain.Cash, day(0))
		if _, _, err := fin.Review(ctx, admin, domain.Expense, rejected.ID, false, "no receipt"); err != nil {
			t.Fatal(err)
		}
		gone := create(admin, domain.Expense, base+9, domain.Cash, day(2))
		if _, _, _, err := fin.Delete(ctx, admin, domain.Expense, gone.ID); err != nil {
			t.Fatal(err)
		}
		approved := create(mgr, domain.Expense, base+11, domain.Bank, day(1))
		if _, _, err := fin.Review(ctx, admin, domain.Expense, approved.ID, true, ""); err != nil {
			t.Fatal(err)
		}
		_ = pending
	}
}

// startPipeline runs the write-to-read path of HMP: the outbox relay
// publishing to an embedded NATS, and the projector applying the stream.
func startPipeline(t *testing.T, pool *pgxpool.Pool) *reports.Projector {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	b, err := bus.Open(ctx, bus.Config{URL: natstest.StartServer(t)}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg := prometheus.NewRegistry()
	relay := eventstore.NewRelay(pool, bus.NewPublisher(b, bus.PublisherConfig{}, logger, reg), eventstore.RelayConfig{}, logger, time.Now, reg)
	if err := relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Stop)
	proj := reports.NewProjector(pool, b, reports.ProjectorConfig{}, logger, time.Now, reg)
	if err := proj.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proj.Stop)
	return proj
}

// drain waits until the projector has applied every event.
func (f *fixture) drain(t *testing.T) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		applied := f.proj.Applied()
		var left int
		err := f.pool.QueryRow(t.Context(), `SELECT count(*) FROM events e WHERE NOT EXISTS (
			SELECT 1 FROM projector_applied a WHERE a.org_id = e.org_id AND a.event_seq = e.seq)`).Scan(&left)
		if err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		select {
		case <-applied:
		case <-deadline:
			t.Fatalf("%d events still not applied", left)
		}
	}
}

// row names one projection row: its table, organization, property and
// day (or month).
type row struct{ table, org, prop, key string }

// book is the cash book as the projection tables hold it: each row that
// moves anything, its values without updated_at.
type book map[row]string

func (f *fixture) book(t *testing.T) book {
	t.Helper()
	out := book{}
	for table, key := range map[string]string{"daily_cash_balances": "business_date", "monthly_cash_balances": "month"} {
		rows, err := f.pool.Query(t.Context(), `SELECT org_id::text, property_id::text, `+key+`::text, to_jsonb(b) - 'updated_at' - 'org_id' - 'property_id' - '`+key+`' FROM `+table+` b`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var org, prop, k string
			var vals map[string]any
			if err := rows.Scan(&org, &prop, &k, &vals); err != nil {
				t.Fatal(err)
			}
			if moves(vals) {
				b, _ := json.Marshal(vals) // sorted keys
				out[row{table, org, prop, k}] = string(b)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// moves reports whether a row holds anything: a row of zeros (and no
// count) equals no row.
func moves(vals map[string]any) bool {
	for _, v := range vals {
		if v != nil && v != 0.0 {
			return true
		}
	}
	return false
}

// diff lists the rows where got and want differ.
func diff(got, want book) string {
	keys := map[row]bool{}
	for k := range maps.Keys(got) {
		keys[k] = true
	}
	for k := range maps.Keys(want) {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if got[k] != want[k] {
			out = append(out, fmt.Sprintf("%+v: rebuilt %q, projected %q", k, got[k], want[k]))
		}
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := f.pool.Exec(t.Context(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// events counts the events of every organization.
func (f *fixture) events(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := f.pool.QueryRow(t.Context(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func run(t *testing.T, pool *pgxpool.Pool, cfg rebuild.Config) rebuild.Progress {
	t.Helper()
	p, err := rebuild.Run(t.Context(), pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRebuildGivesTheProjectorsBook: folding the event store gives the
// cash book the projector built, row for row: a run over an intact book
// changes nothing; one over an emptied book, or one with drift (a wrong
// amount, a lost monthly rollup, a phantom day), writes back exactly what
// the projector had.
func TestRebuildGivesTheProjectorsBook(t *testing.T) {
	t.Parallel()
	f := setup(t)
	projected := f.book(t)
	if len(projected) < 9 {
		t.Fatalf("the projector built %d rows; the fixture wants more", len(projected))
	}
	events := f.events(t)

	p := run(t, f.pool, rebuild.Config{Run: "intact"})
	if p.Orgs != 2 || p.Skipped != 0 || p.Events != events || p.ChangedRows != 0 {
		t.Fatalf("a run over an intact book: %+v; want 2 organizations, %d events, nothing changed", p, events)
	}
	if got := f.book(t); diff(got, projected) != "[]" {
		t.Fatalf("an intact book changed: %s", diff(got, projected))
	}

	t.Run("drift", func(t *testing.T) {
		o0, prop := f.orgs[0], f.props[0][0]
		f.exec(t, `UPDATE daily_cash_balances SET cash_received = cash_received + 999 WHERE org_id = $1 AND property_id = $2 AND business_date = current_date`, o0, prop)
		f.exec(t, `DELETE FROM monthly_cash_balances WHERE org_id = $1 AND property_id = $2`, o0, prop)
		f.exec(t, `INSERT INTO daily_cash_balances (org_id, property_id, business_date, cash_received, updated_at) VALUES ($1, $2, '2024-01-01', 5, now())`, o0, prop)
		var months int64
		if err := f.pool.QueryRow(t.Context(), `SELECT count(*) FROM monthly_cash_balances`).Scan(&months); err != nil {
			t.Fatal(err)
		}
		var progress []rebuild.Progress
		p := run(t, f.pool, rebuild.Config{Run: "drift", Progress: func(p rebuild.Progress) { progress = append(progress, p) }})
		lostMonths := int64(0)
		for k := range projected {
			if k.table == "monthly_cash_balances" && k.org == o0.String() && k.prop == prop.String() {
				lostMonths++
			}
		}
		if p.Orgs != 2 || p.ChangedRows != 2+lostMonths || p.Events != events {
			t.Fatalf("a run over the drift: %+v; want %d rows changed (the wrong day, the phantom, %d lost months)", p, 2+lostMonths, lostMonths)
		}
		if len(progress) != 2 || progress[0].Orgs != 1 || progress[1].Orgs != 2 {
			t.Fatalf("progress reports: %+v", progress)
		}
		if got := f.book(t); diff(got, projected) != "[]" {
			t.Fatalf("after the rebuild: %s", diff(got, projected))
		}
	})

	t.Run("an empty book", func(t *testing.T) {
		f.exec(t, `DELETE FROM daily_cash_balances`)
		f.exec(t, `DELETE FROM monthly_cash_balances`)
		p := run(t, f.pool, rebuild.Config{Run: "empty"})
		if p.ChangedRows != int64(len(projected)) {
			t.Fatalf("rebuilding an empty book changed %d rows, want the %d the projector wrote", p.ChangedRows, len(projected))
		}
		if got := f.book(t); diff(got, projected) != "[]" {
			t.Fatalf("after the rebuild: %s", diff(got, projected))
		}
	})

	t.Run("resume", func(t *testing.T) {
		// The same run name finds both organizations done; a new name
		// does them again.
		if p := run(t, f.pool, rebuild.Config{Run: "empty"}); p.Orgs != 0 || p.Skipped != 2 || p.Events != 0 {
			t.Fatalf("resumed run: %+v; want 2 skipped", p)
		}
		f.exec(t, `UPDATE daily_cash_balances SET bank_received = bank_received + 1 WHERE org_id = $1`, f.orgs[1])
		if p := run(t, f.pool, rebuild.Config{Run: "empty"}); p.ChangedRows != 0 {
			t.Fatalf("a finished run touched the book again: %+v", p)
		}
		if p := run(t, f.pool, rebuild.Config{Run: "again"}); p.Orgs != 2 || p.ChangedRows == 0 {
			t.Fatalf("a new run: %+v; want the drift repaired", p)
		}
		if got := f.book(t); diff(got, projected) != "[]" {
			t.Fatalf("after the new run: %s", diff(got, projected))
		}
	})

	t.Run("an interrupted run resumes where it stopped", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		// Stop after the first organization: the second is left to the
		// resumed run.
		p, err := rebuild.Run(ctx, f.pool, rebuild.Config{Run: "interrupted", Progress: func(rebuild.Progress) { cancel() }})
		if err == nil || p.Orgs != 1 {
			t.Fatalf("interrupted run: %+v, %v; want one organization and the context's error", p, err)
		}
		if p := run(t, f.pool, rebuild.Config{Run: "interrupted"}); p.Orgs != 1 || p.Skipped != 1 {
			t.Fatalf("resumed run: %+v; want the other organization", p)
		}
	})
}

// TestRebuildOneProperty: a run scoped to one property repairs that
// property's rows only; a property without its organization is refused.
func TestRebuildOneProperty(t *testing.T) {
	t.Parallel()
	f := setup(t)
	projected := f.book(t)
	org, target, bystander := f.orgs[0], f.props[0][0], f.props[0][1]
	if !slices.ContainsFunc(slices.Collect(maps.Keys(projected)), func(k row) bool { return k.prop == bystander.String() }) {
		t.Fatal("the fixture has no rows on the other property")
	}
	f.exec(t, `UPDATE daily_cash_balances SET bank_received = bank_received + 1 WHERE org_id = $1`, org)
	var drifted int64
	if err := f.pool.QueryRow(t.Context(), `SELECT count(*) FROM daily_cash_balances WHERE org_id = $1 AND property_id = $2`, org, target).Scan(&drifted); err != nil {
		t.Fatal(err)
	}
	p := run(t, f.pool, rebuild.Config{Run: "one-property", OrgID: org, PropertyID: target})
	if p.Orgs != 1 || p.ChangedRows != drifted {
		t.Fatalf("property rebuild: %+v; want the %d drifted rows of the property", p, drifted)
	}
	got := f.book(t)
	for k, v := range projected {
		switch {
		case k.table != "daily_cash_balances":
		case k.prop == target.String() && got[k] != v:
			t.Fatalf("%+v: %s after the property's rebuild, want %s", k, got[k], v)
		case k.prop == bystander.String() && got[k] == v:
			t.Fatalf("%+v: the other property was repaired too", k)
		}
	}
	if _, err := rebuild.Run(t.Context(), f.pool, rebuild.Config{PropertyID: target}); err == nil {
		t.Fatal("a property without its organization was rebuilt")
	}
}

// TestRebuildLeavesUnappliedEvents: an event the projector has not
// applied yet is not folded (the projector will add it), so a rebuild
// beside a lagging projector never counts an event twice.
func TestRebuildLeavesUnappliedEvents(t *testing.T) {
	t.Parallel()
	f := setup(t)
	projected := f.book(t)
	f.proj.Stop()
	ten, err := tenancy.New(f.pool, time.Now, tenancy.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer ten.Close()
	fin := finance.New(f.pool, ten, time.Now)
	var admin domain.Actor
	if err := f.pool.QueryRow(t.Context(), `SELECT org_id, id, role FROM users WHERE org_id = $1 AND role = 'ADMIN'`, f.orgs[1]).
		Scan(&admin.OrgID, &admin.UserID, &admin.Role); err != nil {
		t.Fatal(err)
	}
	if _, _, err := createRow(t.Context(), fin, admin, domain.Revenue, finance.CreateInput{PropertyID: f.props[1][0], Source: "room",
		AmountCents: 4242, PaymentMode: domain.Cash, OccurredAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	p := run(t, f.pool, rebuild.Config{Run: "lagging"})
	if p.ChangedRows != 0 || p.Events != f.events(t)-1 {
		t.Fatalf("a rebuild beside a lagging projector: %+v; want the unapplied event left out", p)
	}
	if got := f.book(t); diff(got, projected) != "[]" {
		t.Fatalf("the rebuild folded the unapplied event: %s", diff(got, projected))
	}
}

// createRow is the one call of finance's Create in these tests.
func createRow(ctx context.Context, fin *finance.Service, actor domain.Actor, kind domain.Kind, in finance.CreateInput) (finance.Transaction, finance.Written, error) {
	return fin.Create(ctx, actor, kind, in)
}

func ptr[T any](v T) *T { return &v }
