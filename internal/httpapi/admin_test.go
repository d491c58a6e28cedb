package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hmp/internal/httpapi"
	"hmp/internal/knobs"
	"hmp/internal/logtest"
	"hmp/internal/natstest"
	"hmp/internal/operator"
	"hmp/internal/ratelimit"
	"hmp/internal/settings"
)

const token = "operator-token-for-tests-0123456789"

type fixture struct {
	handler http.Handler
	reg     *prometheus.Registry
	logs    *logtest.Buffer
}

// setupOperator serves the operator API of live settings kept on an embedded bus,
// guarded with a budget of 3 wrong tokens per address and hour.
func setupOperator(t *testing.T) *fixture {
	t.Helper()
	nc, err := nats.Connect(natstest.StartServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.CreateOrUpdateKeyValue(ctx, settings.BucketConfig())
	if err != nil {
		t.Fatal(err)
	}
	initial := settings.Settings{Profile: "phase1", Knobs: knobs.Knobs{Projector: knobs.Projector{MaxConcurrency: 1, BatchSize: 1, Workers: 1},
		Corrections: "batch", Cache: knobs.Cache{Entries: 1, Invalidation: "async"}}, Modified: []string{}}
	svc := settings.New(kv, settings.Config{Initial: initial, Own: true,
		Profiles: func(string) (settings.Settings, error) { return initial, nil },
		Apply:    func(context.Context, settings.Settings) error { return nil }}, nil)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	lim, err := ratelimit.New(ratelimit.Config{Limits: map[string]ratelimit.Limit{ratelimit.OperatorAddr: {Count: 3, Period: time.Hour}}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lim.Close)
	f := &fixture{reg: prometheus.NewRegistry(), logs: &logtest.Buffer{}}
	logger := slog.New(slog.NewTextHandler(f.logs, nil))
	f.handler = httpapi.New(httpapi.Deps{
		Operator: operator.New(operator.Config{Token: token, Limiter: lim, Registerer: f.reg, Logger: logger}),
		Settings: svc, Dashboard: http.NotFoundHandler(), Metrics: f.reg, Gatherer: f.reg, Logger: logger,
	})
	return f
}

func (f *fixture) get(t *testing.T, h http.Handler, path, addr, bearer string) *http.Response {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = addr + ":4242"
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

// TestAdminGuessing: wrong operator tokens on /v1/admin are limited per
// client address: past the budget every attempt from the address answers
// 429 with Retry-After, the right token included, while another address
// is served; each failure is counted and logged without the guess.
func TestAdminGuessing(t *testing.T) {
	t.Parallel()
	f := setupOperator(t)
	const guess = "guess-of-the-operator-token-0042"
	for i, g := range []string{guess, "", guess} {
		if resp := f.get(t, f.handler, "/v1/admin/settings", "198.51.100.7", g); resp.StatusCode != 401 {
			t.Fatalf("wrong token %d: %d", i+1, resp.StatusCode)
		}
	}
	for _, g := range []string{guess, token} {
		resp := f.get(t, f.handler, "/v1/admin/settings", "198.51.100.7", g)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("spent address, token right %v: %d, Retry-After %q", g == token, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp := f.get(t, f.handler, "/v1/admin/settings", "203.0.113.9", token); resp.StatusCode != 200 {
		t.Fatalf("another address with the token: %d", resp.StatusCode)
	}
	if n := testutil.ToFloat64(counter(t, f.reg, operator.SurfaceAPI, "wrong")); n != 3 {
		t.Errorf("wrong attempts counted %v, want 3", n)
	}
	if n := testutil.ToFloat64(counter(t, f.reg, operator.SurfaceAPI, "limited")); n != 2 {
		t.Errorf("limited attempts counted %v, want 2", n)
	}
	logs := f.logs.String()
	if strings.Count(logs, "operator_auth_failed") != 3 || !strings.Contains(logs, "addr=198.51.100.7") {
		t.Errorf("failures not logged with the address:\n%s", logs)
	}
	if strings.Contains(logs, guess) || strings.Contains(logs, token) {
		t.Errorf("the log holds a token:\n%s", logs)
	}
}

// counter returns hmp_operator_auth_failures_total{surface,reason} as
// registered on reg.
func counter(t *testing.T, reg *prometheus.Registry, surface, reason string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hmp_operator_auth_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["surface"] == surface && l["reason"] == reason {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "copy"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no hmp_operator_auth_failures_total{surface=%s,reason=%s} on the registry", surface, reason)
	return nil
}

// TestOperatorSurfaceApart: with the operator surface on a listener of its
// own, the public handler answers 404 for /metrics, /dashboard and
// /v1/admin and serves the API, its document and the health checks; the
// operator handler serves the surface and the health checks only.
func TestOperatorSurfaceApart(t *testing.T) {
	t.Parallel()
	f := setupOperator(t)
	public, op := httpapi.PublicOnly(f.handler), httpapi.OperatorOnly(f.handler)
	for _, tc := range []struct {
		h    http.Handler
		name string
		path string
		want int
	}{
		{public, "public", "/v1/admin/settings", 404},
		{public, "public", "/v1/admin/alerts", 404},
		{public, "public", "/dashboard", 404},
		{public, "public", "/dashboard/login", 404},
		{public, "public", "/metrics", 404},
		{public, "public", "/debug/pprof/", 404},
		{public, "public", "/healthz", 200},
		{public, "public", "/openapi.json", 200},
		{public, "public", "/docs", 200},
		{op, "operator", "/v1/admin/settings", 200},
		{op, "operator", "/metrics", 200},
		{op, "operator", "/debug/pprof/", 200},
		{op, "operator", "/healthz", 200},
		{op, "operator", "/openapi.json", 404},
		{op, "operator", "/v1/properties", 404},
	} {
		if resp := f.get(t, tc.h, tc.path, "203.0.113.9", token); resp.StatusCode != tc.want {
			t.Errorf("%s GET %s: %d, want %d", tc.name, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestProfiling: the runtime profiles answer the operator token only (401
// without it or with a wrong one, counted on the pprof surface), and with
// it the index, a named profile and a CPU profile of a second.
func TestProfiling(t *testing.T) {
	t.Parallel()
	f := setupOperator(t)
	for _, bearer := range []string{"", "guess-of-the-operator-token-0042"} {
		resp := f.get(t, f.handler, "/debug/pprof/", "198.51.100.8", bearer)
		if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("token %q: %d %s, want a 401 problem", bearer, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	for _, tc := range []struct{ path, want string }{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/heap?debug=1", "heap profile"},
		{"/debug/pprof/cmdline", ""},
		{"/debug/pprof/profile?seconds=1", ""},
	} {
		resp := f.get(t, f.handler, tc.path, "203.0.113.10", token)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(body) == 0 || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: %d, %d bytes, want 200 holding %q", tc.path, resp.StatusCode, len(body), tc.want)
		}
	}
	if n := testutil.ToFloat64(counter(t, f.reg, operator.SurfaceProfiling, "wrong")); n != 2 {
		t.Errorf("wrong attempts on the pprof surface counted %v, want 2", n)
	}
}
