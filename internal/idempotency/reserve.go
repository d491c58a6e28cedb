package idempotency

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cenkalti/backoff/v5"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// The outcomes of Reserve that are not a reservation or a replay.
var (
	// ErrMismatch: the key was used with another request body (409).
	ErrMismatch = fmt.Errorf("%w: this Idempotency-Key was used with a different request body", domain.ErrConflict)
	// ErrInProgress: a concurrent request holding the key did not answer
	// within Config.Wait (409).
	ErrInProgress = fmt.Errorf("%w: a concurrent request with this Idempotency-Key is still in progress; retry shortly", domain.ErrConflict)
	// ErrOutcomeUnknown: the key's request committed its write but its
	// instance was lost before it recorded the answer. The write is not
	// made again; the key answers this (503) until it expires.
	ErrOutcomeUnknown = fmt.Errorf("%w: the request with this Idempotency-Key was committed but its answer was lost; "+
		"read the resource instead of sending the request again", domain.ErrUnavailable)
	// errTakenOver: the reservation expired and a retry holds the key now,
	// so this request must not commit (Mark).
	errTakenOver = fmt.Errorf("%w: this request's Idempotency-Key was taken over by a retry", domain.ErrUnavailable)
)

// Answer is a response as it is replayed: its status, the headers that
// matter and its body.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Reservation is the hold of one request on its key, from Reserve to
// Finish.
type Reservation struct {
	store *Store
	key   Key
	owner domain.ID

	mu       sync.Mutex
	finished bool
	stop     chan struct{}
}

// Reserve takes k for a request whose body hashes to hash. It returns
// either the Reservation the caller now holds (run the request, Mark in
// its transaction, then Finish), or the Answer recorded for k (replay
// it), or ErrMismatch, ErrInProgress, ErrOutcomeUnknown or a database
// error. A key reserved by a running request is waited for up to
// Config.Wait; one whose holder's lease expired before it committed is
// taken over.
func (s *Store) Reserve(ctx context.Context, k Key, hash [32]byte) (*Reservation, *Answer, error) {
	type reserved struct {
		res *Reservation
		ans *Answer
	}
	// Only errBusy (another live request holds the key) is worth another
	// look, every Poll until Wait.
	got, err := backoff.Retry(ctx, func() (reserved, error) {
		res, ans, err := s.try(ctx, k, hash)
		if err != nil && !errors.Is(err, errBusy) {
			return reserved{}, backoff.Permanent(err)
		}
		return reserved{res, ans}, err
	}, backoff.WithBackOff(backoff.NewConstantBackOff(s.cfg.Poll)), backoff.WithMaxElapsedTime(s.cfg.Wait))
	switch {
	case errors.Is(err, errBusy):
		return nil, nil, ErrInProgress
	case err != nil && ctx.Err() != nil:
		return nil, nil, fmt.Errorf("wait for idempotency key: %w", err)
	}
	return got.res, got.ans, err
}

// errBusy: another live request holds the key; look again.
var errBusy = errors.New("idempotency key in progress")

const keyWhere = `org_id = $1 AND user_id = $2 AND route = $3 AND key = $4`

// try makes one attempt of Reserve.
func (s *Store) try(ctx context.Context, k Key, hash [32]byte) (*Reservation, *Answer, error) {
	now := s.now()
	owner := domain.NewID(now)
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO idempotency_keys (org_id, user_id, route, key, request_hash, state, owner, reserved_at, created_at)
		VALUES ($1, $2, $3, $4, $5, 'reserved', $6, clock_timestamp(), $7)
		ON CONFLICT DO NOTHING`, k.OrgID, k.UserID, k.Route, k.Value, hash[:], owner, now)
	if err != nil {
		return nil, nil, fmt.Errorf("reserve idempotency key: %w", postgres.Translate(err))
	}
	if tag.RowsAffected() == 1 {
		return s.hold(k, owner), nil, nil
	}
	var (
		got       []byte
		state     string
		holder    *domain.ID
		stale     bool
		ans       Answer
		headers   []byte
		txID      uint64
		createdAt time.Time
	)
	err = s.pool.QueryRow(ctx, `
		SELECT request_hash, state, owner, coalesce(reserved_at < clock_timestamp() - make_interval(secs => $5), false),
		       status, headers, response, tx_id::text::bigint, created_at
		FROM idempotency_keys WHERE `+keyWhere, k.OrgID, k.UserID, k.Route, k.Value, s.cfg.Lease.Seconds()).
		Scan(&got, &state, &holder, &stale, &ans.Status, &headers, &ans.Body, &txID, &createdAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, errBusy // released meanwhile: reserve again
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up idempotency key: %w", postgres.Translate(err))
	}
	if now.Sub(createdAt) >= TTL {
		if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE `+keyWhere+` AND created_at = $5`,
			k.OrgID, k.UserID, k.Route, k.Value, createdAt); err != nil {
			return nil, nil, fmt.Errorf("drop expired idempotency key: %w", postgres.Translate(err))
		}
		return nil, nil, errBusy
	}
	if !bytes.Equal(got, hash[:]) {
		return nil, nil, ErrMismatch
	}
	switch {
	case state == "done":
		ans.Header = http.Header{}
		if len(headers) > 0 {
			if err := json.Unmarshal(headers, &ans.Header); err != nil {
				return nil, nil, fmt.Errorf("decode idempotent answer: %w", err)
			}
		} else {
			// Recorded before headers were: a revenue or expense create.
			ans.Header.Set("Content-Type", "application/json")
			ans.Header.Set("X-Consistency-Token", domain.Token{TxID: txID}.String())
		}
		return nil, &ans, nil
	case state == "reserved" && stale && holder != nil:
		// The holder is gone before it committed: take the key over. A
		// holder still committing has the row locked by its Mark, so this
		// waits for its commit and then finds the key committed.
		tag, err := s.pool.Exec(ctx, `
			UPDATE idempotency_keys SET owner = $5, reserved_at = clock_timestamp()
			WHERE `+keyWhere+` AND state = 'reserved' AND owner = $6`,
			k.OrgID, k.UserID, k.Route, k.Value, owner, *holder)
		if err != nil {
			return nil, nil, fmt.Errorf("take over idempotency key: %w", postgres.Translate(err))
		}
		if tag.RowsAffected() == 1 {
			return s.hold(k, owner), nil, nil
		}
		return nil, nil, errBusy
	case state == "committed" && stale:
		return nil, nil, ErrOutcomeUnknown
	}
	return nil, nil, errBusy
}

// hold starts renewing the lease of a reservation just taken.
func (s *Store) hold(k Key, owner domain.ID) *Reservation {
	r := &Reservation{store: s, key: k, owner: owner, stop: make(chan struct{})}
	go r.renew()
	return r
}

// renew keeps the lease alive while the request runs, so that only a
// holder that is gone loses its key.
func (r *Reservation) renew() {
	t := time.NewTicker(r.store.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.store.cfg.Lease/3)
		k := r.key
		_, _ = r.store.pool.Exec(ctx, `UPDATE idempotency_keys SET reserved_at = clock_timestamp()
			WHERE `+keyWhere+` AND owner = $5 AND state <> 'done'`, k.OrgID, k.UserID, k.Route, k.Value, r.owner)
		cancel()
	}
}

// Mark is the postgres.BeforeCommit hook of the request's write: it marks
// the key committed inside the write's transaction, so that the write and
// the key's use commit together. It refuses (rolling the write back) when
// a retry took the key over meanwhile. After Finish it does nothing.
func (r *Reservation) Mark(ctx context.Context, tx pgx.Tx) error {
	r.mu.Lock()
	finished := r.finished
	r.mu.Unlock()
	if finished {
		return nil
	}
	k := r.key
	tag, err := tx.Exec(ctx, `
		UPDATE idempotency_keys SET state = 'committed', tx_id = pg_current_xact_id()
		WHERE `+keyWhere+` AND owner = $5 AND state <> 'done'`, k.OrgID, k.UserID, k.Route, k.Value, r.owner)
	if err != nil {
		return fmt.Errorf("mark idempotency key: %w", postgres.Translate(err))
	}
	if tag.RowsAffected() != 1 {
		return errTakenOver
	}
	return nil
}

// Finish ends the reservation. With remember, the answer is recorded for
// replays. Without it (the request failed or was refused), the key is
// released to be used again, unless the request's write committed: then
// its answer is recorded all the same, since the write will not be made
// again. Safe to call twice; ctx should outlive the request's own
// cancellation (context.WithoutCancel).
func (r *Reservation) Finish(ctx context.Context, a Answer, remember bool) error {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return nil
	}
	r.finished = true
	close(r.stop)
	r.mu.Unlock()
	k := r.key
	if !remember {
		tag, err := r.store.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE `+keyWhere+` AND owner = $5 AND state = 'reserved'`,
			k.OrgID, k.UserID, k.Route, k.Value, r.owner)
		if err != nil {
			return fmt.Errorf("release idempotency key: %w", postgres.Translate(err))
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
	}
	if a.Body == nil {
		a.Body = []byte{}
	}
	headers, err := json.Marshal(a.Header)
	if err != nil {
		return fmt.Errorf("encode idempotent answer: %w", err)
	}
	if _, err := r.store.pool.Exec(ctx, `
		UPDATE idempotency_keys SET state = 'done', status = $6, headers = $7, response = $8
		WHERE `+keyWhere+` AND owner = $5`,
		k.OrgID, k.UserID, k.Route, k.Value, r.owner, a.Status, headers, a.Body); err != nil {
		return fmt.Errorf("record idempotent answer: %w", postgres.Translate(err))
	}
	return nil
}
