package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"hmp/internal/connlimit"
	"hmp/internal/gateway"
	"hmp/internal/httpapi"
	"hmp/internal/rpc"
)

// deps are the API's services over the parts the instance runs.
func (in *instance) deps(b base) httpapi.Deps {
	cfg, op := b.cfg, in.operator
	d := httpapi.Deps{
		Tokens: in.tokens, Ready: in.ready, Limiter: in.limiter, MaxInFlight: cfg.MaxInFlight,
		Shedding: httpapi.Shedding{MaxWait: cfg.MaxQueueWait, OrgShare: cfg.OrgShare, RequestTimeout: cfg.RequestTimeout},
		Operator: op.guard, Alerts: op.alerts, Settings: op.settings, IndexAdvice: op.advice,
		Metrics: b.reg, Gatherer: b.reg, Logger: b.logger,
	}
	if op.dash != nil {
		d.Dashboard = op.dash
	}
	if in.db != nil {
		d.Replicas = in.db.replicas
	}
	if w := in.write; w != nil {
		d.Tenancy, d.Finance, d.Events, d.Idempotency = w.tenancy, w.finance, in.progress.events, w.idem
	}
	if r := in.read; r != nil {
		d.Reports, d.Reconciliation, d.Reads = r.reports, r.jobs, in.db.replicas.Reads
		if in.write == nil {
			d.Properties = in.remote
		}
	}
	return d
}

// ready reports whether the instance's dependencies answer (/readyz).
func (in *instance) ready(ctx context.Context) error {
	if in.db != nil {
		if err := in.db.pool.Ping(ctx); err != nil {
			return &httpapi.DependencyError{Name: "database", Err: err}
		}
	}
	if err := in.bus.Ping(ctx); err != nil {
		return &httpapi.DependencyError{Name: "bus", Err: err}
	}
	return nil
}

// serve starts the role's edge over the instance's parts and its
// listeners.
func (a *App) serve(b base, in *instance, parts []part) error {
	d := in.deps(b)
	conns := connlimit.New(b.cfg.MaxConns)
	d.Crowded, d.Overstayed = conns.Waiting, conns.Overstayed
	split := slices.Contains(parts, partGateway) || slices.Contains(parts, partService)
	var key *rpc.Key
	if split {
		secret, err := b.cfg.Secret()
		if err != nil {
			return err
		}
		if key, err = rpc.NewKey(secret); err != nil {
			return err
		}
	}
	switch {
	case slices.Contains(parts, partGateway):
		d.Forward = gateway.New(in.bus.Conn(), key, b.cfg.Gateway, b.logger, b.reg)
		d.MaxInFlight = b.cfg.Gateway.MaxInFlight
	case slices.Contains(parts, partService):
		handler := httpapi.New(d)
		service, facts := rpc.Reports, rpc.TenancyBackend(nil)
		if in.write != nil {
			// The finance role also answers the other roles' tenancy
			// questions.
			service, facts = rpc.Finance, in.write.tenancy
		}
		if err := serveRPC(b, in, service, handler, key, facts); err != nil {
			return err
		}
		return a.listen(gateway.OpsOnly(handler), in.operator, conns)
	}
	return a.listen(httpapi.New(d), in.operator, conns)
}

// serveRPC registers the role's micro service, last of all (calls arrive
// once everything is up) so that it is the first thing Close stops: the
// gateway's calls move to the other instances before this one winds down.
// It does not shed what the gateway admitted: the gateway's admission
// (Gateway.MaxInFlight) bounds the calls it sends.
func serveRPC(b base, in *instance, service string, handler http.Handler, key *rpc.Key, tenancyFacts rpc.TenancyBackend) error {
	srv, err := rpc.NewServer(in.bus.Conn(), service, serviceVersion, 0, b.logger)
	if err != nil {
		return err
	}
	b.stops.push(srv.Stop)
	if err := srv.HandleHTTP(gateway.Owned(service, handler), key, httpapi.Vouched); err != nil {
		return err
	}
	if tenancyFacts != nil {
		return srv.HandleTenancy(tenancyFacts)
	}
	return nil
}

// listen serves handler on the configured address, and, with an operator
// address, its operator surface there instead (the API port then answers
// 404 for it). conns bounds the API listener's connections (the operator
// listener's few are not).
func (a *App) listen(handler http.Handler, op *operatorSurface, conns *connlimit.Limit) error {
	public := handler
	if a.cfg.OperatorAddr != "" {
		public = httpapi.PublicOnly(handler)
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	a.Addr, a.OperatorAddr = ln.Addr().String(), ln.Addr().String()
	if a.cfg.OperatorAddr != "" {
		oln, err := net.Listen("tcp", a.cfg.OperatorAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on %s (operator): %w", a.cfg.OperatorAddr, err)
		}
		a.OperatorAddr = oln.Addr().String()
		a.opSrv = a.newServer(httpapi.OperatorOnly(handler), op)
		go func() { a.served <- a.opSrv.Serve(oln) }()
	}
	a.srv, a.Handler = a.newServer(public, op), public
	a.srv.ConnState, a.srv.ConnContext = conns.ConnState, conns.ConnContext
	go func() { a.served <- a.srv.Serve(conns.Listener(ln)) }()
	a.logOperator(op)
	return nil
}

func (a *App) newServer(handler http.Handler, op *operatorSurface) *http.Server {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(op.dash.Close)
	return srv
}

// logOperator says where the dashboard is and how to log in (or that the
// operator surface is closed).
func (a *App) logOperator(op *operatorSurface) {
	if !op.guard.On() {
		a.logger.Info("operator_surface_closed", "reason", "no operator token (HMP_ADMIN_TOKEN)")
		return
	}
	login := "the operator token (HMP_ADMIN_TOKEN)"
	if a.AdminTokenFile != "" {
		login = "the operator token in " + a.AdminTokenFile
	}
	a.logger.Info("operator_dashboard", "url", a.DashboardURL(), "login", login, "apart", a.cfg.OperatorAddr != "")
}

// DashboardURL is the dashboard's address on this instance.
func (a *App) DashboardURL() string {
	host, port, err := net.SplitHostPort(a.OperatorAddr)
	if err != nil {
		return "http://" + a.OperatorAddr + "/dashboard"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // listening everywhere: this machine's loopback reaches it
	}
	return "http://" + net.JoinHostPort(host, port) + "/dashboard"
}
