package loadtest

import (
	"context"
	"log/slog"
	"time"
)

// Phases are the knobs that Writes, Projection and Freshness share around
// their workload: the wait for a quiet machine before a phase, the seed,
// a hook between phases and the logger.
type Phases struct {
	// MaxSettle bounds the wait before a phase for the machine to go
	// quiet after what came before (see Settle). Default 30 s; negative:
	// no wait.
	MaxSettle time.Duration
	// Seed makes the workload repeatable. Default 1.
	Seed uint64
	// Between, when set, runs before each phase with the phase's name
	// (say, to start or stop a CPU profile) and at the end with "".
	Between func(before string)
	Logger  *slog.Logger
}

func (p Phases) withDefaults() Phases {
	if p.MaxSettle == 0 {
		p.MaxSettle = 30 * time.Second
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Between == nil {
		p.Between = func(string) {}
	}
	return p
}

// settleBefore waits (at most MaxSettle) for this process and the
// PostgreSQL at postmaster to go quiet, logs the wait, and runs the phase
// hook before the phase next.
func (p Phases) settleBefore(ctx context.Context, postmaster int, next string) {
	waited := Settle(ctx, postmaster, p.MaxSettle)
	p.Logger.Info("loadtest_settled", "before", next, "waited", waited.Round(time.Millisecond).String())
	p.Between(next)
}
