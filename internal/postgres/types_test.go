package postgres_test

import (
	"context"
	"testing"
	"time"

	"hmp/internal/domain"
	"hmp/internal/postgres/pgtest"
)

var cluster *pgtest.Cluster

func TestIDAsUUID(t *testing.T) {
	t.Parallel()
	pool := cluster.NewPool(t)
	ctx := context.Background()
	id := domain.NewID(time.Now())

	t.Run("encodes as a binary uuid", func(t *testing.T) {
		var text string
		if err := pool.QueryRow(ctx, `SELECT $1::uuid::text`, id).Scan(&text); err != nil {
			t.Fatal(err)
		}
		if text != id.String() {
			t.Fatalf("got %s, want %s", text, id)
		}
	})
	t.Run("pointer and nil pointer", func(t *testing.T) {
		var isNull bool
		var text string
		if err := pool.QueryRow(ctx, `SELECT $1::uuid IS NULL, $2::uuid::text`, (*domain.ID)(nil), &id).Scan(&isNull, &text); err != nil {
			t.Fatal(err)
		}
		if !isNull || text != id.String() {
			t.Fatalf("got null=%v text=%s", isNull, text)
		}
	})
	t.Run("scans a uuid, NULL as the zero id or a nil pointer", func(t *testing.T) {
		var got, null domain.ID
		var ptr, nilPtr *domain.ID
		null[0] = 1 // must be cleared
		err := pool.QueryRow(ctx, `SELECT $1::text::uuid, NULL::uuid, $1::text::uuid, NULL::uuid`, id.String()).Scan(&got, &null, &ptr, &nilPtr)
		if err != nil {
			t.Fatal(err)
		}
		if got != id || !null.IsZero() || ptr == nil || *ptr != id || nilPtr != nil {
			t.Fatalf("got %s, null %s, ptr %v, nil ptr %v", got, null, ptr, nilPtr)
		}
	})
	t.Run("the zero id is the nil uuid, not NULL", func(t *testing.T) {
		var text string
		if err := pool.QueryRow(ctx, `SELECT $1::uuid::text`, domain.ID{}).Scan(&text); err != nil {
			t.Fatal(err)
		}
		if text != "00000000-0000-0000-0000-000000000000" {
			t.Fatalf("got %s", text)
		}
	})
	t.Run("ids in arrays", func(t *testing.T) {
		var n int
		if err := pool.QueryRow(ctx, `SELECT cardinality($1::uuid[])`, []domain.ID{id, id}).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var out []domain.ID
		if err := pool.QueryRow(ctx, `SELECT ARRAY[$1::text::uuid]`, id.String()).Scan(&out); err != nil {
			t.Fatal(err)
		}
		if n != 2 || len(out) != 1 || out[0] != id {
			t.Fatalf("got %d, %v", n, out)
		}
	})
}
