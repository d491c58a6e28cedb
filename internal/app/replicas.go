package app

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/httpapi"
	"hmp/internal/replicas"
)

// startReplicas starts the replica router of report reads (with no
// replica configured, or reads off, every read stays on the primary and
// is counted as such).
func startReplicas(ctx context.Context, b base, primary *pgxpool.Pool) (*replicas.Router, error) {
	r, err := replicas.New(ctx, primary, b.cfg.Replicas, b.logger, b.reg)
	if err != nil {
		return nil, err
	}
	b.stops.push(r.Stop) // it holds the replicas' pools from New on
	return r, r.Start(ctx)
}

// replicaDeps returns the /readyz states of the replicas and the write
// position for consistency tokens: nil without replicas (tokens stay c1,
// writes pay no extra round trip).
func replicaDeps(r *replicas.Router, configured int) (func() []httpapi.ReplicaState, func(context.Context) (uint64, error)) {
	if r == nil || configured == 0 {
		return nil, nil
	}
	states := func() []httpapi.ReplicaState {
		st := r.Statuses()
		out := make([]httpapi.ReplicaState, len(st))
		for i, s := range st {
			out[i] = httpapi.ReplicaState{Name: s.Name, State: string(s.State)}
		}
		return out
	}
	return states, r.PrimaryLSN
}
