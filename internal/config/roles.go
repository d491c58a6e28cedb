package config

import (
	"errors"
	"fmt"
)

// The roles an instance can run (Config.Role); app builds each from its
// parts.
//
//   - all: every part in one process (the embedded default).
//   - finance: the write API (tenancy, revenues, expenses, approvals,
//     cash counts, the event history) and the outbox relay; it also
//     answers the other roles' tenancy questions over NATS.
//   - reports: the projector, the report reads, reconciliation and
//     corrections.
//   - gateway: the public HTTP entry: authentication, rate limits, load
//     shedding, and forwarding over NATS to the service owning each path.
//
// finance and reports serve no public API on their HTTP port: they take
// requests from the gateway over NATS (internal/rpc), in queue groups, so
// that any number of instances of each share the load. Their HTTP port
// serves what is per instance: /healthz, /readyz, /metrics and the
// operator API (/v1/admin: this instance's alerts, index advice on the
// database, the live settings, cluster-wide over the bus; /dashboard).
// The gateway serves its own operator API the same way; only the public
// API is forwarded. Every role checks the bearer token
// itself; the reports role and the gateway learn a token's user state, a
// property's zone and a manager's access from the finance role over NATS
// (kept for 2 s), never from tenancy's tables.
const (
	RoleAll     = "all"
	RoleFinance = "finance"
	RoleReports = "reports"
	RoleGateway = "gateway"
)

// roleDefaults fills the role and its bus and gateway settings.
func (c Config) roleDefaults() Config {
	if c.Role == "" {
		c.Role = RoleAll
	}
	if c.BusReplicas == 0 {
		c.BusReplicas = 1
	}
	c.Gateway = c.Gateway.WithDefaults()
	if c.Gateway.MaxInFlight == 0 {
		// The gateway's admission bound: what the services behind it
		// take, MaxInFlight each of finance and reports (the gateway
		// admits, the services do not shed again); unbounded when they
		// are.
		c.Gateway.MaxInFlight = 2 * c.MaxInFlight
		if c.MaxInFlight < 0 {
			c.Gateway.MaxInFlight = -1
		}
	}
	return c
}

// validateRole reports what a split role lacks: the shared database,
// NATS and token secret.
func (c Config) validateRole() error {
	var errs []error
	switch c.Role {
	case RoleAll:
		return nil
	case RoleFinance, RoleReports:
		if c.DatabaseURL == "" {
			errs = append(errs, fmt.Errorf("role %s needs a shared database: set the database URL", c.Role))
		}
	case RoleGateway:
		errs = append(errs, c.Gateway.Validate())
	default:
		return fmt.Errorf("role must be all, finance, reports or gateway, got %q", c.Role)
	}
	if c.NATSURL == "" {
		errs = append(errs, fmt.Errorf("role %s needs a shared NATS: set the NATS URL (the embedded bus is private to one process)", c.Role))
	}
	if c.TokenSecret == "" {
		errs = append(errs, fmt.Errorf("role %s needs the token secret every role shares", c.Role))
	}
	if c.BusReplicas < 1 || c.BusReplicas > 5 {
		errs = append(errs, fmt.Errorf("bus replicas must be 1..5, got %d", c.BusReplicas))
	}
	return errors.Join(errs...)
}
