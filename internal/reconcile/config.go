package reconcile

import (
	"errors"
	"fmt"
	"time"
)

// Correction modes.
const (
	// ModeBatch writes up to BatchSize corrections with one statement.
	ModeBatch = "batch"
	// ModeRow writes each correction with a statement of its own: the
	// scaling guide's "before" (the baseline profile).
	ModeRow = "row"
)

// Config tunes reconciliation jobs, drift detection and the correction
// batcher. The zero value of each field means its default.
type Config struct {
	// Mode is how corrections are written: "batch" (default) or "row".
	Mode string
	// BatchSize is the most corrections one statement writes; the queue is
	// flushed as soon as it holds this many. Default 500: a statement's
	// planning and commit (about 10 ms here) are shared by its keys, and
	// its row locks are held for tens of milliseconds.
	BatchSize int
	// FlushEvery is the period at which whatever is queued is written.
	// Default 5 s.
	FlushEvery time.Duration
	// MaxAge bounds how long a queued correction waits: when the oldest
	// reaches it the queue is flushed. Default 5 s.
	MaxAge time.Duration
	// MaxQueue bounds the corrections waiting (distinct keys); further
	// detections are dropped and found again by a later check. Default
	// 100,000.
	MaxQueue int
	// RetryMax caps the backoff between the tries of a failing batch,
	// which is retried (with jitter) until it is written or the batcher
	// stops; then it goes back to the queue. Default 30 s.
	RetryMax time.Duration
	// Window is how far back every event of a property must have been
	// applied by the projector before the property is corrected: the
	// projector's applied-record retention. Default 8 days.
	Window time.Duration
	// SampleRate is how many report reads per second are sampled for a
	// drift check (asynchronously). Default 2; negative: off.
	SampleRate float64
	// SweepEvery is the period of the sweep of the properties the
	// projector changed since the last sweep. Default 1 min; negative: off.
	SweepEvery time.Duration
	// JobDeadline bounds one reconciliation job. Default 10 min.
	JobDeadline time.Duration
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeBatch
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.FlushEvery == 0 {
		c.FlushEvery = 5 * time.Second
	}
	if c.MaxAge == 0 {
		c.MaxAge = 5 * time.Second
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 100_000
	}
	if c.RetryMax == 0 {
		c.RetryMax = 30 * time.Second
	}
	if c.Window == 0 {
		c.Window = 8 * 24 * time.Hour
	}
	if c.SampleRate == 0 {
		c.SampleRate = 2
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = time.Minute
	}
	if c.JobDeadline == 0 {
		c.JobDeadline = 10 * time.Minute
	}
	return c
}

// Validate reports every problem of c (defaults filled) at once.
func (c Config) Validate() error {
	var errs []error
	if c.Mode != ModeBatch && c.Mode != ModeRow {
		errs = append(errs, fmt.Errorf("corrections mode must be %q or %q, got %q", ModeBatch, ModeRow, c.Mode))
	}
	if c.BatchSize < 1 || c.MaxQueue < c.BatchSize {
		errs = append(errs, errors.New("corrections batch size must be positive and at most the queue bound"))
	}
	if c.FlushEvery < 0 || c.MaxAge < 0 || c.RetryMax < 0 || c.Window < 0 || c.JobDeadline < 0 {
		errs = append(errs, errors.New("corrections intervals must be positive"))
	}
	return errors.Join(errs...)
}
