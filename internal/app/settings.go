package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"hmp/internal/bus"
	"hmp/internal/cache"
	"hmp/internal/knobs"
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
		Initial:  configSettings(b.cfg),
		Own:      b.cfg.NATSURL == "",
		Profiles: profileSettings,
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
		if err := t.cache.SetEntries(s.Cache.Entries); err != nil {
			errs = append(errs, fmt.Errorf("cache: %w", err))
		}
		if err := t.cache.SetInvalidation(s.Cache.Invalidation); err != nil {
			errs = append(errs, fmt.Errorf("cache: %w", err))
		}
	}
	if limiter := t.limiter; limiter != nil {
		// Only the limits that change: the settings count whole seconds,
		// and a configured sub-second period must not be rounded away.
		changes := map[string]ratelimit.Limit{}
		for name, l := range map[string]knobs.Limit{ratelimit.WritesUser: s.RateLimits.WritesPerUser, ratelimit.WritesOrg: s.RateLimits.WritesPerOrg} {
			if liveLimit(limiter.Limit(name)) != l {
				changes[name] = ratelimit.Limit{Count: l.Count, Period: l.Period()}
			}
		}
		if len(changes) > 0 {
			if err := limiter.SetLimits(changes); err != nil {
				errs = append(errs, fmt.Errorf("rate limits: %w", err))
			}
		}
	}
	if t.replicaReads != nil {
		t.replicaReads(s.ReplicaReads)
	}
	return errors.Join(errs...)
}

// profileSettings returns the live settings of a named profile.
func profileSettings(name string) (settings.Settings, error) {
	if _, ok := Profiles()[name]; !ok {
		return settings.Settings{}, fmt.Errorf("%w %q (known: baseline, phase1, phase2, phase3)", settings.ErrUnknownProfile, name)
	}
	s := rawSettings(Config{Profile: name}.WithDefaults())
	s.Modified = []string{}
	return s, nil
}

// configSettings returns the live settings of a configuration (defaults
// filled), naming the knobs it sets apart from its profile.
func configSettings(cfg Config) settings.Settings {
	s := rawSettings(cfg)
	s.Modified = []string{}
	if p, err := profileSettings(cfg.Profile); err == nil {
		s.Modified = settings.Diff(p, s)
	}
	return s
}

func rawSettings(cfg Config) settings.Settings {
	k := cfg.knobs()
	k.Cache.Entries = max(k.Cache.Entries, 1)
	// The configured value (HMP_REPLICA_READS, else the profile's, as
	// WithDefaults resolved it): the live knob starts where the router
	// does, or applying the seed would switch the reads back off.
	k.ReplicaReads = cfg.ReplicaReads == "on"
	k.RateLimits = knobs.RateLimits{
		WritesPerUser: liveLimit(cfg.RateLimits.WritesPerUser),
		WritesPerOrg:  liveLimit(cfg.RateLimits.WritesPerOrg),
	}
	return settings.Settings{Profile: cfg.Profile, Knobs: k}
}

// liveLimit returns a limiter's budget as the live settings count it
// (whole seconds).
func liveLimit(l ratelimit.Limit) knobs.Limit {
	if l.Unlimited() {
		return knobs.Limit{}
	}
	return knobs.Limit{Count: l.Count, PeriodSeconds: max(1, int(l.Period/time.Second))}
}
