package eventstore

import (
	"context"
	"fmt"

	"hmp/internal/postgres"
)

// Unpublished counts the committed events the relay has not yet
// published, up to limit (counting a huge backlog exactly would cost more
// than knowing it is huge).
func (s *Store) Unpublished(ctx context.Context, limit int64) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `
		SELECT count(*) FROM (
			SELECT 1 FROM events e, relay_state st
			WHERE st.id = 1 AND (e.tx_id, e.seq) > (st.cursor_tx, st.cursor_seq)
			LIMIT $1) b`, limit).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count unpublished events: %w", postgres.Translate(err))
	}
	return n, nil
}
