// Package httpapi is the HTTP edge: routes, authentication, the OpenAPI 3.1
// document, request limits, and the one mapping of the domain error model
// to RFC 9457 problem+json responses.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/advisor"
	"hmp/internal/auth"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/idempotency"
	"hmp/internal/operator"
	"hmp/internal/ratelimit"
	"hmp/internal/reconcile"
	"hmp/internal/replicas"
	"hmp/internal/reports"
	"hmp/internal/tenancy"
)

// MaxBodyBytes caps every request body: larger ones answer 413.
const MaxBodyBytes = 1 << 20

// Deps are the services the API serves.
type Deps struct {
	Tenancy     *tenancy.Service
	Tokens      *auth.Tokens
	Finance     *finance.Service
	Events      *eventstore.Store
	Idempotency *idempotency.Store
	// Reports serves the report routes; nil leaves them out.
	Reports *reports.Service
	// Reconciliation runs the reconciliation jobs; nil leaves their routes
	// out.
	Reconciliation *reconcile.Jobs
	// MaxInFlight bounds the API requests handled at once; more wait their
	// turn briefly (Shedding.MaxWait), then answer 503. Zero: unbounded.
	MaxInFlight int
	// Shedding tunes the wait for a slot, the per-organization share and
	// the request deadline (its MaxInFlight, when set, wins).
	Shedding Shedding
	// Crowded reports whether a client waits for a connection place
	// (connlimit.Limit.Waiting): a refused request's connection is then
	// closed, so that places go round instead of staying with the first
	// clients through keep-alive. Nil: never.
	Crowded func() bool
	// Overstayed reports whether a served request's connection should
	// then close too (connlimit.Limit.Overstayed: a client waits and this
	// connection has held its place for a while). Nil: never.
	Overstayed func(ctx context.Context) bool
	// Limiter applies the rate limits (login, signup, writes); nil: none.
	Limiter *ratelimit.Limiter
	// Ready reports whether the dependencies answer, for /readyz; a
	// *DependencyError names the one that does not.
	Ready func(ctx context.Context) error
	// Replicas routes report reads to the read replicas (nil: none):
	// /readyz lists their states (a replica down leaves the instance
	// ready, since the primary serves), and while any is configured write
	// responses put the primary's WAL position in their consistency tokens.
	Replicas *replicas.Router
	// Reads says where report reads go now, for /readyz (nil: not said;
	// the finance role and the gateway read no report).
	Reads func() string
	// Operator checks the operator token that the /v1/admin routes
	// require, limiting wrong guesses per client address (nil or without
	// a token: they answer 401 to everyone).
	Operator *operator.Guard
	// Alerts serves the operator's alert routes; nil leaves them out.
	Alerts AlertBook

	// Forward, when set, makes this handler the gateway: every API
	// operation is authenticated, rate limited and admitted here, then
	// handed to Forward (with the caller's actor; nil for the anonymous
	// signup and login) instead of being handled here. /healthz, /readyz,
	// /metrics and the OpenAPI document stay local. Every route is
	// registered whatever the other Deps. See gateway.go.
	Forward Forwarder
	// Properties, when set, answers the property checks of the
	// reconciliation routes instead of Tenancy (the reports role asks the
	// finance role for them).
	Properties PropertyChecker

	// IndexAdvice runs the index advisor for GET /v1/admin/index-advice;
	// nil leaves the route out.
	IndexAdvice func(ctx context.Context, top int) (*advisor.Report, error)
	// Settings serves /v1/admin/settings (live settings); nil leaves the
	// routes out.
	Settings SettingsService
	// Dashboard serves /dashboard and its assets and events (it checks
	// the operator token itself); nil leaves it out.
	Dashboard http.Handler
	// Metrics is where HTTP metrics register; /metrics serves Gatherer.
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// Helpers are what every route uses: the error mapping and the caller's
// actor.
type Helpers struct {
	logger *slog.Logger
}

type server struct {
	Deps
	help *Helpers
	// jsonType is the Content-Type value of pre-encoded JSON answers,
	// shared by their header maps (never modified).
	jsonType []string
}

// New returns the HTTP handler of the whole API.
func New(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{Deps: d, help: &Helpers{logger: d.Logger}, jsonType: []string{"application/json"}}
	mux := http.NewServeMux()
	cfg := huma.DefaultConfig("HMP API", "1.0.0")
	cfg.CreateHooks = nil // no $schema links in bodies: the contract is API.md
	cfg.Transformers = append(cfg.Transformers, problemDetails)
	cfg.Formats = map[string]huma.Format{"application/json": jsonFormat(), "json": jsonFormat()}
	cfg.OpenAPIPath = "/openapi"
	cfg.DocsPath = "/docs"
	cfg.Info.Description = "Finance and reporting backend of the hospitality platform: revenues, expenses, approvals, cash books."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer":    {Type: "http", Scheme: "bearer", BearerFormat: "JWT"},
		adminScheme: {Type: "http", Scheme: "bearer", Description: "the operator token, HMP_ADMIN_TOKEN"},
	}
	// limitBody has read every body already. huma's default 5 s body read
	// deadline would otherwise stay on the connection while a slow handler
	// runs, and its expiry cancels the context of every later request on
	// that kept-alive connection (found by hmp chaos during a database
	// stall: requests that began cancelled).
	cfg.OnAddOperation = append(cfg.OnAddOperation, func(_ *huma.OpenAPI, op *huma.Operation) {
		op.BodyReadTimeout = -1
	})
	api := humago.New(mux, cfg)
	api.UseMiddleware(s.authenticate(api))
	api.UseMiddleware(checkFieldNames(api))
	api.UseMiddleware(s.idempotent(api))
	if d.Forward != nil {
		api.UseMiddleware(s.forward)
	}
	s.registerOps(api)
	s.registerTenancy(api)
	s.registerSessions(api)
	s.registerFinance(api)
	s.registerReports(api)
	s.registerCashCounts(api)
	s.registerReconciliation(api)
	s.registerAlerts(api)

	s.registerAdvice(api)
	s.registerSettings(api)
	if d.Dashboard != nil {
		mux.Handle("/dashboard", d.Dashboard)
		mux.Handle("/dashboard/", d.Dashboard)
	}
	if d.Gatherer != nil {
		mux.Handle("GET /metrics", metricsHandler(d.Gatherer))
	}
	mux.Handle("GET /debug/pprof/", s.profiling())
	mux.Handle("/", notFound())
	shedding := d.Shedding
	if shedding.MaxInFlight == 0 {
		shedding.MaxInFlight = d.MaxInFlight
	}
	return chain(s.fastReads(noteRoute(mux)),
		recoverer(d.Logger),
		requestLog(d.Logger, newHTTPMetrics(d.Metrics)),
		limitAnonymous(d.Limiter),
		s.admit(shedding, newShedMetrics(d.Metrics)),
		limitBody(MaxBodyBytes),
	)
}

type healthOutput struct {
	Body struct {
		Status string `json:"status" example:"ok"`
		// Replicas: each read replica's state (readyz only).
		Replicas []ReplicaState `json:"replicas,omitempty"`
		// Reads: where report reads go (readyz only): "replicas", or
		// "primary: …" with the reason.
		Reads string `json:"reads,omitempty"`
	}
}

func (s *server) registerOps(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"operations"},
		Summary: "Process is up",
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		out := &healthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
	huma.Register(api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"operations"},
		Summary: "Dependencies are reachable",
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		if s.Ready != nil {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := s.Ready(ctx); err != nil {
				return nil, s.notReady(ctx, err)
			}
		}
		out := &healthOutput{}
		out.Body.Status = "ready"
		out.Body.Replicas = s.replicaStates()
		if s.Reads != nil {
			out.Body.Reads = s.Reads()
		}
		return out, nil
	})
}
