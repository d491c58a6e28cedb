package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"hmp/internal/config"
	"hmp/internal/tools"
)

// TestVerifyFold: `hmp verify --fold` passes on a seeded history and,
// after a transactions row is changed behind the events' back, exits
// non-zero naming that row: the events are the record, the table is
// derived from them.
func TestVerifyFold(t *testing.T) {
	dir := seededDir(t)
	ctx := context.Background()
	type result struct {
		Fold struct {
			Checked int
			Orgs    []struct{ Mismatches []struct{ ID, Detail string } }
		}
	}
	verify := func() (result, string, error) {
		t.Helper()
		var r result
		errs, err := runJSON(t, &r, "verify", "--fold", "--data-dir="+dir, "--log-level=warn")
		return r, errs, err
	}
	r, errs, err := verify()
	if err != nil || r.Fold.Checked == 0 || len(r.Fold.Orgs) != 0 {
		t.Fatalf("verify --fold on the seeded history: %v, %+v\n%s", err, r, errs)
	}

	url, local, err := tools.OpenDatabase(ctx, config.Config{DataDir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	err = conn.QueryRow(ctx, `UPDATE transactions SET amount_cents = amount_cents + 1
		WHERE (org_id, id) = (SELECT org_id, id FROM transactions ORDER BY org_id, id LIMIT 1) RETURNING id::text`).Scan(&id)
	conn.Close(ctx)
	if local != nil {
		_ = local.Stop()
	}
	if err != nil {
		t.Fatal(err)
	}
	r, errs, err = verify()
	if err == nil || len(r.Fold.Orgs) != 1 || len(r.Fold.Orgs[0].Mismatches) != 1 || r.Fold.Orgs[0].Mismatches[0].ID != id ||
		!strings.Contains(errs, id) {
		t.Fatalf("verify --fold after changing row %s: %v, %+v\n%s", id, err, r, errs)
	}
}
