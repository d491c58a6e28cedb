package app

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/postgres"
	"hmp/internal/replicas"
)

// startReplicas starts the replica router of report reads (with no
// replica configured, or reads off, every read stays on the primary and
// is counted as such).
func startReplicas(ctx context.Context, b base, primary *pgxpool.Pool, hosts *postgres.Hosts) (*replicas.Router, error) {
	cfg := b.cfg.Replicas
	cfg.Hosts = hosts
	r, err := replicas.New(ctx, primary, cfg, b.logger, b.reg)
	if err != nil {
		return nil, err
	}
	b.stops.push(r.Stop) // it holds the replicas' pools from New on
	return r, r.Start(ctx)
}

// startHosts starts the prober of the database URL's hosts when the URL
// names several (new connections then try the primary first, and the
// standbys among them serve report reads) or Patroni is configured (its
// members get the URL's credentials); else nil.
func startHosts(ctx context.Context, b base, url string) (*postgres.Hosts, error) {
	multi, err := postgres.MultiHost(url)
	if err != nil {
		return nil, err
	}
	if !multi && b.cfg.Replicas.PatroniURL == "" {
		return nil, nil
	}
	hosts, err := postgres.NewHosts(url, postgres.HostsConfig{})
	if err != nil {
		return nil, err
	}
	b.stops.push(hosts.Stop)
	return hosts, hosts.Start(ctx)
}
