package tools_test

import (
	"context"
	"log/slog"
	"testing"

	"hmp/internal/config"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/tools"
)

var cluster *pgtest.Cluster

// The template stays empty: every test migrates (or does not) itself.
func TestMain(m *testing.M) { pgtest.Main(m, &cluster) }

// partitions returns how many partitions the transactions table has, -1
// when it is a plain table and -2 when it does not exist.
func partitions(t *testing.T, db *tools.Tool) int {
	t.Helper()
	var n int
	err := db.Pool.QueryRow(context.Background(), `SELECT CASE
		WHEN to_regclass('public.transactions') IS NULL THEN -2
		WHEN (SELECT relkind FROM pg_class WHERE oid = to_regclass('public.transactions')) = 'r' THEN -1
		ELSE (SELECT count(*)::int FROM pg_inherits WHERE inhparent = to_regclass('public.transactions')) END`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func open(t *testing.T, url string, parts int, opts tools.ToolOptions) *tools.Tool {
	t.Helper()
	db, err := tools.OpenTool(context.Background(), config.Config{DatabaseURL: url, Partitions: parts}, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if db.Embedded || db.URL != url {
		t.Fatalf("opened %q (embedded %v), want the configured %q", db.URL, db.Embedded, url)
	}
	return db
}

// TestOpenToolMigratesOnce: an operator command opens the configured
// database the way a serving instance does: read-only commands leave the
// schema alone, a schema created now gets the configured partition count,
// and a later command configured otherwise keeps the recorded one (a
// second layout would split the data).
func TestOpenToolMigratesOnce(t *testing.T) {
	url := cluster.NewDatabase(t)
	if got := partitions(t, open(t, url, 4, tools.ToolOptions{ReadOnly: true})); got != -2 {
		t.Fatalf("a read-only command migrated: transactions partitions = %d", got)
	}
	if got := partitions(t, open(t, url, 4, tools.ToolOptions{})); got != 4 {
		t.Fatalf("transactions partitions = %d, want the configured 4", got)
	}
	if got := partitions(t, open(t, url, 16, tools.ToolOptions{Conns: 3})); got != 4 {
		t.Fatalf("transactions partitions = %d after a command configured for 16, want the recorded 4", got)
	}
	if got := partitions(t, open(t, cluster.NewDatabase(t), -1, tools.ToolOptions{})); got != -1 {
		t.Fatalf("partitions -1: transactions partitions = %d, want a plain table", got)
	}
}
