package main

import (
	"flag"
	"strconv"
	"strings"

	"hmp/internal/config"
	"hmp/internal/replicas"
)

// registerReplicas adds the read replica flags to hmp serve.
func registerReplicas(fs *flag.FlagSet, cfg *config.Config) {
	fs.Func("replica-urls", "comma-separated PostgreSQL streaming replica URLs that report reads may use (HMP_REPLICA_URLS)", func(s string) error {
		cfg.ReplicaURLs = replicas.ParseURLs(s)
		return nil
	})
	fs.Func("replica-reads", "on or off: serve report reads from the replicas; empty: the profile's (phase2 and later on) (HMP_REPLICA_READS)", func(s string) error {
		cfg.ReplicaReads = strings.TrimSpace(s)
		return nil
	})
	fs.DurationVar(&cfg.Replicas.MaxLag, "replica-max-lag", 0, "how stale a read without a consistency token may be when served by a replica; 0: default 5s (HMP_REPLICA_MAX_LAG)")
	fs.DurationVar(&cfg.Replicas.CheckInterval, "replica-check-interval", 0, "how often each replica's health and lag are measured; 0: default 2s (HMP_REPLICA_CHECK_INTERVAL)")
	fs.DurationVar(&cfg.Replicas.TokenWait, "replica-token-wait", 0, "longest wait for a replica to replay a token's write before the primary serves the read; 0: default 100ms; negative: none (HMP_REPLICA_TOKEN_WAIT)")
	fs.StringVar(&cfg.Replicas.PatroniURL, "patroni-url", "", "Patroni REST API of a member (http://host:8008): its streaming replicas are read from, beside the standbys among the database URL's hosts (HMP_PATRONI_URL)")
	fs.Func("replica-pool-max-conns", "most open connections per replica; 0: default 20 (HMP_REPLICA_POOL_MAX_CONNS)", func(s string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		cfg.Replicas.Pool.MaxConns = int32(n)
		return err
	})
}
