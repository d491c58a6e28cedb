package app

import (
	"context"
	"slices"

	"hmp/internal/auth"
	"hmp/internal/bus"
	"hmp/internal/config"
	"hmp/internal/eventstore"
	"hmp/internal/ratelimit"
	"hmp/internal/reports"
	"hmp/internal/rpc"
)

// serviceVersion is what the micro services report in discovery.
const serviceVersion = "1.0.0"

// A part is one of the pieces an instance is built of (parts.go).
type part int

const (
	partDatabase   part = iota // the primary, its migrations, the replica router
	partBus                    // NATS JetStream: the events, the calls, the live settings
	partWrite                  // tenancy, finance, idempotency, cash counts, the outbox relay
	partProjection             // the reports projector and the report cache
	partRead                   // report reads, reconciliation, corrections
	partOperator               // /v1/admin, alerts, live settings, the dashboard
	// The edge is one of three: the public API served here; the gateway's
	// (authenticated, limited and admitted here, then forwarded over NATS
	// to the role owning the path); or a service's, answering the
	// gateway's calls, its HTTP port serving the operations only.
	partPublic
	partGateway
	partService
)

// roleParts returns the parts of a role, in the order they start. Every
// role runs the bus and the operator surface; the edge is one of three.
func roleParts(role string) []part {
	switch role {
	case config.RoleFinance:
		return []part{partDatabase, partBus, partWrite, partOperator, partService}
	case config.RoleReports:
		return []part{partDatabase, partBus, partProjection, partRead, partOperator, partService}
	case config.RoleGateway:
		return []part{partBus, partOperator, partGateway}
	}
	return []part{partDatabase, partBus, partWrite, partProjection, partRead, partOperator, partPublic}
}

// instance is the parts an App runs (nil: not in its role).
type instance struct {
	db       *database
	bus      *bus.Bus
	progress *progress // with the database
	write    *writeSide
	// remote answers tenancy questions (users, properties) from the
	// finance role over NATS, where the write side runs elsewhere.
	remote   *rpc.Tenancy
	tokens   *auth.Tokens
	proj     *projection
	read     *readSide
	limiter  *ratelimit.Limiter // with a public or gateway edge
	operator *operatorSurface
}

// build starts the given parts, each from the parts before it.
func build(ctx context.Context, b base, parts []part) (in *instance, err error) {
	has := func(p part) bool { return slices.Contains(parts, p) }
	in = &instance{}
	if has(partDatabase) {
		if in.db, err = openDatabase(ctx, b, has(partRead)); err != nil {
			return nil, err
		}
	}
	if in.bus, err = openBus(ctx, b); err != nil {
		return nil, err
	}
	if in.db != nil {
		in.progress = newProgress(b, in.db, in.bus)
	}
	if has(partWrite) {
		if in.write, err = startWriteSide(ctx, b, in.db, in.bus, in.progress); err != nil {
			return nil, err
		}
	}
	if in.tokens, err = in.identity(b); err != nil {
		return nil, err
	}
	if has(partProjection) {
		if in.proj, err = startProjection(ctx, b, in.db, in.bus, in.progress); err != nil {
			return nil, err
		}
	}
	if has(partRead) {
		if in.read, err = startReadSide(ctx, b, in.db, in.progress, in.proj, in.properties()); err != nil {
			return nil, err
		}
	}
	if has(partPublic) || has(partGateway) {
		if in.limiter, err = rateLimiter(b); err != nil {
			return nil, err
		}
	}
	if in.operator, err = startOperator(ctx, b, in.db, in.bus, in.events(), in.tunables()); err != nil {
		return nil, err
	}
	return in, nil
}

// identity makes the access tokens, each check consulting the user's
// state in tenancy: here, or in the finance role over NATS (kept for 2 s).
func (in *instance) identity(b base) (*auth.Tokens, error) {
	secret, err := b.cfg.Secret()
	if err != nil {
		return nil, err
	}
	tokens, err := auth.New(secret, b.cfg.TokenTTL, b.cfg.Clock)
	if err != nil {
		return nil, err
	}
	if in.write != nil {
		return tokens, tokens.UseUsers(in.write.tenancy, 0)
	}
	if in.remote, err = rpc.NewTenancy(in.bus.Conn(), rpc.TenancyConfig{}); err != nil {
		return nil, err
	}
	return tokens, tokens.UseUsers(in.remote, 0)
}

// properties answers the report reads' tenancy facts.
func (in *instance) properties() reports.Properties {
	if in.write != nil {
		return in.write.tenancy
	}
	return in.remote
}

// events is the outbox (nil without a database).
func (in *instance) events() *eventstore.Store {
	if in.progress == nil {
		return nil
	}
	return in.progress.events
}

// tunables are the components of the instance that live settings tune.
func (in *instance) tunables() tunables {
	t := tunables{limiter: in.limiter}
	if in.proj != nil {
		t.projector, t.cache = in.proj.projector, in.proj.cache
	}
	if in.read != nil {
		t.corrections, t.replicaReads = in.read.corrections, in.db.replicas.SetEnabled
	}
	return t
}

// Kill stops the instance abruptly, as kill -9 would as far as the rest
// of the deployment can tell: its NATS connection is closed at once,
// without draining, so that calls in flight to it get no answer, its
// micro endpoints vanish from the queue groups and its unacknowledged
// messages wait out their AckWait; then what is left of it is closed.
// For tests and chaos drills.
func (a *App) Kill() {
	if a.Bus != nil && a.Bus.Conn() != nil {
		a.Bus.Conn().Close()
	}
	a.Close()
}
