// Package idempotency remembers the outcome of writes sent with an
// Idempotency-Key for 24 hours, so that a retried request returns the
// original response instead of writing twice. It owns the key table; the
// HTTP edge (internal/httpapi) is its one user: it reserves a key before
// the request runs, has the mark of the key commit with the request's
// write (Reservation.Mark as a postgres.BeforeCommit hook), and records
// the answer after.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
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

// Lease is how long a reserved key whose request has written nothing
// stays that request's: past it, a retry takes the key over (its first
// request died before writing, or is still running and will find the key
// taken at its commit, and write nothing). Longer than any request's
// deadline (10 s by default).
const Lease = time.Minute

// MaxKeyLength bounds the Idempotency-Key header, in characters.
const MaxKeyLength = 255

// ValidKey reports what is wrong with an Idempotency-Key header value:
// it must be 1 to MaxKeyLength printable ASCII characters (0x20-0x7E).
func ValidKey(v string) error {
	if v == "" || len(v) > MaxKeyLength {
		return fmt.Errorf("must be 1 to %d characters", MaxKeyLength)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return errors.New("must be printable ASCII characters only")
		}
	}
	return nil
}

// Key names one remembered request: a key is scoped to its user and route.
type Key struct {
	OrgID, UserID domain.ID
	// Route is the method and the path as requested
	// ("POST /v1/finance/revenues/<id>/approve").
	Route string
	// Value is the Idempotency-Key header as sent.
	Value string
}

// Record is the remembered state of a key.
type Record struct {
	Key
	// RequestHash identifies the request body (see Hash).
	RequestHash [32]byte
	// InProgress: the key is reserved by a request that has not answered
	// yet (Status, Header and Response are empty).
	InProgress bool
	// Written: a transaction of the reserving request committed.
	Written bool
	// Status, Header and Response are what the original request answered.
	// Header is nil for records written before headers were kept (their
	// consistency token is rebuilt from TxID).
	Status   int
	Header   http.Header
	Response []byte
	// TxID is the transaction that reserved (or, for older records,
	// wrote) the key.
	TxID      uint64
	CreatedAt time.Time
}

// Hash returns the hash of a request body. A JSON body is hashed in a
// canonical form (object members sorted, insignificant space dropped),
// so that the same JSON spelled differently is the same request.
func Hash(body []byte) [32]byte {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err == nil && !d.More() {
		if canonical, err := json.Marshal(v); err == nil {
			return sha256.Sum256(canonical)
		}
	}
	return sha256.Sum256(body)
}

// Matches reports whether r was recorded for the same request body.
func (r Record) Matches(hash [32]byte) bool { return bytes.Equal(r.RequestHash[:], hash[:]) }

// Store reserves, records and prunes keys.
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

// ErrInProgress is returned by Reserve when another request holds the key
// and has not answered yet.
var ErrInProgress = fmt.Errorf("%w: a request with this Idempotency-Key is in progress; retry shortly", domain.ErrConflict)

// ErrTakenOver fails the commit of a request whose reservation a retry
// took over past the Lease: it writes nothing.
var ErrTakenOver = fmt.Errorf("%w: this request's Idempotency-Key was taken over by a retry; nothing was written", domain.ErrConflict)

const keyWhere = `org_id = $1 AND user_id = $2 AND route = $3 AND key = $4`

func keyArgs(k Key, more ...any) []any {
	return append([]any{k.OrgID, k.UserID, k.Route, k.Value}, more...)
}

// Lookup returns the live record of k, or ErrMissing. An expired record of
// k is removed so that the key can be used again.
func (s *Store) Lookup(ctx context.Context, k Key) (Record, error) {
	r, _, err := s.lookup(ctx, k)
	return r, err
}

func (s *Store) lookup(ctx context.Context, k Key) (Record, domain.ID, error) {
	r := Record{Key: k}
	var (
		hash, header []byte
		owner        *domain.ID
	)
	err := s.pool.QueryRow(ctx, `
		SELECT request_hash, status, response, headers, written, owner, tx_id::text::bigint, created_at
		FROM idempotency_keys WHERE `+keyWhere, keyArgs(k)...).
		Scan(&hash, &r.Status, &r.Response, &header, &r.Written, &owner, &r.TxID, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, domain.ID{}, ErrMissing
	}
	if err != nil {
		return Record{}, domain.ID{}, fmt.Errorf("look up idempotency key: %w", postgres.Translate(err))
	}
	if s.now().Sub(r.CreatedAt) >= TTL {
		if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE `+keyWhere+` AND created_at = $5`,
			keyArgs(k, r.CreatedAt)...); err != nil {
			return Record{}, domain.ID{}, fmt.Errorf("drop expired idempotency key: %w", postgres.Translate(err))
		}
		return Record{}, domain.ID{}, ErrMissing
	}
	copy(r.RequestHash[:], hash)
	r.InProgress = r.Status == 0
	if header != nil {
		if err := json.Unmarshal(header, &r.Header); err != nil {
			return Record{}, domain.ID{}, fmt.Errorf("decode idempotency record headers: %w", err)
		}
	}
	var o domain.ID
	if owner != nil {
		o = *owner
	}
	return r, o, nil
}

// Reserve takes k for one request with body hash. It returns either a
// Reservation (the caller runs the request, then Completes or Releases
// it) or the record of a request that already answered under k (the
// caller replays it if it Matches hash, else answers 409). A key held by
// a request that has not answered is ErrInProgress, unless that request
// wrote nothing for longer than the Lease: then it is taken over. The
// reservation commits on its own, before the request runs, so that of two
// concurrent requests only one runs.
func (s *Store) Reserve(ctx context.Context, k Key, hash [32]byte) (*Reservation, Record, error) {
	for range 3 { // a record that expires or is released meanwhile: look again
		now := s.now()
		owner := domain.NewID(now)
		tag, err := s.pool.Exec(ctx, `
			INSERT INTO idempotency_keys (org_id, user_id, route, key, request_hash, status, response, owner, created_at)
			VALUES ($1, $2, $3, $4, $5, 0, '', $6, $7)
			ON CONFLICT (org_id, user_id, route, key) DO NOTHING`, keyArgs(k, hash[:], owner, now)...)
		if err != nil {
			return nil, Record{}, fmt.Errorf("reserve idempotency key: %w", postgres.Translate(err))
		}
		if tag.RowsAffected() == 1 {
			return &Reservation{store: s, key: k, owner: owner}, Record{}, nil
		}
		rec, held, err := s.lookup(ctx, k)
		if errors.Is(err, ErrMissing) {
			continue
		}
		if err != nil {
			return nil, Record{}, err
		}
		if !rec.InProgress {
			return nil, rec, nil
		}
		if rec.Written || now.Sub(rec.CreatedAt) < Lease {
			return nil, Record{}, ErrInProgress
		}
		tag, err = s.pool.Exec(ctx, `
			UPDATE idempotency_keys SET owner = $5, request_hash = $6, created_at = $7
			WHERE `+keyWhere+` AND status = 0 AND NOT written AND owner = $8`, keyArgs(k, owner, hash[:], now, held)...)
		if err != nil {
			return nil, Record{}, fmt.Errorf("take over idempotency key: %w", postgres.Translate(err))
		}
		if tag.RowsAffected() == 1 {
			return &Reservation{store: s, key: k, owner: owner}, Record{}, nil
		}
	}
	return nil, Record{}, ErrInProgress
}

// Reservation is a key held by the one request that may act on it.
type Reservation struct {
	store *Store
	key   Key
	owner domain.ID
}

// Mark records, in tx, that the reserving request writes: it is meant as
// the request's postgres.BeforeCommit hook, so that the mark commits with
// the write or not at all. A reservation taken over meanwhile is
// ErrTakenOver, which rolls the write back.
func (r *Reservation) Mark(ctx context.Context, tx pgx.Tx) error {
	tag, err := tx.Exec(ctx, `UPDATE idempotency_keys SET written = true WHERE `+keyWhere+` AND owner = $5`,
		keyArgs(r.key, r.owner)...)
	if err != nil {
		return fmt.Errorf("mark idempotency key: %w", postgres.Translate(err))
	}
	if tag.RowsAffected() != 1 {
		return ErrTakenOver
	}
	return nil
}

// Complete records the answer that later requests with the key replay.
func (r *Reservation) Complete(ctx context.Context, status int, header http.Header, body []byte) error {
	raw, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("encode idempotency record headers: %w", err)
	}
	if body == nil {
		body = []byte{}
	}
	_, err = r.store.pool.Exec(ctx, `
		UPDATE idempotency_keys SET status = $6, headers = $7, response = $8
		WHERE `+keyWhere+` AND owner = $5`, keyArgs(r.key, r.owner, status, raw, body)...)
	if err != nil {
		return fmt.Errorf("record idempotency key: %w", postgres.Translate(err))
	}
	return nil
}

// Release gives the key up, so that a later request with it runs afresh.
// With unwritten, a key whose request committed a write is kept (in
// progress, never run again: nothing is written twice) and Release
// reports false.
func (r *Reservation) Release(ctx context.Context, unwritten bool) (bool, error) {
	sql := `DELETE FROM idempotency_keys WHERE ` + keyWhere + ` AND owner = $5`
	if unwritten {
		sql += ` AND NOT written`
	}
	tag, err := r.store.pool.Exec(ctx, sql, keyArgs(r.key, r.owner)...)
	if err != nil {
		return false, fmt.Errorf("release idempotency key: %w", postgres.Translate(err))
	}
	return tag.RowsAffected() == 1, nil
}

// Prune deletes records older than the TTL and returns how many.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, s.now().Add(-TTL))
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", postgres.Translate(err))
	}
	return tag.RowsAffected(), nil
}
