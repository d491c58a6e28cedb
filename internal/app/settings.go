package app

import (
	"context"
	"errors"
	"fmt"

	"hmp/internal/bus"
	"hmp/internal/cache"
	"hmp/internal/config"
	"hmp/internal/ratelimit"
	"hmp/internal/reconcile"
	"hmp/internal/reports"
	"hmp/internal/settings"
)

// startSettings starts the live settings: this instance's configuration
// seeds them (and wins when the bus is this instance's own embedded one;
// on a shared bus the instance adopts the cluster's settings), and every
// change, from any instance, is applied here.
// The dashboard's sessions are kept in the same bucket.
func startSettings(ctx context.Context, b base, bs *bus.Bus, t tunables) (*settings.Service, *settings.Sessions, error) {
	// Replicated as the streams are: with one copy, losing the NATS node
	// that holds it keeps every instance started then from starting.
	bucket := settings.BucketConfig()
	bucket.Replicas = b.cfg.BusReplicas
	kv, err := bs.KeyValue(ctx, bucket)
	if err != nil {
		return nil, nil, err
	}
	svc := settings.New(kv, settings.Config{
		Initial:  b.cfg.Settings(),
		Own:      b.cfg.NATSURL == "",
		Profiles: config.ProfileSettings,
		Apply:    t.apply,
		Clock:    b.cfg.Clock,
	}, b.logger)
	if err := b.stops.start(ctx, svc); err != nil {
		return nil, nil, fmt.Errorf("settings: %w", err)
	}
	return svc, settings.NewSessions(kv, settings.SessionsConfig{TTL: b.cfg.DashboardSessionTTL, Clock: b.cfg.Clock}), nil
}

// tunables are the running components the live settings tune. A split
// role runs some of them (nil: elsewhere; the instance running it applies
// its part).
type tunables struct {
	projector   *reports.Projector
	corrections *reconcile.CorrectionBatcher
	cache       *cache.Cache
	limiter     *ratelimit.Limiter
	// replicaReads turns report reads from replicas on or off (nil: no
	// report is read here).
	replicaReads func(on bool)
}

// apply puts s into force in the running components. Every component
// gets its part even when another refuses.
func (t tunables) apply(ctx context.Context, s settings.Settings) error {
	var errs []error
	if t.projector != nil {
		if err := t.projector.Tune(ctx, s.Projector); err != nil {
			errs = append(errs, fmt.Errorf("projector: %w", err))
		}
	}
	if t.corrections != nil {
		if err := t.corrections.SetMode(s.Corrections); err != nil {
			errs = append(errs, fmt.Errorf("corrections: %w", err))
		}
	}
	if t.cache != nil {
		if err := t.cache.Tune(s.Cache); err != nil {
			errs = append(errs, fmt.Errorf("cache: %w", err))
		}
	}
	if t.limiter != nil {
		if err := t.limiter.Tune(s.RateLimits); err != nil {
			errs = append(errs, fmt.Errorf("rate limits: %w", err))
		}
	}
	if t.replicaReads != nil {
		t.replicaReads(s.ReplicaReads)
	}
	return errors.Join(errs...)
}
