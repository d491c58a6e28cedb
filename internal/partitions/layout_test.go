package partitions_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// triggers lists the user triggers of table as "name enabled definition".
func triggers(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT tgname || ' ' || tgenabled::text || ' ' || pg_get_triggerdef(oid) FROM pg_trigger
		WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// refusesTruncate checks that the append-only guard of events stops a
// TRUNCATE (rolled back either way).
func refusesTruncate(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `TRUNCATE events`)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "append-only") {
		t.Errorf("TRUNCATE events: err = %v, want the append-only refusal", err)
	}
}

// TestNewSchemaIsPartitioned: a new database has every growing table
// partitioned by hash of org_id into the default count, with the keys,
// indexes and columns of the unpartitioned definition.
func TestNewSchemaIsPartitioned(t *testing.T) {
	ctx := context.Background()
	pool := db.NewPool(t)
	want := []string{"transactions", "events", "idempotency_keys", "daily_cash_balances", "monthly_cash_balances", "projector_applied", "cash_counts"}
	for _, table := range want {
		var strategy string
		var parts int
		err := pool.QueryRow(ctx, `
			SELECT pt.partstrat::text || ':' || pg_get_partkeydef(pt.partrelid),
			       (SELECT count(*) FROM pg_inherits WHERE inhparent = pt.partrelid)
			FROM pg_partitioned_table pt WHERE pt.partrelid = $1::regclass`, table).Scan(&strategy, &parts)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if strategy != "h:HASH (org_id)" || parts != 16 {
			t.Errorf("%s: %s with %d partitions, want HASH (org_id) with 16", table, strategy, parts)
		}
		// Every primary key and unique index includes org_id.
		var bad []string
		rows, err := pool.Query(ctx, `
			SELECT ci.relname FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
			WHERE i.indrelid = $1::regclass AND i.indisunique
			  AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k WHERE a.attname = 'org_id')`, table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			bad = append(bad, n)
		}
		rows.Close()
		if len(bad) > 0 {
			t.Errorf("%s: unique indexes without org_id: %v", table, bad)
		}
	}
	// Names the code relies on survived the switch.
	for _, name := range []string{"events_entity_version", "events_pkey", "transactions_kind_fields", "cash_counts_org_id_property_id_fkey"} {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conname = $1 AND conrelid IN (SELECT oid FROM pg_class WHERE relkind = 'p')`, name).Scan(&n); err != nil || n != 1 {
			t.Errorf("constraint %s: %d (%v)", name, n, err)
		}
	}
	for _, name := range []string{"events_tx", "events_org_tx", "transactions_pending_by_creator", "projector_applied_at"} {
		var kind string
		if err := pool.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE relname = $1`, name).Scan(&kind); err != nil || kind != "I" {
			t.Errorf("index %s: kind %q (%v), want a partitioned index", name, kind, err)
		}
	}
	var ff string
	if err := pool.QueryRow(ctx, `SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'daily_cash_balances_p3'`).Scan(&ff); err != nil || ff != "fillfactor=80" {
		t.Errorf("daily_cash_balances_p3 options %q (%v), want fillfactor=80", ff, err)
	}
	// The triggers of the unpartitioned definition carry over: events
	// stays append-only.
	got := strings.Join(triggers(t, pool, "events"), "\n")
	for _, want := range []string{
		"events_no_delete O CREATE TRIGGER events_no_delete BEFORE DELETE OR UPDATE ON public.events FOR EACH ROW EXECUTE FUNCTION events_append_only()",
		"events_no_truncate O CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON public.events FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("events triggers:\n%s\nwant %q", got, want)
		}
	}
	refusesTruncate(t, pool)
	// The identity of events carries on.
	var seq int64
	if err := pool.QueryRow(ctx, `SELECT nextval(pg_get_serial_sequence('events', 'seq'))`).Scan(&seq); err != nil || seq != 1 {
		t.Errorf("events seq: %d (%v)", seq, err)
	}
}
