// Package idempotency remembers the outcome of writes sent with an
// Idempotency-Key for 24 hours, so that a retried request returns the
// original response instead of writing twice.
//
// A key goes through three states, one row of idempotency_keys:
// reserved (Reserve, before the request runs), committed (Mark, inside
// the write's own transaction just before it commits, so that "written"
// and "key used" are one fact) and done (Finish, with the answer). A
// request that failed without committing releases its key, which can be
// used again. A request finding its key reserved by another waits for the
// answer; if the holder is gone (its lease expired before it committed) it
// takes the key over.
package idempotency

import (
	"context"
	"crypto/sha256"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the key table.
func Migrations() postgres.MigrationSet {
	return postgres.EmbeddedSet("idempotency", migrationFiles, partitionMigration())
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

// Hash returns the hash of a canonical request body.
func Hash(canonical []byte) [32]byte { return sha256.Sum256(canonical) }

// Config tunes the reservations of keys. The zero value of each field
// means its default.
type Config struct {
	// Lease is how long a reservation outlives the last sign of life of the
	// request holding it: the holder renews it every Lease/3 while it runs,
	// and a retry takes over a reservation older than that which has not
	// committed (its holder died). Default 3 s.
	Lease time.Duration
	// Wait bounds how long a request waits for a concurrent one holding its
	// key to answer before it gives up with 409 (ErrInProgress). Default
	// 5 s: past a lease, so that a retry can take over from a dead holder
	// within one wait, short of the 10 s request deadline.
	Wait time.Duration
	// Poll is the pause between two looks at a key in progress. Default
	// 25 ms.
	Poll time.Duration
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.Lease <= 0 {
		c.Lease = 3 * time.Second
	}
	if c.Wait <= 0 {
		c.Wait = 5 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 25 * time.Millisecond
	}
	return c
}

// Store reserves, marks, answers and prunes keys.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
	cfg  Config
}

// NewStore returns a Store on pool with the default Config; now is the
// clock of the 24 h expiry (leases use the database's clock, shared by
// every instance).
func NewStore(pool *pgxpool.Pool, now func() time.Time) *Store {
	return NewStoreWith(pool, now, Config{})
}

// NewStoreWith is NewStore with cfg.
func NewStoreWith(pool *pgxpool.Pool, now func() time.Time, cfg Config) *Store {
	return &Store{pool: pool, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }, cfg: cfg.WithDefaults()}
}

// Prune deletes records older than the TTL and returns how many.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, s.now().Add(-TTL))
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", postgres.Translate(err))
	}
	return tag.RowsAffected(), nil
}
