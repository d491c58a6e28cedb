// Package idempotency remembers the outcome of creates sent with an
// Idempotency-Key for 24 hours, so that a retried request returns the
// original response instead of writing twice.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the key table.
func Migrations() postgres.MigrationSet {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return postgres.MigrationSet{Name: "idempotency", FS: sub, Go: []*goose.Migration{partitionMigration()}}
}

// TTL is how long a key is remembered.
const TTL = 24 * time.Hour

// MaxKeyLength bounds the Idempotency-Key header, in bytes.
const MaxKeyLength = 255

// Key names one remembered request: a key is scoped to its user and route.
type Key struct {
	OrgID, UserID domain.ID
	Route         string
	// Value is the Idempotency-Key header as sent.
	Value string
}

// Record is the remembered outcome of a request.
type Record struct {
	Key
	// RequestHash identifies the request body (see Hash).
	RequestHash [32]byte
	// Status and Response are what the original request answered.
	Status   int
	Response []byte
	// TxID is the writing transaction, from which the original consistency
	// token is rebuilt.
	TxID      uint64
	CreatedAt time.Time
}

// Hash returns the hash of a canonical request body.
func Hash(canonical []byte) [32]byte { return sha256.Sum256(canonical) }

// Matches reports whether r was recorded for the same request body.
func (r Record) Matches(hash [32]byte) bool { return bytes.Equal(r.RequestHash[:], hash[:]) }

// Store reads and prunes remembered keys.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewStore returns a Store on pool; now is the clock.
func NewStore(pool *pgxpool.Pool, now func() time.Time) *Store {
	return &Store{pool: pool, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }}
}

// ErrMissing is returned by Lookup when no live record exists.
var ErrMissing = errors.New("no idempotency record")

// Lookup returns the live record of k, or ErrMissing. An expired record of
// k is removed so that the key can be used again.
func (s *Store) Lookup(ctx context.Context, k Key) (Record, error) {
	r := Record{Key: k}
	var hash []byte
	err := s.pool.QueryRow(ctx, `
		SELECT request_hash, status, response, tx_id::text::bigint, created_at FROM idempotency_keys
		WHERE org_id = $1 AND user_id = $2 AND route = $3 AND key = $4`, k.OrgID, k.UserID, k.Route, k.Value).
		Scan(&hash, &r.Status, &r.Response, &r.TxID, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, ErrMissing
	}
	if err != nil {
		return Record{}, fmt.Errorf("look up idempotency key: %w", postgres.Translate(err))
	}
	if s.now().Sub(r.CreatedAt) >= TTL {
		if _, err := s.pool.Exec(ctx, `
			DELETE FROM idempotency_keys WHERE org_id = $1 AND user_id = $2 AND route = $3 AND key = $4 AND created_at = $5`,
			k.OrgID, k.UserID, k.Route, k.Value, r.CreatedAt); err != nil {
			return Record{}, fmt.Errorf("drop expired idempotency key: %w", postgres.Translate(err))
		}
		return Record{}, ErrMissing
	}
	copy(r.RequestHash[:], hash)
	return r, nil
}

// Queue adds the insert of r to b, so that it commits with the write it
// describes. If a concurrent request recorded the same key first, the
// batch fails; IsDuplicate tells that case.
func Queue(b *pgx.Batch, r Record) {
	b.Queue(`
		INSERT INTO idempotency_keys (org_id, user_id, route, key, request_hash, status, response, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.OrgID, r.UserID, r.Route, r.Value, r.RequestHash[:], r.Status, r.Response, r.CreatedAt)
}

// IsDuplicate reports whether err is the loss of a race to record a key.
func IsDuplicate(err error) bool { return postgres.IsUniqueViolation(err, "idempotency_keys_pkey") }

// Prune deletes records older than the TTL and returns how many.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, s.now().Add(-TTL))
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", postgres.Translate(err))
	}
	return tag.RowsAffected(), nil
}
