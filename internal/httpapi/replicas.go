package httpapi

import (
	"context"

	"hmp/internal/domain"
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
	if s.WritePosition != nil && t.LSN == 0 {
		if lsn, err := s.WritePosition(ctx); err == nil {
			t.LSN = lsn
		}
	}
	return t.String()
}
