package partitions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/postgres"
)

// spanning are the statements that may read several partitions of a
// partitioned table, each with its reason: platform-wide background work,
// never a request of one organization. A statement matches when it
// contains the key.
var spanning = map[string]string{
	// The outbox relay publishes every organization's events in commit
	// order: it scans events by transaction id across organizations.
	"FROM events e, relay_state st": "the outbox relay's lag reads every organization's unpublished events (events_tx)",
	"FROM events e WHERE (e.tx_id, e.seq) > (st.cursor_tx, st.cursor_seq) ORDER BY e.tx_id, e.seq LIMIT 1": "the outbox gauge reads the first unpublished event of all organizations (events_tx, one row per partition)",
	"FROM events WHERE (tx_id, seq) >": "the outbox relay reads every organization's new events in commit order (events_tx)",
	// The outbox age gauge reads the first unpublished event: one row of
	// events_tx per partition.
	"FROM events e WHERE (e.tx_id, e.seq) > (st.cursor_tx, st.cursor_seq)": "the outbox age gauge reads the first unpublished event in commit order (events_tx, one row per partition)",
	// A token read its organization does not reflect yet also polls the
	// stream-wide fallback: is every committed event published? That is
	// an index range scan per partition over the in-flight transaction
	// window only (events_tx), so it grows with the partition count, not
	// with the data.
	"SELECT 1 FROM events e WHERE e.tx_id >= st.horizon": "the consistency wait's stream-wide fallback asks whether the transactions in flight wrote events (events_tx, in-flight window only)",
	// Pruners delete what expired, whoever it belongs to.
	"DELETE FROM idempotency_keys WHERE created_at <": "the idempotency pruner deletes expired keys of every organization",
	"SELECT 1 FROM idempotency_keys LIMIT $1":         "the idempotency pruner's gauge counts at most 10,001 keys of all organizations, then takes the planner's estimate",
	"DELETE FROM projector_applied a":                 "the projector's pruner deletes applied records past retention, every organization",
	// Drift detection and repair work on keys of many organizations.
	"FROM projector_applied a JOIN events e ON e.org_id = a.org_id AND e.seq = a.event_seq WHERE a.applied_at >=":     "the drift sweep lists every organization's properties the projector changed since the last sweep",
	"WITH k AS ( SELECT DISTINCT o, p, d FROM unnest($1::uuid[], $2::uuid[], $3::date[]) AS k(o, p, d) ), settled AS": "the correction batcher repairs keys of several organizations in one statement (the guide's batched corrections); its org ids come from the key arrays, so the planner cannot prune",
}

// TestEveryRequestPrunesToOnePartition runs the application's whole
// workload through a recording tracer, then EXPLAINs every distinct
// statement the API and the projector issued with its recorded arguments
// and fails on any plan that reads more than one partition of a
// partitioned table (unless listed in spanning with its reason).
func TestEveryRequestPrunesToOnePartition(t *testing.T) {
	rec := &postgres.Recorder{PerStatement: 2}
	env := apptest.Start(t, db, func(c *config.Config) {
		c.Pool.Tracer = rec
		// The background detectors and the pruner run too, often, so
		// that their statements are recorded (and listed in spanning).
		c.Reconcile.SampleRate, c.Reconcile.SweepEvery = 100, 100*time.Millisecond
		c.Projector.PruneEvery = 100 * time.Millisecond
	})
	workload(t, env)
	time.Sleep(300 * time.Millisecond) // a few sweeps and prunes past the last write
	// The app exports the partition load (refreshed at start, then every
	// PartitionMetricsEvery).
	if m := env.Must(200, "GET", "/metrics", "", nil); !strings.Contains(string(m.Body), `hmp_partition_rows{partition="transactions_p15",table="transactions"}`) {
		t.Errorf("/metrics lacks the partition load")
	}

	ctx := context.Background()
	pool, err := postgres.Open(ctx, env.App.DatabaseURL, postgres.PoolConfig{MaxConns: 2, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	parents := map[string]string{} // partition -> its partitioned table
	rows, err := pool.Query(ctx, `
		SELECT c.relname, p.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relkind = 'p'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c, p string
		if err := rows.Scan(&c, &p); err != nil {
			t.Fatal(err)
		}
		parents[c] = p
	}
	rows.Close()
	if len(parents) == 0 {
		t.Fatal("no partitions: the schema is not partitioned")
	}

	explained, touching := 0, map[string]bool{}
	for _, st := range rec.Statements() {
		if !explainable(st.SQL) {
			continue
		}
		for _, args := range st.Args {
			var plan []struct{ Plan map[string]any }
			var raw []byte
			if err := pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+st.SQL, args...).Scan(&raw); err != nil {
				t.Errorf("EXPLAIN %s: %v", oneLine(st.SQL), err)
				continue
			}
			if err := json.Unmarshal(raw, &plan); err != nil {
				t.Fatal(err)
			}
			explained++
			perTable := map[string]map[string]bool{}
			for _, p := range plan {
				walk(p.Plan, func(rel string) {
					if parent, ok := parents[rel]; ok {
						if perTable[parent] == nil {
							perTable[parent] = map[string]bool{}
						}
						perTable[parent][rel] = true
					}
				})
			}
			for table, parts := range perTable {
				touching[table] = true
				if len(parts) <= 1 {
					continue
				}
				if reason := spans(st.SQL); reason != "" {
					t.Logf("spans %d partitions of %s by design (%s): %s", len(parts), table, reason, oneLine(st.SQL))
					continue
				}
				t.Errorf("%s: plan reads %d partitions of %s (add org_id to its predicates): %s\nargs %v", table, len(parts), table, oneLine(st.SQL), args)
			}
		}
	}
	// The workload must have reached every partitioned table, else the
	// test proves nothing about it.
	for _, table := range []string{"transactions", "events", "idempotency_keys", "daily_cash_balances", "monthly_cash_balances", "projector_applied", "cash_counts"} {
		if !touching[table] {
			t.Errorf("no recorded statement read %s", table)
		}
	}
	if explained < 40 {
		t.Errorf("only %d statements explained: the workload did not run", explained)
	}
	t.Logf("%d statements explained", explained)
}

func spans(sql string) string {
	keys := make([]string, 0, len(spanning))
	for k := range spanning {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.Contains(oneLine(sql), k) {
			return spanning[k]
		}
	}
	return ""
}

var leadingComments = regexp.MustCompile(`^(\s*(--[^\n]*\n|/\*.*?\*/))*\s*`)

// explainable tells the statements EXPLAIN takes (not BEGIN, SET, ...).
func explainable(sql string) bool {
	s := strings.ToUpper(leadingComments.ReplaceAllString(sql, ""))
	for _, p := range []string{"SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "VALUES"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// walk calls f with the relation of every node of a JSON plan.
func walk(node map[string]any, f func(rel string)) {
	if rel, ok := node["Relation Name"].(string); ok {
		f(rel)
	}
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			if m, ok := k.(map[string]any); ok {
				walk(m, f)
			}
		}
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// workload drives every route family of the API over two organizations:
// signup, login, properties, managers, creates (with an idempotency key
// and its replay), edits, approvals, rejections, deletions (direct and
// requested), daily approvals, cash counts, lists, events, every report
// with and without a consistency token, and a reconciliation.
func workload(t *testing.T, env *apptest.Env) {
	today := time.Now().UTC().Format("2006-01-02")
	at := func(d string, h int) string { return fmt.Sprintf("%sT%02d:00:00Z", d, h) }
	day1 := time.Now().UTC().AddDate(0, 0, -40).Format("2006-01-02")
	for _, name := range []string{"Prune One", "Prune Two"} {
		org := env.Signup(name)
		admin := org.AdminToken
		env.Must(200, "POST", "/v1/auth/login", "", map[string]any{"email": org.AdminEmail, "password": "correct horse"})
		p1 := env.Property(admin, name+" Hotel", "")
		p2 := env.Property(admin, name+" Hostel", "Asia/Tokyo")
		env.Must(200, "GET", "/v1/properties", admin, nil)
		mgrID, mgr := env.Manager(admin, strings.ReplaceAll(strings.ToLower(name), " ", "")+"-mgr@example.test", p1)
		env.Must(200, "PUT", "/v1/users/"+mgrID+"/properties", admin, map[string]any{"propertyIds": []string{p1, p2}})

		r1 := env.Revenue(admin, apptest.Txn{PropertyID: p1, AmountCents: 10000, PaymentMode: "cash", OccurredAt: at(day1, 10)})
		env.Expense(admin, apptest.Txn{PropertyID: p1, Category: "supplies", AmountCents: 2500, PaymentMode: "bank", OccurredAt: at(day1, 11), BankReference: "B-1"})
		env.Revenue(admin, apptest.Txn{PropertyID: p2, AmountCents: 7000, PaymentMode: "bank", OccurredAt: at(today, 1), BankReference: "B-2"})
		key := []string{"Idempotency-Key", name + "-k1"}
		body := apptest.Txn{PropertyID: p1, Source: "addon", AmountCents: 300, PaymentMode: "cash", OccurredAt: at(today, 2)}
		env.Must(201, "POST", "/v1/finance/revenues", admin, body, key...)
		env.Must(201, "POST", "/v1/finance/revenues", admin, body, key...) // the replay
		env.Must(200, "PATCH", "/v1/finance/revenues/"+r1.ID, admin, map[string]any{"amountCents": 12000})
		env.Must(200, "GET", "/v1/finance/revenues/"+r1.ID, admin, nil)

		// A manager's rows are pending until an ADMIN decides.
		m1 := env.Revenue(mgr, apptest.Txn{PropertyID: p1, AmountCents: 900, PaymentMode: "cash", OccurredAt: at(today, 3)})
		m2 := env.Expense(mgr, apptest.Txn{PropertyID: p2, Category: "food", AmountCents: 400, PaymentMode: "cash", OccurredAt: at(today, 4)})
		m3 := env.Revenue(mgr, apptest.Txn{PropertyID: p1, AmountCents: 800, PaymentMode: "cash", OccurredAt: at(today, 5)})
		env.Must(200, "PATCH", "/v1/finance/revenues/"+m3.ID, mgr, map[string]any{"amountCents": 850})
		env.Must(200, "POST", "/v1/finance/revenues/"+m1.ID+"/approve", admin, nil)
		env.Must(200, "POST", "/v1/finance/expenses/"+m2.ID+"/reject", admin, map[string]any{"notes": "no receipt"})
		env.Must(200, "POST", "/v1/finance/revenues/"+m3.ID+"/approve", admin, nil)
		var req struct {
			DeletionRequestID string `json:"deletionRequestId"`
		}
		env.Must(202, "DELETE", "/v1/finance/revenues/"+m1.ID, mgr, nil).JSON(t, &req)
		env.Must(200, "POST", "/v1/finance/deletion-requests/"+req.DeletionRequestID+"/approve", admin, nil)
		env.Must(201, "POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": mgrID, "date": today})
		d := env.Revenue(admin, apptest.Txn{PropertyID: p2, AmountCents: 100, PaymentMode: "cash", OccurredAt: at(today, 6)})
		env.Must(204, "DELETE", "/v1/finance/revenues/"+d.ID, admin, nil)

		w := env.Must(201, "POST", "/v1/reports/cash-counts", admin, map[string]any{"propertyId": p1, "date": day1, "countedClosingCents": 7400})
		token := w.Header.Get("X-Consistency-Token")
		env.Must(201, "POST", "/v1/reports/cash-counts", admin, map[string]any{"propertyId": p1, "date": day1, "countedClosingCents": 7500})

		for _, path := range []string{
			"/v1/finance/revenues", "/v1/finance/expenses", "/v1/finance/revenues?propertyId=" + p1 + "&status=approved",
			"/v1/finance/expenses?startDate=" + day1 + "&endDate=" + today, "/v1/finance/events?limit=100",
		} {
			env.Must(200, "GET", path, admin, nil)
		}
		env.Must(200, "GET", "/v1/finance/revenues", mgr, nil)
		y, m, _ := time.Now().UTC().Date()
		for _, tok := range []string{"", token} {
			var h []string
			if tok != "" {
				h = []string{"X-Consistency-Token", tok}
			}
			for _, path := range []string{
				"/v1/reports/daily-report?propertyId=" + p1 + "&date=" + today,
				"/v1/reports/daily-report?propertyId=" + p1 + "&date=" + day1 + "&includePending=true",
				"/v1/reports/daily-reports?propertyId=" + p1 + "&startDate=" + day1 + "&endDate=" + today,
				fmt.Sprintf("/v1/reports/monthly-report?propertyId=%s&year=%d&month=%d", p1, y, int(m)),
				fmt.Sprintf("/v1/reports/monthly-report?year=%d&month=%d", y, int(m)),
				fmt.Sprintf("/v1/reports/yearly-summary?propertyId=%s&year=%d", p2, y),
				fmt.Sprintf("/v1/reports/yearly-summary?year=%d", y),
			} {
				env.Must(200, "GET", path, admin, nil, h...)
			}
		}
		env.Must(200, "GET", "/v1/reports/daily-report?propertyId="+p1+"&date="+today, mgr, nil)

		var job struct{ ID, Status string }
		env.Must(202, "POST", "/v1/reports/reconciliation", admin, map[string]any{}).JSON(t, &job)
		deadline := time.Now().Add(time.Minute)
		for job.Status != "done" {
			if time.Now().After(deadline) {
				t.Fatalf("reconciliation job %s still %s", job.ID, job.Status)
			}
			time.Sleep(50 * time.Millisecond)
			env.Must(200, "GET", "/v1/reports/reconciliation/"+job.ID, admin, nil).JSON(t, &job)
		}
		env.Must(202, "POST", "/v1/reports/reconciliation", admin, map[string]any{"propertyId": p2})
		env.Must(200, "PATCH", "/v1/users/"+mgrID, admin, map[string]any{"disabled": true})
		env.Must(204, "POST", "/v1/auth/logout", admin, nil)
	}
}
