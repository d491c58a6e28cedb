package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/httpapi"
	"hmp/internal/idempotency"
	"hmp/internal/natstest"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/rpc"
	"hmp/internal/tenancy"
)

var cluster *pgtest.Cluster

// TestMain starts the PostgreSQL cluster of the end-to-end retry tests
// (pgtest.Main also checks for leaked goroutines).
func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster, tenancy.Migrations(), eventstore.Migrations(), finance.Migrations(), idempotency.Migrations())
}

var discard = slog.New(slog.DiscardHandler)

// newKey is the envelope key of a test's gateway and services.
func newKey(t testing.TB) *rpc.Key {
	k, err := rpc.NewKey([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// setup runs a NATS server on a free loopback port (natstest) and
// returns a connection to it and a function that connects another.
func setup(t *testing.T) (*nats.Conn, func() *nats.Conn) {
	t.Helper()
	url := natstest.StartServer(t)
	connect := func() *nats.Conn {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	return connect(), connect
}

// serve registers service on its own connection with handler h.
func serve(t *testing.T, connect func() *nats.Conn, service string, h http.Handler) *rpc.Server {
	t.Helper()
	srv, err := rpc.NewServer(connect(), service, "0.0.1", 0, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if err := srv.HandleHTTP(h, newKey(t), httpapi.Vouched); err != nil {
		t.Fatal(err)
	}
	return srv
}

// forward sends a request of a route that does not declare itself
// idempotent (forwardAs says which).
func forward(g *Gateway, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	return forwardAs(g, false, method, target, body, headers...)
}

func forwardAs(g *Gateway, retryable bool, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	g.Forward(r.Context(), nil, retryable, w, r)
	return w
}

func TestRoute(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/v1/reports/daily-report":          rpc.Reports,
		"/v1/reports/reconciliation/x":      rpc.Reports,
		"/v1/reports/cash-counts":           rpc.Finance,
		"/v1/finance/revenues":              rpc.Finance,
		"/v1/finance/events":                rpc.Finance,
		"/v1/auth/login":                    rpc.Finance,
		"/v1/properties":                    rpc.Finance,
		"/v1/admin/settings":                rpc.Finance,
		"/v1/reportsX/not-a-report-family/": rpc.Finance,
	} {
		if got := Route(path); got != want {
			t.Errorf("Route(%s) = %s, want %s", path, got, want)
		}
	}
}

// TestForwardCarriesTheRequest: the service sees the method, path, query,
// headers, body and request id, and runs under the caller's deadline cut
// to the per-call timeout; the client gets the service's status, headers
// and body.
func TestForwardCarriesTheRequest(t *testing.T) {
	t.Parallel()
	nc, connect := setup(t)
	serve(t, connect, rpc.Reports, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		deadline, ok := r.Context().Deadline()
		w.Header().Set("X-Seen", "yes")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "query": r.URL.Query().Get("date"),
			"body": string(body), "requestId": r.Header.Get("X-Request-Id"), "auth": r.Header.Get("Authorization"),
			"hasDeadline": ok, "left": time.Until(deadline).Seconds()})
	}))
	g := New(nc, newKey(t), Config{CallTimeout: 3 * time.Second}, discard, nil)
	w := forward(g, "POST", "/v1/reports/reconciliation?date=2026-03-02", `{"a":1}`, "X-Request-Id", "req-1", "Authorization", "Bearer t")
	if w.Code != http.StatusAccepted || w.Header().Get("X-Seen") != "yes" {
		t.Fatalf("answer %d %v %s", w.Code, w.Header(), w.Body)
	}
	var seen struct {
		Method, Path, Query, Body, RequestID, Auth string
		HasDeadline                                bool
		Left                                       float64
	}
	if err := json.Unmarshal(w.Body.Bytes(), &seen); err != nil {
		t.Fatal(err)
	}
	if seen.Method != "POST" || seen.Path != "/v1/reports/reconciliation" || seen.Query != "2026-03-02" || seen.Body != `{"a":1}` ||
		seen.RequestID != "req-1" || seen.Auth != "Bearer t" {
		t.Errorf("the service saw %+v", seen)
	}
	if !seen.HasDeadline || seen.Left <= 0 || seen.Left > 3 {
		t.Errorf("the service's deadline: %v, %.2fs left; want within the 3s call timeout", seen.HasDeadline, seen.Left)
	}
}

// TestRetriesOnlyIdempotentCalls: a call that got no answer is tried again
// only when repeating it is safe (GET, or a write whose route declares it
// idempotent, sent with an Idempotency-Key); a plain POST, a POST of a
// route that does not honour keys although it carries one, and a
// retryable route's POST without a key are tried once and answer a 503
// saying the outcome is unknown. Every failure answers 503 with
// Retry-After.
func TestRetriesOnlyIdempotentCalls(t *testing.T) {
	t.Parallel()
	nc, connect := setup(t)
	var deliveries atomic.Int64
	release := make(chan struct{})
	serve(t, connect, rpc.Finance, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deliveries.Add(1)
		<-release // never answers in time
	}))
	// Registered after serve, so run before its Stop, which waits for the
	// calls in flight.
	t.Cleanup(func() { close(release) })
	g := New(nc, newKey(t), Config{CallTimeout: 100 * time.Millisecond, Retries: 2, RetryDelay: time.Millisecond, BreakerFailures: 1000}, discard, nil)
	for _, c := range []struct {
		name      string
		method    string
		retryable bool
		headers   []string
		tries     int64
	}{
		{"plain POST", "POST", false, nil, 1},
		{"POST of a route that does not honour keys, with a key", "POST", false, []string{"Idempotency-Key", "k1"}, 1},
		{"POST of a retryable route without a key", "POST", true, nil, 1},
		{"POST of a retryable route with an Idempotency-Key", "POST", true, []string{"Idempotency-Key", "k1"}, 3},
		{"GET", "GET", false, nil, 3},
	} {
		deliveries.Store(0)
		w := forwardAs(g, c.retryable, c.method, "/v1/finance/revenues", "", c.headers...)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: answer %d %v", c.name, w.Code, w.Header())
		}
		if got := deliveries.Load(); got != c.tries {
			t.Errorf("%s: delivered %d times, want %d", c.name, got, c.tries)
		}
		if c.tries == 1 && !strings.Contains(w.Body.String(), "outcome is unknown") {
			t.Errorf("%s: body %s does not say the outcome is unknown", c.name, w.Body)
		}
	}
}

// TestBreakerOpensAndCloses: with no instance answering, calls fail with
// 503 (no responders, retried since never delivered); past
// BreakerFailures the breaker opens (hmp_breaker_state 2) and answers at
// once; when an instance is back, the probe after BreakerOpen closes it.
func TestBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	nc, connect := setup(t)
	reg := prometheus.NewRegistry()
	g := New(nc, newKey(t), Config{CallTimeout: time.Second, Retries: 1, RetryDelay: time.Millisecond, BreakerFailures: 4, BreakerOpen: 100 * time.Millisecond}, discard, reg)
	gauge := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "hmp_breaker_state" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "gateway_finance" {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatal("no hmp_breaker_state{name=gateway_finance}")
		return -1
	}
	if gauge() != 0 {
		t.Fatalf("breaker starts %v, want closed (0)", gauge())
	}
	for range 2 { // two tries each: four failures
		if w := forward(g, "POST", "/v1/finance/revenues", "{}"); w.Code != 503 || !strings.Contains(w.Body.String(), "no finance service instance") {
			t.Fatalf("no responders: %d %s", w.Code, w.Body)
		}
	}
	if gauge() != 2 {
		t.Fatalf("breaker after 4 failures: %v, want open (2)", gauge())
	}
	if w := forward(g, "POST", "/v1/finance/revenues", "{}"); w.Code != 503 || !strings.Contains(w.Body.String(), "unavailable") {
		t.Fatalf("open breaker: %d %s", w.Code, w.Body)
	}
	if n := testutil.ToFloat64(g.calls.WithLabelValues(rpc.Finance, "breaker_open")); n != 1 {
		t.Fatalf("calls refused by the open breaker: %v, want 1", n)
	}
	serve(t, connect, rpc.Finance, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if w := forward(g, "POST", "/v1/finance/revenues", "{}"); w.Code == 201 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the breaker did not let a call through in 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if gauge() != 0 {
		t.Fatalf("breaker after a successful probe: %v, want closed (0)", gauge())
	}
}
