package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"hmp/internal/app"
	"hmp/internal/apptest"
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
	return apptest.Start(s.t, cluster, func(c *app.Config) {
		c.Role, c.DatabaseURL, c.NATSURL, c.BusReplicas = role, s.db, s.nats.URL, 3
		// A killed reports instance's unacknowledged events go to the
		// other one after this.
		c.Projector.AckWait = 2 * time.Second
		c.Gateway = gateway.Config{CallTimeout: 2 * time.Second, BreakerFailures: 3, BreakerOpen: 300 * time.Millisecond}
	})
}

// TestSplitRolesContract: through a gateway forwarding to finance and
// reports instances over NATS, the API answers as role all does: the same
// OpenAPI document, the same writes, the consistency token honoured by a
// report read, the same problems for bad input, an unknown route and a
// missing token; the services' own HTTP ports serve no API.
func TestSplitRolesContract(t *testing.T) {
	t.Parallel()
	s := newSplit(t)
	fin := s.role(app.RoleFinance)
	rep := s.role(app.RoleReports)
	gw := s.role(app.RoleGateway)
	all := apptest.Start(t, cluster)

	a, b := gw.Must(200, "GET", "/openapi.json", "", nil).Body, all.Must(200, "GET", "/openapi.json", "", nil).Body
	if !bytes.Equal(a, b) {
		t.Errorf("the gateway's OpenAPI document differs from role all's")
	}
	for _, env := range []*apptest.Env{gw, all} {
		org := env.Signup("Split Books " + env.App.Config.Role)
		prop := env.Property(org.AdminToken, "Harbour", "UTC")
		rev := env.Revenue(org.AdminToken, apptest.Txn{PropertyID: prop, AmountCents: 5000, PaymentMode: "cash", OccurredAt: "2026-03-02T10:00:00Z"})
		if rev.Status != "approved" || rev.BusinessDate != "2026-03-02" {
			t.Fatalf("%s: revenue %+v", env.App.Config.Role, rev)
		}
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
		job := env.Must(202, "POST", "/v1/reports/reconciliation", org.AdminToken, map[string]any{"propertyId": prop}).Map(t)
		if done := awaitSplitJob(t, env, org.AdminToken, job["id"].(string)); done.MismatchCount != 0 {
			t.Errorf("%s: reconciliation found %+v", env.App.Config.Role, done)
		}
	}
	// The services take the API from the gateway only.
	fin.Must(404, "GET", "/v1/properties", "", nil)
	rep.Must(404, "GET", "/v1/reports/daily-report", "", nil)
	fin.Must(200, "GET", "/readyz", "", nil)
	rep.Must(200, "GET", "/readyz", "", nil)
	gw.Must(200, "GET", "/readyz", "", nil)
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

var _ = json.Marshal
var _ = fmt.Sprint
