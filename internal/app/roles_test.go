package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/gateway"
	"hmp/internal/natstest"
)

// split is a split deployment for a test: one database and one JetStream
// cluster shared by role instances started with role().
type split struct {
	t    *testing.T
	db   string
	nats *natstest.Cluster
}

func newSplit(t *testing.T) *split {
	return &split{t: t, db: cluster.NewDatabase(t), nats: natstest.Start(t, 3)}
}

// role starts one instance of role on the shared database and cluster.
func (s *split) role(role string) *apptest.Env {
	s.t.Helper()
	return apptest.Start(s.t, cluster, func(c *config.Config) {
		c.Role, c.DatabaseURL, c.NATSURL, c.BusReplicas = role, s.db, s.nats.URL, 3
		c.AdminToken = testAdminToken
		// A killed reports instance's unacknowledged events go to the
		// other one after this.
		c.Projector.AckWait = 2 * time.Second
		c.Gateway = gateway.Config{CallTimeout: 2 * time.Second, BreakerFailures: 3, BreakerOpen: 300 * time.Millisecond}
	})
}

// TestSplitRolesContract: through a gateway forwarding to finance and
// reports instances over NATS, the public API answers as role all does:
// the same OpenAPI document (operator routes aside), the same writes, the
// consistency token honoured by a report read, a row's history, a stale
// If-Match refused, asOf reads, the same problems for bad input, an
// unknown route and a missing token; the services' own HTTP ports serve
// no public API, only each instance's operator API.
func TestSplitRolesContract(t *testing.T) {
	t.Parallel()
	s := newSplit(t)
	fin := s.role(config.RoleFinance)
	rep := s.role(config.RoleReports)
	gw := s.role(config.RoleGateway)
	all := apptest.Start(t, cluster)

	a, b := publicOpenAPI(t, gw.Must(200, "GET", "/openapi.json", "", nil).Body), publicOpenAPI(t, all.Must(200, "GET", "/openapi.json", "", nil).Body)
	if !bytes.Equal(a, b) {
		t.Errorf("the gateway's public OpenAPI document differs from role all's:\ngateway: %s\nall:     %s", a, b)
	}
	if !bytes.Contains(a, []byte(`"/v1/finance/revenues/{id}/history"`)) || !bytes.Contains(a, []byte(`"asOf"`)) {
		t.Errorf("the public OpenAPI document lacks the history route or the asOf parameter")
	}
	for _, env := range []*apptest.Env{gw, all} {
		org := env.Signup("Split Books " + env.App.Config.Role)
		prop := env.Property(org.AdminToken, "Harbour", "UTC")
		rev := env.Revenue(org.AdminToken, apptest.Txn{PropertyID: prop, AmountCents: 5000, PaymentMode: "cash", OccurredAt: "2026-03-02T10:00:00Z"})
		if rev.Status != "approved" || rev.BusinessDate != "2026-03-02" {
			t.Fatalf("%s: revenue %+v", env.App.Config.Role, rev)
		}
		// Optimistic concurrency and the row's history, through the
		// gateway as in role all.
		revPath := "/v1/finance/revenues/" + rev.ID
		if tag := env.Must(200, "PATCH", revPath, org.AdminToken, map[string]any{"description": "late checkout"}, "If-Match", `"1"`).Header.Get("ETag"); tag != `"2"` {
			t.Errorf("%s: ETag after a PATCH = %q, want \"2\"", env.App.Config.Role, tag)
		}
		stale := env.Must(412, "PATCH", revPath, org.AdminToken, map[string]any{"amountCents": 9999}, "If-Match", `"1"`)
		if ct := stale.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: 412 answered %q, want problem+json", env.App.Config.Role, ct)
		}
		var hist struct {
			Items []struct {
				Version int
				Action  string
				Changes []struct{ Field string }
			}
		}
		env.Must(200, "GET", revPath+"/history", org.AdminToken, nil).JSON(t, &hist)
		if len(hist.Items) != 2 || hist.Items[0].Version != 1 || hist.Items[1].Version != 2 ||
			len(hist.Items[1].Changes) != 1 || hist.Items[1].Changes[0].Field != "description" {
			t.Errorf("%s: history %+v, want the creation then the description's change", env.App.Config.Role, hist.Items)
		}
		beforeExpense := time.Now().UTC().Format(time.RFC3339Nano)
		w := env.Must(201, "POST", "/v1/finance/expenses", org.AdminToken, apptest.Txn{PropertyID: prop, Category: "linen",
			AmountCents: 1200, PaymentMode: "cash", OccurredAt: "2026-03-02T11:00:00Z"})
		token := w.Header.Get("X-Consistency-Token")
		if token == "" {
			t.Fatalf("%s: no consistency token on a write", env.App.Config.Role)
		}
		var day struct {
			OpeningBalanceCents, CashReceivedCents, CashExpensesCents, ClosingBalanceCents int64
		}
		env.Must(200, "GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-03-02", org.AdminToken, nil,
			"X-Consistency-Token", token).JSON(t, &day)
		if day.CashReceivedCents != 5000 || day.CashExpensesCents != 1200 || day.ClosingBalanceCents != 3800 {
			t.Errorf("%s: daily report %+v, want 5000 in, 1200 out, closing 3800", env.App.Config.Role, day)
		}
		env.Must(200, "GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-03-02&asOf="+url.QueryEscape(beforeExpense), org.AdminToken, nil).JSON(t, &day)
		if day.CashReceivedCents != 5000 || day.CashExpensesCents != 0 {
			t.Errorf("%s: daily report as of before the expense %+v, want 5000 in, nothing out", env.App.Config.Role, day)
		}
		w = env.Must(201, "POST", "/v1/reports/cash-counts", org.AdminToken, map[string]any{"propertyId": prop, "date": "2026-03-02", "countedClosingCents": 3700})
		counted := env.Must(200, "GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-03-02", org.AdminToken, nil,
			"X-Consistency-Token", w.Header.Get("X-Consistency-Token")).Map(t)
		if counted["discrepancyCents"] != float64(-100) {
			t.Errorf("%s: counted day %v, want a discrepancy of -100", env.App.Config.Role, counted)
		}
		r := env.Must(422, "POST", "/v1/finance/revenues", org.AdminToken, map[string]any{"propertyId": prop, "amountCents": 0, "paymentMode": "cash", "occurredAt": "2026-03-02T10:00:00Z", "source": "room"})
		if !bytes.Contains(r.Body, []byte("body.amountCents")) {
			t.Errorf("%s: 422 does not name the field: %s", env.App.Config.Role, r.Body)
		}
		env.Must(404, "GET", "/v1/reports/daily-report?propertyId=00000000-0000-0000-0000-000000000001&date=2026-03-02", org.AdminToken, nil)
		env.Must(401, "GET", "/v1/properties", "", nil)
		env.Must(404, "GET", "/v1/nowhere", org.AdminToken, nil)
		var list struct{ Items []map[string]any }
		env.Must(200, "GET", "/v1/finance/revenues?propertyId="+prop, org.AdminToken, nil).JSON(t, &list)
		if len(list.Items) != 1 {
			t.Errorf("%s: listed %d revenues, want 1", env.App.Config.Role, len(list.Items))
		}
		// A manager sees only assigned properties (a tenancy fact the
		// reports role asks finance for), and a disabled manager's token
		// stops working within 5 s on every role.
		other := env.Property(org.AdminToken, "Annex", "UTC")
		mgrID, mgr := env.Manager(org.AdminToken, "mgr-"+env.App.Config.Role+"@split.test", prop)
		env.Must(200, "GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-03-02", mgr, nil)
		env.Must(404, "GET", "/v1/reports/daily-report?propertyId="+other+"&date=2026-03-02", mgr, nil)
		env.Must(200, "PATCH", "/v1/users/"+mgrID, org.AdminToken, map[string]any{"disabled": true})
		for deadline := time.Now().Add(5 * time.Second); ; {
			r := env.Do("GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-03-02", mgr, nil)
			if r.Status == 401 {
				break
			}
			if r.Status != 200 || time.Now().After(deadline) {
				t.Fatalf("%s: a disabled manager's read answered %s", env.App.Config.Role, r)
			}
			time.Sleep(50 * time.Millisecond)
		}
		job := env.Must(202, "POST", "/v1/reports/reconciliation", org.AdminToken, map[string]any{"propertyId": prop}).Map(t)
		if done := awaitSplitJob(t, env, org.AdminToken, job["id"].(string)); done.MismatchCount != 0 {
			t.Errorf("%s: reconciliation found %+v", env.App.Config.Role, done)
		}
	}
	// The services take the public API from the gateway only; each
	// instance serves its own operator API.
	fin.Must(404, "GET", "/v1/properties", "", nil)
	rep.Must(404, "GET", "/v1/reports/daily-report", "", nil)
	fin.Must(404, "GET", "/openapi.json", "", nil)
	for _, env := range []*apptest.Env{fin, rep, gw} {
		env.Must(401, "GET", "/v1/admin/alerts", "", nil)
		env.Must(200, "GET", "/v1/admin/alerts", testAdminToken, nil)
		env.Must(200, "GET", "/dashboard", testAdminToken, nil)
	}
	// The gateway has no database to advise on.
	gw.Must(404, "GET", "/v1/admin/index-advice", testAdminToken, nil)
	// The live settings are the cluster's: a change made through the
	// gateway is what the reports instance (which runs the cache) shows.
	cur := getSettings(t, gw)
	st := putSettings(t, gw, "split-test", map[string]any{"projector": map[string]any{"maxConcurrency": cur.Settings.Projector.MaxConcurrency + 1}})
	if st.Settings.Projector.MaxConcurrency != cur.Settings.Projector.MaxConcurrency+1 {
		t.Fatalf("settings after the change: %+v", st.Settings.Projector)
	}
	awaitRevision(t, rep, st.Revision)
	mustTuned(t, rep, st.Settings)
	awaitRevision(t, fin, st.Revision)
	fin.Must(200, "GET", "/readyz", "", nil)
	rep.Must(200, "GET", "/readyz", "", nil)
	gw.Must(200, "GET", "/readyz", "", nil)
}

// publicOpenAPI returns doc without the operator routes (/v1/admin/...)
// and the schemas only they use, re-encoded with sorted keys. The operator
// API is per instance (each serves it on its own port about itself: the
// gateway has no database, hence no index advice), so it is not part of
// the contract the gateway must share with role all.
func publicOpenAPI(t *testing.T, doc []byte) []byte {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("openapi: %v", err)
	}
	paths, _ := d["paths"].(map[string]any)
	for p := range paths {
		if gateway.Operator(p) {
			delete(paths, p)
		}
	}
	comps, _ := d["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	delete(comps, "schemas")
	// Keep the schemas reachable from what is left.
	used := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if ref, ok := x.(string); ok && k == "$ref" {
					name := ref[strings.LastIndex(ref, "/")+1:]
					if !used[name] {
						used[name] = true
						walk(schemas[name])
					}
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(d)
	kept := map[string]any{}
	for name := range used {
		if sch, ok := schemas[name]; ok {
			kept[name] = sch
		}
	}
	comps["schemas"] = kept
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatalf("openapi: %v", err)
	}
	return out
}

// awaitSplitJob polls a reconciliation job through env until it is done.
func awaitSplitJob(t *testing.T, env *apptest.Env, token, id string) repReconciliation {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		var job repReconciliation
		r := env.Do("GET", "/v1/reports/reconciliation/"+id, token, nil)
		if r.Status == 503 {
			continue // the switch-over: retryable
		}
		if r.Status != 200 {
			t.Fatalf("reconciliation job %s: %s", id, r)
		}
		r.JSON(t, &job)
		switch {
		case job.Status == "done":
			return job
		case job.Status != "running":
			t.Fatalf("reconciliation job %s: %+v", id, job)
		case time.Now().After(deadline):
			t.Fatalf("reconciliation job %s still running after a minute", id)
		}
	}
	panic("unreachable")
}

var breakerLine = regexp.MustCompile(`(?m)^hmp_breaker_state\{name="([a-z_]+)"\} (\d+)`)

// breakerStates reads the gateway's hmp_breaker_state gauges.
func breakerStates(t *testing.T, gw *apptest.Env) map[string]int {
	t.Helper()
	body := gw.Must(200, "GET", "/metrics", "", nil).Body
	out := map[string]int{}
	for _, m := range breakerLine.FindAllSubmatch(body, -1) {
		n, _ := strconv.Atoi(string(m[2]))
		out[string(m[1])] = n
	}
	return out
}

// TestSplitRolesFailover: one gateway, two finance and two reports
// instances, a three-node JetStream cluster with three replicas, one
// PostgreSQL. Under a steady load of writes (each retried with its
// Idempotency-Key until acknowledged) and report reads, one finance and
// one reports instance are killed, then a NATS node is stopped, then the
// last finance instance is killed and a new one started. Clients see only
// 201s, 200s and retryable 503s (Retry-After); the gateway's finance
// breaker opens while no finance instance answers and closes when one
// is back; every acknowledged revenue is in the ledger exactly once, with
// exactly one event; the projection catches up and reconciliation finds
// nothing.
func TestSplitRolesFailover(t *testing.T) {
	t.Parallel()
	s := newSplit(t)
	fin1, fin2 := s.role(config.RoleFinance), s.role(config.RoleFinance)
	rep1, _ := s.role(config.RoleReports), s.role(config.RoleReports)
	gw := s.role(config.RoleGateway)
	org := gw.Signup("Failover Books")
	prop := gw.Property(org.AdminToken, "Lighthouse", "UTC")

	var (
		mu          sync.Mutex
		acked       = map[string]string{} // idempotency key -> row id
		sum         int64
		unavailable int
		bad         []string // answers other than 2xx and retryable 503s
		written     atomic.Int64
		stop        = make(chan struct{})
		wg          sync.WaitGroup
	)
	// retryable reports whether r is a 503 with Retry-After (counted).
	retryable := func(r *apptest.Response) bool {
		if r.Status != 503 || r.Header.Get("Retry-After") == "" {
			return false
		}
		mu.Lock()
		unavailable++
		mu.Unlock()
		return true
	}
	fail := func(what string) {
		mu.Lock()
		bad = append(bad, what)
		mu.Unlock()
	}
	pause := func() bool {
		select {
		case <-stop:
			return false
		case <-time.After(50 * time.Millisecond):
			return true
		}
	}
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("failover-%d-%d", w, i)
				amount := int64(100 + 1000*w + i)
				body := apptest.Txn{PropertyID: prop, Source: "room", AmountCents: amount, PaymentMode: "cash", OccurredAt: "2026-03-02T10:00:00Z"}
				for {
					r, err := gw.Send("POST", "/v1/finance/revenues", org.AdminToken, body, "Idempotency-Key", key)
					if err != nil {
						fail(err.Error())
						return
					}
					if r.Status == 201 {
						var row apptest.Row
						if err := json.Unmarshal(r.Body, &row); err != nil || row.ID == "" {
							fail("201 without a row: " + r.String())
							return
						}
						mu.Lock()
						acked[key] = row.ID
						sum += amount
						mu.Unlock()
						written.Add(1)
						break
					}
					if !retryable(r) {
						fail("POST: " + r.String())
						return
					}
					if !pause() {
						return // never acknowledged: not counted
					}
				}
			}
		})
	}
	wg.Go(func() {
		for pause() {
			r, err := gw.Send("GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-03-02", org.AdminToken, nil)
			if err != nil {
				fail(err.Error())
				return
			}
			if r.Status != 200 && !retryable(r) {
				fail("GET: " + r.String())
				return
			}
		}
	})
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if cond() {
				return
			}
			mu.Lock()
			seen := append([]string(nil), bad...)
			mu.Unlock()
			if len(seen) > 0 || time.Now().After(deadline) {
				t.Fatalf("waiting for %s: bad answers %v (or 30s passed)", what, seen)
			}
		}
	}
	more := func(n int64) {
		t.Helper()
		target := written.Load() + n
		waitFor(fmt.Sprintf("%d acknowledged writes", target), func() bool { return written.Load() >= target })
	}
	breaker := func(want int) func() bool {
		return func() bool { return breakerStates(t, gw)["gateway_finance"] == want }
	}

	more(20)
	fin1.App.Kill()
	rep1.App.Kill()
	more(20)
	s.nats.Stop(0)
	more(20)
	fin2.App.Kill() // no finance instance left: the breaker opens
	waitFor("the finance breaker to open", breaker(2))
	stalled := written.Load()
	s.role(config.RoleFinance) // a new one: the breaker closes
	waitFor("the finance breaker to close", breaker(0))
	more(20)
	close(stop)
	wg.Wait()

	// Every client goroutine has returned, so the checks below read the
	// shared state without mu; holding it here deadlocked the waitFor
	// below, which takes mu while it polls.
	if len(bad) > 0 {
		t.Fatalf("clients saw answers other than 2xx and retryable 503s: %v", bad)
	}
	if unavailable == 0 || written.Load() <= stalled {
		t.Fatalf("%d retryable 503s, writes %d after the outage at %d: the test did not exercise the switch-over", unavailable, written.Load(), stalled)
	}
	t.Logf("%d writes acknowledged, %d retryable 503s seen", len(acked), unavailable)

	// Every acknowledged row is in the ledger once, with one event, and
	// nothing else is.
	conn, err := pgx.Connect(context.Background(), s.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `
		SELECT t.id::text, (SELECT count(*) FROM events e WHERE e.org_id = t.org_id AND e.entity_id = t.id AND e.event_type = 'revenue_added')
		FROM transactions t WHERE t.org_id = $1 AND t.kind = 'revenue'`, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	inLedger := map[string]int64{}
	for rows.Next() {
		var id string
		var events int64
		if err := rows.Scan(&id, &events); err != nil {
			t.Fatal(err)
		}
		inLedger[id] = events
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for key, id := range acked {
		if ids[id] {
			t.Errorf("two keys acknowledged row %s", id)
		}
		ids[id] = true
		if n, ok := inLedger[id]; !ok || n != 1 {
			t.Errorf("acknowledged row %s (key %s): in ledger %v with %d revenue_added events", id, key, ok, n)
		}
	}
	if len(inLedger) != len(acked) {
		t.Errorf("the ledger holds %d revenues, %d were acknowledged", len(inLedger), len(acked))
	}

	// The projection catches up (the killed reports instance's
	// unacknowledged events went to the other) and reconciliation agrees.
	waitFor("the projection to catch up", func() bool {
		r := gw.Do("GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-03-02", org.AdminToken, nil)
		return r.Status == 200 && int64(r.Map(t)["cashReceivedCents"].(float64)) == sum
	})
	job := gw.Must(202, "POST", "/v1/reports/reconciliation", org.AdminToken, map[string]any{}).Map(t)
	if done := awaitSplitJob(t, gw, org.AdminToken, job["id"].(string)); done.MismatchCount != 0 || done.DaysChecked != 1 {
		t.Errorf("reconciliation after the failover: %+v", done)
	}
}
