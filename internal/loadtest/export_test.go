package loadtest

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// VerifyProjection generates the backlog of cfg again (its totals depend
// on the seed alone) and compares the projection in cfg.DatabaseURL with
// it, as Projection does after each profile.
func VerifyProjection(ctx context.Context, cfg ProjectionConfig) ([]string, error) {
	cfg = cfg.withDefaults()
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	r := &projectionRun{cfg: cfg, conn: conn, gen: newBacklog(cfg.Seed, cfg.Orgs, cfg.Properties, cfg.Days, time.Now)}
	for range cfg.Events {
		if _, err := r.gen.next(); err != nil {
			return nil, err
		}
	}
	return r.verify(ctx)
}
