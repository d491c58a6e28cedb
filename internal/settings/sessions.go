package settings

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// sessionPrefix starts the keys of the operator dashboard's sessions in
// the settings bucket (beside Key, which the settings watcher follows
// alone).
const sessionPrefix = "session."

// Sessions are the operator dashboard's login sessions, kept in the
// settings bucket so that every instance on the bus shares them: a session
// opened on one instance is valid on all, and ending it ends it on all at
// once (every check reads the bucket). The bucket holds a hash of each
// session id, never the id itself, and its expiry, which Valid enforces.
// Safe for concurrent use.
type Sessions struct {
	kv    jetstream.KeyValue
	ttl   time.Duration
	clock func() time.Time
}

// SessionsConfig tunes the sessions.
type SessionsConfig struct {
	// TTL is how long a session lasts from its opening. Default 12 h.
	TTL time.Duration
	// Clock is the time source. Default time.Now.
	Clock func() time.Time
}

// NewSessions returns the sessions kept in kv (the settings bucket; see
// BucketConfig).
func NewSessions(kv jetstream.KeyValue, cfg SessionsConfig) *Sessions {
	if cfg.TTL <= 0 {
		cfg.TTL = 12 * time.Hour
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Sessions{kv: kv, ttl: cfg.TTL, clock: cfg.Clock}
}

// TTL is how long a session lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

type sessionRecord struct {
	OpenedAt  time.Time `json:"openedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

func sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return sessionPrefix + hex.EncodeToString(sum[:])
}

// Open starts a session and returns its id (32 random bytes, hex: the
// cookie's value) and when it expires. Sessions expired by then are
// removed from the bucket on the way.
func (s *Sessions) Open(ctx context.Context) (string, time.Time, error) {
	s.sweep(ctx)
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := s.clock()
	rec := sessionRecord{OpenedAt: now.UTC(), ExpiresAt: now.Add(s.ttl).UTC()}
	v, _ := json.Marshal(rec)
	if _, err := s.kv.Create(ctx, sessionKey(id), v); err != nil {
		return "", time.Time{}, fmt.Errorf("open session: %w", err)
	}
	return id, rec.ExpiresAt, nil
}

// Valid reports whether id is an open session that has not expired (an
// expired one is removed). An empty or unknown id is not valid; an error
// means the bucket could not be read.
func (s *Sessions) Valid(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	e, err := s.kv.Get(ctx, sessionKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check session: %w", err)
	}
	var rec sessionRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil || !s.clock().Before(rec.ExpiresAt) {
		_ = s.kv.Purge(ctx, e.Key())
		return false, nil
	}
	return true, nil
}

// End ends session id on every instance at once. Ending an unknown or
// ended session is no error.
func (s *Sessions) End(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	if err := s.kv.Purge(ctx, sessionKey(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// sweep removes the expired sessions (best effort: a failure leaves them
// for the next sweep; Valid refuses them meanwhile).
func (s *Sessions) sweep(ctx context.Context) {
	keys, err := s.kv.ListKeysFiltered(ctx, sessionPrefix+"*")
	if err != nil {
		return
	}
	defer func() { _ = keys.Stop() }()
	now := s.clock()
	for k := range keys.Keys() {
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var rec sessionRecord
		if json.Unmarshal(e.Value(), &rec) != nil || !now.Before(rec.ExpiresAt) {
			_ = s.kv.Purge(ctx, k)
		}
	}
}
