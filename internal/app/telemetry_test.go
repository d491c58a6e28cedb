package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/bus"
	"hmp/internal/config"
	"hmp/internal/domain"
	"hmp/internal/measure"
	"hmp/internal/ratelimit"
	"hmp/internal/reconcile"
	"hmp/internal/telemetry"
)

const operatorToken = "operator-token-for-tests-0123456789"

// scrape reads /metrics as Prometheus would and returns every series'
// value by its exposition key (name{labels}).
func scrape(t *testing.T, env *apptest.Env) measure.Metrics {
	t.Helper()
	r := env.Do("GET", "/metrics", "", nil)
	if r.Status != 200 {
		t.Fatalf("GET /metrics: %s", r)
	}
	m, err := measure.Parse(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return m
}

// awaitMetric scrapes until cond holds for the named sum.
func awaitMetric(t *testing.T, env *apptest.Env, what string, cond func(float64) bool, name string, match ...string) float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, ok := scrape(t, env).Sum(name, match...)
		if ok && cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s%v = %v (exported %v), condition never held", what, name, match, v, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func telemetryConfig(c *config.Config) {
	c.AdminToken = operatorToken
	c.TelemetrySampleEvery = 20 * time.Millisecond
	c.Cache.ClockSkew = time.Nanosecond // one machine, one clock: a read right after a write may be cached
	c.Alerts.Interval = 50 * time.Millisecond
	c.Alerts.Window = 2 * time.Second
	c.RateLimits.LoginPerEmail = ratelimit.Limit{Count: 1, Period: time.Hour}
}

func revenue(prop string, amount int64) apptest.Txn {
	return apptest.Txn{PropertyID: prop, Source: "room", AmountCents: amount, PaymentMode: "cash",
		OccurredAt: time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)}
}

// TestTelemetryMetricsMove scrapes a running hmp and sees every metric of
// the guide's four families, HTTP, rate limits and breakers move (or, for
// breaker states, exported) under a small load and a few injected faults.
func TestTelemetryMetricsMove(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster, telemetryConfig)
	ctx := context.Background()
	org := env.Signup("Telemetry Metrics")
	prop := env.Property(org.AdminToken, "Metered Inn", "UTC")
	before := scrape(t, env)

	moved := func(after measure.Metrics, name string, match ...string) {
		t.Helper()
		b, _ := before.Sum(name, match...)
		a, ok := after.Sum(name, match...)
		if !ok || a <= b {
			t.Errorf("%s%v did not move: %v -> %v (exported %v)", name, match, b, a, ok)
		}
	}

	// Relay lag: the relay stopped, writes wait in the outbox.
	env.App.Relay.Stop()
	for i := range 3 {
		env.Revenue(org.AdminToken, revenue(prop, int64(1000+i)))
	}
	awaitMetric(t, env, "outbox backlog", func(v float64) bool { return v >= 3 }, "hmp_outbox_unpublished")
	// Consumer pending: the projector stopped, the relay publishes.
	env.App.Projector.Stop()
	if err := env.App.Relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	awaitMetric(t, env, "consumer pending", func(v float64) bool { return v >= 3 }, "hmp_consumer_pending", `consumer="`)
	awaitMetric(t, env, "outbox drained", func(v float64) bool { return v == 0 }, "hmp_outbox_unpublished")
	if err := env.App.Projector.Start(ctx); err != nil {
		t.Fatal(err)
	}
	awaitMetric(t, env, "consumer caught up", func(v float64) bool { return v == 0 }, "hmp_consumer_pending")

	// Redeliveries: a constraint makes the projection fail, then goes.
	if _, err := env.App.Pool.Exec(ctx, `ALTER TABLE daily_cash_balances ADD CONSTRAINT telemetry_block CHECK (cash_received < 0) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	failures, _ := scrape(t, env).Sum("hmp_projector_failures_total")
	env.Revenue(org.AdminToken, revenue(prop, 777))
	awaitMetric(t, env, "projector failure", func(v float64) bool { return v > failures }, "hmp_projector_failures_total")
	if _, err := env.App.Pool.Exec(ctx, `ALTER TABLE daily_cash_balances DROP CONSTRAINT telemetry_block`); err != nil {
		t.Fatal(err)
	}
	awaitMetric(t, env, "redelivery", func(v float64) bool { return v > 0 }, "hmp_consumer_redeliveries_total")

	// Dead letters: a poison message.
	orgID, _ := domain.ParseID(org.ID)
	if _, err := env.App.Bus.PublishRaw(ctx, bus.EventSubject(orgID, nil), []byte("\x00 not an event"), ""); err != nil {
		t.Fatal(err)
	}
	awaitMetric(t, env, "dead letter", func(v float64) bool { return v > 0 }, "hmp_dead_letters_total")

	// Cache: the same report twice (a miss, then a hit).
	report := "/v1/reports/daily-report?propertyId=" + prop + "&date=" + time.Now().UTC().Add(-time.Hour).Format(time.DateOnly)
	env.Must(200, "GET", report, org.AdminToken, nil)
	env.Must(200, "GET", report, org.AdminToken, nil)
	// HTTP errors and rate limits: an unknown route, a refused login.
	env.Must(404, "GET", "/v1/nowhere", "", nil)
	for range 2 {
		env.Do("POST", "/v1/auth/login", "", map[string]any{"email": org.AdminEmail, "password": "wrong password"})
	}
	// Corrections: a property day queued and written.
	propID, _ := domain.ParseID(prop)
	day, _ := domain.ParseDate(time.Now().UTC().Add(-time.Hour).Format(time.DateOnly))
	env.App.Corrections.Enqueue(reconcile.Key{OrgID: orgID, PropertyID: propID, Date: day})
	if err := env.App.Corrections.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Database locks: one session waits on another's row lock, then two
	// deadlock.
	if _, err := env.App.Pool.Exec(ctx, `CREATE TABLE telemetry_locks (id int PRIMARY KEY); INSERT INTO telemetry_locks VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	holder, err := env.App.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `UPDATE telemetry_locks SET id = id WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := env.App.Pool.Exec(ctx, `UPDATE telemetry_locks SET id = id WHERE id = 1`)
		waited <- err
	}()
	awaitMetric(t, env, "lock wait", func(v float64) bool { return v >= 1 }, "hmp_db_lock_waiting_sessions")
	// Pool usage, while two connections are held.
	awaitMetric(t, env, "pool acquired", func(v float64) bool { return v >= 2 }, "hmp_db_pool_acquired_conns", `pool="primary"`)
	_ = holder.Rollback(ctx)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	deadlock(t, env)
	awaitMetric(t, env, "deadlock", func(v float64) bool { return v >= 1 }, "hmp_db_deadlocks_total")

	after := scrape(t, env)
	for _, m := range []struct {
		name  string
		match []string
	}{
		// the bus
		{"hmp_projector_events_total", []string{`result="applied"`}},
		{"hmp_consumer_messages_total", []string{`result="acked"`}},
		{"hmp_consumer_messages_total", []string{`result="retried"`}},
		{"hmp_consumer_messages_total", []string{`result="dead_lettered"`}},
		{"hmp_projector_batch_seconds_count", nil},
		{"hmp_projector_failures_total", nil},
		{"hmp_consumer_redeliveries_total", nil},
		{"hmp_dead_letters_total", []string{`reason="poison"`}},
		{"hmp_relay_published_total", nil},
		// the database
		{"hmp_db_pool_acquires_total", []string{`pool="primary"`}},
		{"hmp_db_pool_acquire_wait_seconds_total", []string{`pool="primary"`}},
		{"hmp_db_deadlocks_total", nil},
		// the cache, per tier
		{"hmp_cache_hits_total", []string{`tier="memory"`}},
		{"hmp_cache_misses_total", []string{`tier="memory"`}},
		// corrections
		{"hmp_corrections_batch_size_count", nil},
		{"hmp_corrections_batch_seconds_count", nil},
		// HTTP, per route
		{"hmp_http_requests_total", []string{`route="POST /v1/finance/revenues"`, `code="201"`}},
		{"hmp_http_requests_total", []string{`code="404"`}},
		{"hmp_http_requests_total", []string{`code="429"`}},
		{"hmp_http_request_duration_seconds_count", []string{`route="GET /v1/reports/daily-report"`}},
		// rate limits
		{"hmp_ratelimit_rejections_total", nil},
		// the evaluator itself
		{"hmp_alert_evaluations_total", nil},
	} {
		moved(after, m.name, m.match...)
	}
	for _, name := range []string{"hmp_db_pool_max_conns", "hmp_db_pool_idle_conns", "hmp_db_pool_total_conns", "hmp_db_active_sessions",
		"hmp_relay_lag_seconds", "hmp_corrections_queue_size", "hmp_breaker_state"} {
		if _, ok := after.Sum(name); !ok {
			t.Errorf("%s is not exported", name)
		}
	}
	if v, _ := after.Sum("hmp_db_pool_max_conns", `pool="primary"`); v != float64(env.App.Config.Pool.MaxConns) {
		t.Errorf("pool max conns %v, want %d", v, env.App.Config.Pool.MaxConns)
	}
}

// deadlock makes two transactions wait on each other's row until
// PostgreSQL breaks the cycle (one of them fails with 40P01).
func deadlock(t *testing.T, env *apptest.Env) {
	t.Helper()
	ctx := context.Background()
	a, err := env.App.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Rollback(ctx) }()
	b, err := env.App.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Rollback(ctx) }()
	if _, err := a.Exec(ctx, `UPDATE telemetry_locks SET id = id WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, `UPDATE telemetry_locks SET id = id WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := a.Exec(ctx, `UPDATE telemetry_locks SET id = id WHERE id = 2`)
		errs <- err
		if err != nil {
			_ = a.Rollback(ctx)
		}
	})
	wg.Go(func() {
		_, err := b.Exec(ctx, `UPDATE telemetry_locks SET id = id WHERE id = 1`)
		errs <- err
		if err != nil {
			_ = b.Rollback(ctx)
		}
	})
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if !strings.Contains(err.Error(), "deadlock") {
				t.Fatalf("want a deadlock, got %v", err)
			}
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d of the two transactions failed, want 1 (the deadlock victim)", failed)
	}
}

// hookSink receives a Slack-compatible webhook on loopback.
type hookSink struct {
	srv *httptest.Server
	got chan map[string]any
}

func newHookSink(t *testing.T) *hookSink {
	s := &hookSink{got: make(chan map[string]any, 16)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		s.got <- body
	}))
	t.Cleanup(s.srv.Close)
	return s
}

type alertList struct {
	Alerts []telemetry.Alert `json:"alerts"`
}

func alerts(t *testing.T, env *apptest.Env) []telemetry.Alert {
	t.Helper()
	var out alertList
	env.Must(200, "GET", "/v1/admin/alerts", operatorToken, nil).JSON(t, &out)
	return out.Alerts
}

func awaitAlert(t *testing.T, env *apptest.Env, rule, state string) telemetry.Alert {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, a := range alerts(t, env) {
			if a.Rule == rule && a.State == state {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s alert %s: %+v", state, rule, alerts(t, env))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAlertsAPIAndWebhook: a cache hit rate under a (test) threshold fires
// an alert that the operator API lists and acknowledges and the webhook
// receives; with no traffic left in the window it resolves.
func TestAlertsAPIAndWebhook(t *testing.T) {
	t.Parallel()
	hook := newHookSink(t)
	env := apptest.Start(t, cluster, telemetryConfig, func(c *config.Config) {
		c.Alerts.Thresholds.CacheHitRate = 0.9
		c.Alerts.For = -1
		c.AlertWebhookURL = hook.srv.URL + "/services/hook"
	})
	org := env.Signup("Telemetry Alerts")
	prop := env.Property(org.AdminToken, "Alerting Inn", "UTC")

	env.Must(401, "GET", "/v1/admin/alerts", "", nil)
	env.Must(401, "GET", "/v1/admin/alerts", org.AdminToken, nil)
	if got := alerts(t, env); len(got) != 0 {
		t.Fatalf("alerts before any traffic: %+v", got)
	}

	report := "/v1/reports/daily-report?propertyId=" + prop + "&date=" + time.Now().UTC().Format(time.DateOnly)
	env.Must(200, "GET", report, org.AdminToken, nil) // miss
	crossed := time.Now()
	env.Must(200, "GET", report, org.AdminToken, nil) // hit: 50 % < 90 %
	fired := receive(t, hook.got)
	t.Logf("threshold crossed -> webhook received through hmp (evaluation every 50ms, sampling 20ms; loaded machine): %s",
		time.Since(crossed).Round(time.Millisecond))
	if text, _ := fired["text"].(string); !strings.HasPrefix(text, "[FIRING] HMPCacheHitRateLow") || !strings.Contains(text, "tier=memory") {
		t.Errorf("webhook text %q", fired["text"])
	}

	a := awaitAlert(t, env, "HMPCacheHitRateLow", telemetry.StateFiring)
	// The hit and miss series exist from the start, so the first miss
	// alone (0 %) may already fire; after the hit it is 50 %.
	if a.Labels["tier"] != "memory" || a.Value > 0.5 || a.Threshold != 0.9 || !a.Below || a.Acknowledged {
		t.Fatalf("firing alert %+v", a)
	}
	env.Must(404, "POST", "/v1/admin/alerts/nope/ack", operatorToken, nil)
	env.Must(401, "POST", "/v1/admin/alerts/"+a.ID+"/ack", org.AdminToken, nil)
	var acked telemetry.Alert
	env.Must(200, "POST", "/v1/admin/alerts/"+a.ID+"/ack", operatorToken, map[string]any{"by": "night shift"}).JSON(t, &acked)
	if !acked.Acknowledged || acked.AcknowledgedBy != "night shift" || acked.ID != a.ID {
		t.Fatalf("acknowledged %+v", acked)
	}
	env.Must(200, "POST", "/v1/admin/alerts/"+a.ID+"/ack", operatorToken, nil) // again: no body, no harm

	resolved := awaitAlert(t, env, "HMPCacheHitRateLow", telemetry.StateResolved)
	if resolved.ID != a.ID || !resolved.Acknowledged || resolved.ResolvedAt == nil {
		t.Fatalf("resolved alert %+v", resolved)
	}
	if text, _ := receive(t, hook.got)["text"].(string); !strings.HasPrefix(text, "[RESOLVED] HMPCacheHitRateLow") {
		t.Errorf("resolved webhook text %q", text)
	}
	// The firing was logged with the alert id; the logs hold no secret.
	logs := env.Logs.String()
	if !strings.Contains(logs, "alert_state_changed") || !strings.Contains(logs, a.ID) {
		t.Errorf("the alert's changes are not logged")
	}
	for _, secret := range []string{org.AdminToken, operatorToken, "correct horse", "wrong password", "/services/hook"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold a secret %q", secret)
		}
	}
}

func receive(t *testing.T, ch <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook received")
	}
	return nil
}
