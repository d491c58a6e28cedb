package app

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/bus"
	"hmp/internal/eventstore"
	"hmp/internal/reports"
	"hmp/internal/telemetry"
)

// backlogCap bounds the count of unpublished events (past it the backlog
// is "at least" that; the alert threshold is far below).
const backlogCap = 100_000

// startTelemetry wires the metrics no other package owns (pool, database
// locks, bus backlog), the alert evaluator over the registry, and the
// notifiers. pool, events and projector are nil where the role runs none.
func startTelemetry(ctx context.Context, b base, pool *pgxpool.Pool, events *eventstore.Store, projector *reports.Projector, bs *bus.Bus) (*telemetry.Evaluator, error) {
	cfg, reg := b.cfg, b.reg
	// A split role samples what it has: the database (finance, reports),
	// the outbox (events: finance; the reports role reads it too), the
	// projector's consumer (reports); the gateway none of them.
	var probes []telemetry.Probe
	if pool != nil {
		reg.MustRegister(telemetry.NewPoolCollector("primary", pool))
		probes = append(probes, telemetry.DatabaseProbes(pool)...)
	}
	if events != nil {
		probes = append(probes, telemetry.Probe{Name: "hmp_outbox_unpublished", Help: "Committed events the relay has not yet published (sampled; capped at 100,000).",
			Read: func(ctx context.Context) (float64, error) {
				n, err := events.Unpublished(ctx, backlogCap)
				return float64(n), err
			}})
	}
	if projector != nil {
		durable := projector.Config().Durable
		probes = append(probes, telemetry.Probe{Name: "hmp_consumer_pending", Help: "Messages of the events stream a durable consumer has not yet acknowledged: undelivered plus in flight (sampled).",
			Labels: prometheus.Labels{"consumer": durable},
			Read: func(ctx context.Context) (float64, error) {
				info, err := bs.ConsumerInfo(ctx, bus.EventsStream, durable)
				if err != nil {
					return 0, err
				}
				return float64(info.NumPending) + float64(info.NumAckPending), nil
			}})
	}
	if len(probes) > 0 {
		if err := b.stops.start(ctx, telemetry.NewSampler(probes, cfg.TelemetrySampleEvery, b.logger, reg)); err != nil {
			return nil, err
		}
	}

	alerts := telemetry.NewEvaluator(cfg.Alerts, telemetry.Rules(cfg.Alerts), reg, b.logger, reg)
	notifiers, err := cfg.AlertNotifiers()
	if err != nil {
		return nil, err
	}
	if len(notifiers) > 0 {
		changes, cancel := alerts.Subscribe(256)
		d := telemetry.NewDispatcher(notifiers, cfg.AlertDelivery, b.logger, reg)
		if err := d.Start(ctx, changes); err != nil {
			cancel()
			return nil, err
		}
		b.stops.push(d.Stop, cancel)
	}
	return alerts, b.stops.start(ctx, alerts)
}
