package app

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/httpapi"
	"hmp/internal/replicas"
	"hmp/internal/reports"
)

// startReplicas routes svc's report reads through a replica router (with
// no replica configured, or reads off, every read stays on the primary and
// is counted as such) and returns the /readyz states and the write
// position for consistency tokens (nil without replicas: tokens stay c1,
// writes pay no extra round trip). svc may be nil where no report is
// read (the finance role).
func (a *App) startReplicas(ctx context.Context, svc *reports.Service, reg prometheus.Registerer) (func() []httpapi.ReplicaState, func(context.Context) (uint64, error), error) {
	r, err := replicas.New(ctx, a.Pool, a.cfg.Replicas, a.logger, reg)
	if err != nil {
		return nil, nil, err
	}
	a.Replicas = r
	a.closers = append(a.closers, r.Stop)
	if err := r.Start(ctx); err != nil {
		return nil, nil, err
	}
	if svc != nil { // nil: the finance role, which needs only the write position
		svc.WithRouter(r)
		a.replicaReads = r.SetEnabled // the live settings' replica-reads knob
		a.reads = r.Reads
		a.logger.Info("report_reads", "to", r.Reads(), "replicas", len(a.cfg.Replicas.URLs))
	}
	if len(a.cfg.Replicas.URLs) == 0 {
		return nil, nil, nil
	}
	states := func() []httpapi.ReplicaState {
		st := r.Statuses()
		out := make([]httpapi.ReplicaState, len(st))
		for i, s := range st {
			out[i] = httpapi.ReplicaState{Name: s.Name, State: string(s.State)}
		}
		return out
	}
	return states, r.PrimaryLSN, nil
}
