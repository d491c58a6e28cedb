package main

import (
	"flag"
	"strconv"

	"hmp/internal/config"
)

// registerRoles adds the flags of a split deployment (role, replicated
// streams, the gateway's calls) to hmp serve.
func registerRoles(fs *flag.FlagSet, cfg *config.Config) {
	fs.StringVar(&cfg.Role, "role", config.RoleAll, "what this instance runs: all, finance (writes, relay), reports (projector, reads, reconciliation) or gateway (public entry forwarding over NATS); a split role needs --nats-url, --token-secret and (finance, reports) --database-url (HMP_ROLE)")
	fs.IntVar(&cfg.BusReplicas, "bus-replicas", 1, "replicas of the JetStream streams and consumers: 1 on one server, 3 on a three-node cluster (HMP_BUS_REPLICAS)")
	fs.DurationVar(&cfg.Gateway.CallTimeout, "gateway-call-timeout", 0, "gateway: deadline of one call to a service (the request's own, when sooner, wins); 0: default 6s (HMP_GATEWAY_CALL_TIMEOUT)")
	fs.IntVar(&cfg.Gateway.Retries, "gateway-retries", 0, "gateway: further tries of a call no instance received, or of an idempotent call (GET, HEAD, a write of a route that honours Idempotency-Key, sent with one) that got no answer; 0: default 2; negative: none (HMP_GATEWAY_RETRIES)")
	fs.DurationVar(&cfg.Gateway.RetryDelay, "gateway-retry-delay", 0, "gateway: first pause between tries, doubling up to 1s; 0: default 50ms (HMP_GATEWAY_RETRY_DELAY)")
	fs.Func("gateway-breaker-failures", "gateway: failed calls in a row that open a service's circuit breaker; default 5 (HMP_GATEWAY_BREAKER_FAILURES)", func(s string) error {
		n, err := parseUint32(s)
		cfg.Gateway.BreakerFailures = n
		return err
	})
	fs.DurationVar(&cfg.Gateway.BreakerOpen, "gateway-breaker-open", 0, "gateway: how long an open breaker answers 503 before it lets one call probe the service; 0: default 2s (HMP_GATEWAY_BREAKER_OPEN)")
}

func parseUint32(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}
