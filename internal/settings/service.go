package settings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of the settings; Key holds the settings
// in force, and its history (the last History changes) is the audit trail.
const (
	Bucket  = "hmp_settings"
	Key     = "current"
	History = 64
)

// Who is who asked for a change: the operator's name as they gave it (the
// X-HMP-Operator header, else "operator") and their address.
type Who struct {
	Operator string `json:"operator"`
	Addr     string `json:"addr"`
}

// Record is one change of the settings, as stored and as audited.
type Record struct {
	// Revision is the record's revision in the bucket (0 before stored).
	Revision uint64    `json:"revision"`
	At       time.Time `json:"at"`
	Who      Who       `json:"who"`
	Reason   string    `json:"reason,omitempty"`
	// Before is nil for the record an instance seeded the bucket with.
	Before *Settings `json:"before,omitempty"`
	After  Settings  `json:"after"`
}

// Applier puts settings into force in this instance's components. It is
// called on the watcher's goroutine, one call at a time, with every
// revision this instance sees (the first at Start).
type Applier func(ctx context.Context, s Settings) error

// State is what an instance has in force.
type State struct {
	Settings Settings `json:"settings"`
	// Revision is the bucket revision applied (instances showing the same
	// revision have converged).
	Revision uint64 `json:"revision"`
	// AppliedAt is when this instance applied it.
	AppliedAt time.Time `json:"appliedAt"`
	// ApplyError is set when a component refused part of the settings.
	ApplyError string `json:"applyError,omitempty"`
}

// Config tunes the service.
type Config struct {
	// Initial are this instance's settings from its configuration: they
	// seed the bucket when it holds none, or (Own) replace what it holds.
	Initial Settings
	// Own makes this instance's configuration win at start (a single
	// instance on its own embedded bus: its flags say what it runs).
	// Otherwise the instance adopts the settings in force in the cluster.
	Own bool
	// Profiles resolves profile names.
	Profiles Profiles
	// Apply puts settings into force.
	Apply Applier
	// ApplyTimeout bounds how long a change waits for this instance to
	// apply it before answering. Default 30 s.
	ApplyTimeout time.Duration
	// Clock is the time source. Default time.Now.
	Clock func() time.Time
}

// Service holds the settings in force and changes them everywhere.
type Service struct {
	kv     jetstream.KeyValue
	cfg    Config
	logger *slog.Logger

	mu      sync.Mutex
	state   State
	changed chan struct{} // closed and replaced at every applied revision
	cancel  context.CancelFunc
	done    chan struct{}
	change  sync.Mutex // one local change at a time (optimistic across instances)
}

// New returns a stopped service on kv (a bucket with History kept; see
// BucketConfig).
func New(kv jetstream.KeyValue, cfg Config, logger *slog.Logger) *Service {
	if cfg.ApplyTimeout == 0 {
		cfg.ApplyTimeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{kv: kv, cfg: cfg, logger: logger, changed: make(chan struct{}), state: State{Settings: cfg.Initial}}
}

// BucketConfig is the bucket the service needs.
func BucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: Bucket, History: History, Description: "hmp live settings; history is the audit trail"}
}

// Start seeds the bucket (or adopts what it holds), applies the settings
// in force, and then follows every change until Stop. Safe to call twice.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	started := s.cancel != nil
	s.mu.Unlock()
	if started {
		return nil
	}
	if err := s.seed(ctx); err != nil {
		return err
	}
	// The watch lives until Stop cancels wctx: its subscription's
	// goroutine ends with that context too, even when the connection is
	// already gone (an instance killed) and unsubscribing fails.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := s.kv.Watch(wctx, Key)
	if err != nil {
		cancel()
		return fmt.Errorf("watch settings: %w", err)
	}
	done, first := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.cancel, s.done = cancel, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		defer func() { _ = w.Stop() }()
		s.follow(wctx, w, first)
	}()
	// The watcher delivers the value in force first: wait for it to be
	// applied, so that the instance serves under the cluster's settings.
	select {
	case <-first:
	case <-time.After(s.cfg.ApplyTimeout):
		s.logger.Warn("settings_initial_apply_slow")
	}
	return nil
}

// seed stores this instance's settings: when the bucket holds none, or
// when its own configuration wins (Own) and differs.
func (s *Service) seed(ctx context.Context) error {
	seed := Record{At: s.cfg.Clock(), Who: Who{Operator: "startup"}, After: s.cfg.Initial}
	if !s.cfg.Own {
		if _, err := s.put(ctx, seed, 0, false); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		return nil
	}
	cur, err := s.read(ctx)
	if err != nil {
		return err
	}
	if cur != nil && Equal(cur.After, seed.After) {
		return nil
	}
	if cur != nil {
		seed.Before = &cur.After
	}
	_, err = s.put(ctx, seed, 0, true)
	return err
}

// Stop stops following changes. Safe to call twice.
func (s *Service) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (s *Service) follow(ctx context.Context, w jetstream.KeyWatcher, first chan struct{}) {
	once := sync.OnceFunc(func() { close(first) })
	defer once()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the initial values are all delivered
				once()
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var r Record
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				s.logger.Error("settings_malformed", "revision", e.Revision(), "error", err.Error())
				continue
			}
			s.applyRecord(ctx, r, e.Revision())
			once()
		}
	}
}

func (s *Service) applyRecord(ctx context.Context, r Record, rev uint64) {
	st := State{Settings: r.After, Revision: rev, AppliedAt: s.cfg.Clock()}
	if s.cfg.Apply != nil {
		if err := s.cfg.Apply(ctx, r.After); err != nil {
			st.ApplyError = err.Error()
			s.logger.Error("settings_apply_failed", "revision", rev, "profile", r.After.Profile, "error", err.Error())
		}
	}
	s.logger.Info("settings_applied", "revision", rev, "profile", r.After.Profile, "modified", r.After.Modified,
		"operator", r.Who.Operator, "addr", r.Who.Addr)
	s.mu.Lock()
	s.state = st
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Current returns the settings this instance has in force.
func (s *Service) Current() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Update applies change c, on behalf of who, on every instance: it
// resolves c against the settings in force in the bucket, stores the
// result (optimistically: a concurrent change from another instance makes
// it resolve again), and waits until this instance has applied it. A
// wrong change returns a *ValidationError and changes nothing.
func (s *Service) Update(ctx context.Context, c Change, who Who) (State, error) {
	s.change.Lock()
	defer s.change.Unlock()
	for range 5 {
		cur, err := s.read(ctx)
		if err != nil {
			return State{}, err
		}
		if cur == nil {
			return State{}, errors.New("settings: the bucket holds no settings (not started)")
		}
		next, err := Resolve(cur.After, c, s.cfg.Profiles)
		if err != nil {
			return State{}, err
		}
		before := cur.After
		rev, err := s.put(ctx, Record{At: s.cfg.Clock(), Who: who, Reason: c.Reason, Before: &before, After: next}, cur.Revision, true)
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // another instance changed it meanwhile
		}
		if err != nil {
			return State{}, err
		}
		return s.waitApplied(ctx, rev)
	}
	return State{}, errors.New("settings: too many concurrent changes, try again")
}

// waitApplied waits until this instance has applied revision rev.
func (s *Service) waitApplied(ctx context.Context, rev uint64) (State, error) {
	timeout := time.NewTimer(s.cfg.ApplyTimeout)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		st, ch := s.state, s.changed
		s.mu.Unlock()
		if st.Revision >= rev {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		case <-timeout.C:
			return st, fmt.Errorf("settings revision %d stored but not yet applied here after %s", rev, s.cfg.ApplyTimeout)
		}
	}
}

// History returns the last changes, newest first (at most History).
func (s *Service) History(ctx context.Context) ([]Record, error) {
	entries, err := s.kv.History(ctx, Key)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("settings history: %w", err)
	}
	out := make([]Record, 0, len(entries))
	for _, e := range entries {
		if e.Operation() != jetstream.KeyValuePut {
			continue
		}
		var r Record
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			continue
		}
		r.Revision = e.Revision()
		out = append(out, r)
	}
	slices.Reverse(out)
	return out, nil
}

// read returns the record in force in the bucket (nil: none).
func (s *Service) read(ctx context.Context) (*Record, error) {
	e, err := s.kv.Get(ctx, Key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	r.Revision = e.Revision()
	return &r, nil
}

// put stores r: as an update of revision rev (CAS), or, with rev 0 and
// overwrite unset, only if the key does not exist; with rev 0 and
// overwrite set, unconditionally. A lost race returns
// jetstream.ErrKeyExists.
func (s *Service) put(ctx context.Context, r Record, rev uint64, overwrite bool) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("encode settings: %w", err)
	}
	var n uint64
	switch {
	case rev > 0:
		n, err = s.kv.Update(ctx, Key, b, rev)
	case overwrite:
		n, err = s.kv.Put(ctx, Key, b)
	default:
		n, err = s.kv.Create(ctx, Key, b)
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		err = jetstream.ErrKeyExists
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("store settings: %w", err)
	}
	return n, err
}
