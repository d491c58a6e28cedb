package eventstore

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// TestAppendOnlyGuards: a role that is not a superuser but holds every
// privilege on the tables (as the app's role does on a managed server) is
// refused DELETE, UPDATE and TRUNCATE on events and on each partition of it,
// also a partition that is the only one named.
func TestAppendOnlyGuards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := cluster.NewDatabase(t)
	admin, err := postgres.Open(ctx, dbURL, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	role := "appender_" + strings.TrimPrefix(u.Path, "/") // roles are cluster-wide
	for _, sql := range []string{
		`CREATE ROLE ` + role + ` LOGIN NOSUPERUSER PASSWORD 'appender-password'`,
		`GRANT ALL ON ALL TABLES IN SCHEMA public TO ` + role,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	rows, err := admin.Query(ctx, `SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) < 2 {
		t.Fatalf("events has partitions %v; the test needs a partitioned schema", parts)
	}
	// A chained event in every partition: a row guard only fires on a row.
	filled := map[string]bool{}
	b := relayBundle{pool: admin}
	for i := 0; len(filled) < len(parts); i++ {
		if i == 100*len(parts) {
			t.Fatalf("after %d organizations only partitions %v hold events", i, filled)
		}
		b.org, b.prop = domain.NewID(time.Now()), domain.NewID(time.Now())
		b.commit(t, b.event(domain.NewID(time.Now()), 1))
		var part string
		if err := admin.QueryRow(ctx, `SELECT tableoid::regclass::text FROM events WHERE org_id = $1`, b.org).Scan(&part); err != nil {
			t.Fatal(err)
		}
		filled[part] = true
	}
	var before int64
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&before); err != nil {
		t.Fatal(err)
	}

	u.User = url.UserPassword(role, "appender-password")
	app, err := postgres.Open(ctx, u.String(), postgres.PoolConfig{MaxConns: 1, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	for _, table := range append([]string{"events"}, parts...) {
		t.Run(table, func(t *testing.T) {
			for _, sql := range []string{
				`DELETE FROM ` + table,
				`UPDATE ` + table + ` SET metadata = '{}'`,
				`TRUNCATE ` + table,
			} {
				_, err := app.Exec(ctx, sql)
				if err == nil || !strings.Contains(err.Error(), "append-only") {
					t.Errorf("%s: err = %v, want the append-only refusal", sql, err)
				}
			}
		})
	}
	var after int64
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("events: %d rows before, %d after the refused statements", before, after)
	}
}
