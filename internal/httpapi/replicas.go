package httpapi

import (
	"context"

	"hmp/internal/domain"
	"hmp/internal/replicas"
)

// ReplicaState is one read replica's state on /readyz: a name without
// host or port, and healthy, lagging or down.
type ReplicaState struct {
	Name  string `json:"name" example:"replica-1"`
	State string `json:"state" enum:"healthy,lagging,down" example:"healthy"`
}

// token is a write's consistency token on the wire: with the primary's
// WAL position as of now (past the write's commit) when replicas serve
// reads, so that a replica that has replayed it holds the write. Without
// replicas, or when the position cannot be read, the token goes without
// it (c1): a read then holds a replica to the primary's position after
// its wait, which is later still.
func (s *server) token(ctx context.Context, t domain.Token) string {
	if t.LSN == 0 && s.replicated() {
		if lsn, err := s.Replicas.PrimaryLSN(ctx); err == nil {
			t.LSN = lsn
		}
	}
	return t.String()
}

// replicated reports whether any read replica is configured: without one,
// tokens stay c1 and writes pay no extra round trip.
func (s *server) replicated() bool {
	return s.Replicas != nil && s.Replicas.Reads() != replicas.ReadsPrimaryNone
}

// replicaStates returns each configured replica's state (nil: none).
func (s *server) replicaStates() []ReplicaState {
	if !s.replicated() {
		return nil
	}
	st := s.Replicas.Statuses()
	out := make([]ReplicaState, len(st))
	for i, r := range st {
		out[i] = ReplicaState{Name: r.Name, State: string(r.State)}
	}
	return out
}
