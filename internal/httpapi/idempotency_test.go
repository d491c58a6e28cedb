package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"hmp/internal/httpapi/httpapitest"
)

// keyed sends body (JSON; nil: none) with an Idempotency-Key.
func (a *api) keyed(method, path, token, key string, body any) answer {
	a.t.Helper()
	return a.do(method, path, token, body, "Idempotency-Key", key)
}

// orgState is what an organization holds: row counts per table (events
// included: every finance and report write appends one) and a digest of
// the rows that change in place.
type orgState struct {
	Counts  map[string]int64
	Digests map[string]string
}

func (a *api) state(orgToken string) orgState {
	a.t.Helper()
	org := a.orgID(orgToken)
	s := orgState{Counts: map[string]int64{}, Digests: map[string]string{}}
	for _, table := range []string{"events", "properties", "users", "manager_properties", "transactions",
		"deletion_requests", "daily_approvals", "cash_counts", "reconcile_jobs"} {
		var n int64
		if err := a.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE org_id = $1`, org).Scan(&n); err != nil {
			a.t.Fatalf("count %s: %v", table, err)
		}
		s.Counts[table] = n
	}
	for _, table := range []string{"properties", "users", "manager_properties", "transactions", "deletion_requests",
		"daily_approvals", "cash_counts"} {
		var d string
		if err := a.pool.QueryRow(context.Background(),
			`SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM `+table+` t WHERE org_id = $1`, org).Scan(&d); err != nil {
			a.t.Fatalf("digest %s: %v", table, err)
		}
		s.Digests[table] = d
	}
	return s
}

func (a *api) orgID(token string) string {
	a.t.Helper()
	var org string
	// The organization of the token's user, read from the database.
	var props struct{ Items []struct{ ID string } }
	a.must(200, "GET", "/v1/properties", token, nil, &props)
	if len(props.Items) == 0 {
		a.t.Fatal("an organization without a property")
	}
	if err := a.pool.QueryRow(context.Background(), `SELECT org_id::text FROM properties WHERE id = $1`, props.Items[0].ID).Scan(&org); err != nil {
		a.t.Fatal(err)
	}
	return org
}

func equalState(a, b orgState) bool {
	for k, v := range a.Counts {
		if b.Counts[k] != v {
			return false
		}
	}
	for k, v := range a.Digests {
		if b.Digests[k] != v {
			return false
		}
	}
	return true
}

func countDiff(before, after orgState) map[string]int64 {
	d := map[string]int64{}
	for k, v := range after.Counts {
		if n := v - before.Counts[k]; n != 0 {
			d[k] = n
		}
	}
	return d
}

// keyedRequest is one retryable write of a route family.
type keyedRequest struct {
	method, path, token string
	body                any
	// other is another body for the same route (nil: none).
	other any
	// refused is a body the route refuses with refusedStatus (nil: none);
	// fixed is then accepted with the same key.
	refused       any
	refusedStatus int
	fixed         any
}

type keyedFamily struct {
	name string
	// prep makes what the request needs in o's organization.
	prep func(a *api, o org) keyedRequest
}

var today = time.Now().UTC()

func day(offset int) string { return today.AddDate(0, 0, offset).Format(time.DateOnly) }

func keyedFamilies() []keyedFamily {
	txnBody := func(prop string, amount int64) map[string]any {
		b := revenue(prop)
		b["amountCents"] = amount
		return b
	}
	expense := func(prop string, amount int64) map[string]any {
		return map[string]any{"propertyId": prop, "category": "supplies", "amountCents": amount, "paymentMode": "bank",
			"occurredAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}
	}
	var created struct{ ID string }
	pending := func(a *api, o org) (mgrToken, id string) {
		mgrToken = a.login(o.managerEmail, managerPassword)
		a.must(201, "POST", "/v1/finance/revenues", mgrToken, txnBody(o.propertyID, 777), &created)
		return mgrToken, created.ID
	}
	return []keyedFamily{
		{"property create", func(a *api, o org) keyedRequest {
			return keyedRequest{method: "POST", path: "/v1/properties", token: o.adminToken,
				body: map[string]any{"name": "South", "type": "hostel"}, other: map[string]any{"name": "West", "type": "hostel"},
				refused: map[string]any{"name": "", "type": "hostel"}, refusedStatus: 422, fixed: map[string]any{"name": "East", "type": "resort"}}
		}},
		{"user create", func(a *api, o org) keyedRequest {
			u := func(email string) map[string]any {
				return map[string]any{"email": email, "password": "long enough", "displayName": "New", "role": "MANAGER"}
			}
			bad := u("bad." + o.managerEmail)
			bad["password"] = "short"
			return keyedRequest{method: "POST", path: "/v1/users", token: o.adminToken, body: u("new." + o.managerEmail),
				other: u("other." + o.managerEmail), refused: bad, refusedStatus: 422, fixed: u("fixed." + o.managerEmail)}
		}},
		{"assignment", func(a *api, o org) keyedRequest {
			var p struct{ ID string }
			a.must(201, "POST", "/v1/properties", o.adminToken, map[string]any{"name": "Second", "type": "hotel"}, &p)
			return keyedRequest{method: "PUT", path: "/v1/users/" + o.managerID + "/properties", token: o.adminToken,
				body: map[string]any{"propertyIds": []string{o.propertyID, p.ID}}, other: map[string]any{"propertyIds": []string{p.ID}},
				refused: map[string]any{"propertyIds": []string{"not-an-id"}}, refusedStatus: 422,
				fixed: map[string]any{"propertyIds": []string{o.propertyID}}}
		}},
		{"user change", func(a *api, o org) keyedRequest {
			return keyedRequest{method: "PATCH", path: "/v1/users/" + o.managerID, token: o.adminToken,
				body: map[string]any{"role": "ADMIN"}, other: map[string]any{"disabled": true},
				refused: map[string]any{"role": "OWNER"}, refusedStatus: 422, fixed: map[string]any{"role": "MANAGER"}}
		}},
		{"cash count", func(a *api, o org) keyedRequest {
			c := func(date string, cents int64) map[string]any {
				return map[string]any{"propertyId": o.propertyID, "date": date, "countedClosingCents": cents}
			}
			return keyedRequest{method: "POST", path: "/v1/reports/cash-counts", token: o.adminToken, body: c(day(-1), 100),
				other: c(day(-1), 200), refused: c(day(-1), -1), refusedStatus: 422, fixed: c(day(-2), 300)}
		}},
		{"daily approval", func(a *api, o org) keyedRequest {
			g := func(date string) map[string]any { return map[string]any{"managerUserId": o.managerID, "date": date} }
			return keyedRequest{method: "POST", path: "/v1/finance/daily-approvals", token: o.adminToken, body: g(day(0)),
				other: g(day(-1)), refused: g("not a date"), refusedStatus: 422, fixed: g(day(-2))}
		}},
		{"revenue create", func(a *api, o org) keyedRequest {
			return keyedRequest{method: "POST", path: "/v1/finance/revenues", token: o.adminToken, body: txnBody(o.propertyID, 100),
				other: txnBody(o.propertyID, 101), refused: txnBody(o.propertyID, 0), refusedStatus: 422, fixed: txnBody(o.propertyID, 102)}
		}},
		{"expense create", func(a *api, o org) keyedRequest {
			return keyedRequest{method: "POST", path: "/v1/finance/expenses", token: o.adminToken, body: expense(o.propertyID, 100),
				other: expense(o.propertyID, 101), refused: expense(o.propertyID, 0), refusedStatus: 422, fixed: expense(o.propertyID, 102)}
		}},
		{"review", func(a *api, o org) keyedRequest {
			_, id := pending(a, o)
			return keyedRequest{method: "POST", path: "/v1/finance/revenues/" + id + "/approve", token: o.adminToken,
				body: map[string]any{"notes": "checked"}, other: map[string]any{"notes": "checked twice"},
				refused: map[string]any{"notes": strings.Repeat("n", 1001)}, refusedStatus: 422}
		}},
		{"deletion request", func(a *api, o org) keyedRequest {
			mgr, id := pending(a, o)
			return keyedRequest{method: "DELETE", path: "/v1/finance/revenues/" + id, token: mgr}
		}},
		{"decision", func(a *api, o org) keyedRequest {
			mgr, id := pending(a, o)
			var req struct{ DeletionRequestID string }
			a.must(202, "DELETE", "/v1/finance/revenues/"+id, mgr, nil, &req)
			return keyedRequest{method: "POST", path: "/v1/finance/deletion-requests/" + req.DeletionRequestID + "/approve", token: o.adminToken}
		}},
		{"reconciliation job", func(a *api, o org) keyedRequest {
			return keyedRequest{method: "POST", path: "/v1/reports/reconciliation", token: o.adminToken,
				body: map[string]any{}, other: map[string]any{"propertyId": o.propertyID},
				refused: map[string]any{"propertyId": "nope"}, refusedStatus: 422}
		}},
	}
}

// TestIdempotencyKeyEveryRetryableWrite: every create and state change a
// client may retry honours Idempotency-Key at the HTTP edge: a bad key is
// 422 at header.Idempotency-Key and writes nothing; the same key and body
// replay the recorded answer (status, body, Location, ETag, consistency
// token, Idempotency-Replayed: true) and write nothing more; another body
// is 409; a refused request is not remembered; concurrent requests with
// one key write once.
func TestIdempotencyKeyEveryRetryableWrite(t *testing.T) {
	t.Parallel()
	a := setup(t)
	for i, fam := range keyedFamilies() {
		t.Run(fam.name, func(t *testing.T) {
			a := a.in(t)
			o := a.org("Keyed " + strings.ReplaceAll(fam.name, " ", "") + string(rune('a'+i)))
			req := fam.prep(a, o)

			before := a.state(o.adminToken)
			bad := a.keyed(req.method, req.path, req.token, "bad\x01key", req.body)
			if bad.Status != 422 {
				t.Fatalf("bad key: %d %s, want 422", bad.Status, bad.Body)
			}
			if p := bad.problem(t); len(p.Errors) != 1 || p.Errors[0].Location != "header.Idempotency-Key" {
				t.Fatalf("bad key: problem %+v, want one error at header.Idempotency-Key", p)
			}
			if !equalState(before, a.state(o.adminToken)) {
				t.Fatal("a bad key wrote")
			}

			first := a.keyed(req.method, req.path, req.token, "k-1", req.body)
			if first.Status >= 300 || first.Header.Get("Idempotency-Replayed") != "" {
				t.Fatalf("first: %d replayed=%q %s", first.Status, first.Header.Get("Idempotency-Replayed"), first.Body)
			}
			written := a.state(o.adminToken)
			if equalState(before, written) {
				t.Fatal("the first request wrote nothing: the test cannot tell a replay")
			}
			single := countDiff(before, written)
			for range 2 {
				again := a.keyed(req.method, req.path, req.token, "k-1", req.body)
				if again.Status != first.Status || !bytes.Equal(again.Body, first.Body) || again.Header.Get("Idempotency-Replayed") != "true" {
					t.Fatalf("replay: %d replayed=%q %s, want %d %s", again.Status, again.Header.Get("Idempotency-Replayed"), again.Body, first.Status, first.Body)
				}
				for _, h := range []string{"Location", "ETag", "X-Consistency-Token", "Content-Type"} {
					if again.Header.Get(h) != first.Header.Get(h) {
						t.Fatalf("replayed %s %q, original %q", h, again.Header.Get(h), first.Header.Get(h))
					}
				}
			}
			if !equalState(written, a.state(o.adminToken)) {
				t.Fatal("a replay wrote")
			}
			if req.other != nil {
				if r := a.keyed(req.method, req.path, req.token, "k-1", req.other); r.Status != 409 {
					t.Fatalf("another body: %d %s, want 409", r.Status, r.Body)
				}
				if !equalState(written, a.state(o.adminToken)) {
					t.Fatal("another body with a used key wrote")
				}
			}
			if req.refused != nil {
				if r := a.keyed(req.method, req.path, req.token, "k-2", req.refused); r.Status != req.refusedStatus {
					t.Fatalf("refused body: %d %s, want %d", r.Status, r.Body, req.refusedStatus)
				}
				if req.fixed != nil {
					r := a.keyed(req.method, req.path, req.token, "k-2", req.fixed)
					if r.Status >= 300 || r.Header.Get("Idempotency-Replayed") != "" {
						t.Fatalf("fixed body after a refusal: %d replayed=%q %s, want a fresh answer", r.Status, r.Header.Get("Idempotency-Replayed"), r.Body)
					}
				}
			}

			// Concurrent requests with one key, in an organization of
			// their own: one writes what a single request writes, and
			// answers as the original; the others wait for it and replay
			// its answer.
			o2 := a.org("Keyed Burst " + strings.ReplaceAll(fam.name, " ", "") + string(rune('a'+i)))
			req2 := fam.prep(a, o2)
			before2 := a.state(o2.adminToken)
			const n = 20
			answers := make([]answer, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for j := range n {
				wg.Go(func() {
					<-start
					answers[j] = a.keyedQuiet(req2.method, req2.path, req2.token, "burst", req2.body)
				})
			}
			close(start)
			wg.Wait()
			for j, r := range answers {
				if r.Status != answers[0].Status || (r.Status < 300 && !bytes.Equal(r.Body, answers[0].Body)) {
					t.Fatalf("concurrent answer %d: %d %s; answer 0: %d %s", j, r.Status, r.Body, answers[0].Status, answers[0].Body)
				}
			}
			if answers[0].Status >= 300 {
				t.Fatalf("concurrent answers: %d %s", answers[0].Status, answers[0].Body)
			}
			originals := 0
			for _, r := range answers {
				if r.Header.Get("Idempotency-Replayed") != "true" {
					originals++
				}
			}
			if originals != 1 {
				t.Fatalf("%d of %d concurrent answers are not replays, want exactly 1", originals, n)
			}
			if got := countDiff(before2, a.state(o2.adminToken)); !equalCounts(got, single) {
				t.Fatalf("%d concurrent requests with one key added %v, one request adds %v", n, got, single)
			}
			// Afterwards the key replays.
			after := a.keyed(req2.method, req2.path, req2.token, "burst", req2.body)
			if after.Header.Get("Idempotency-Replayed") != "true" || after.Status != answers[0].Status || !bytes.Equal(after.Body, answers[0].Body) {
				t.Fatalf("after the burst: %d replayed=%q %s, want the burst's answer", after.Status, after.Header.Get("Idempotency-Replayed"), after.Body)
			}
		})
	}
}

// keyedQuiet is keyed without t.Helper's failure path (safe in a
// goroutine: a marshalling failure cannot happen for these bodies).
func (a *api) keyedQuiet(method, path, token, key string, body any) answer {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	return a.send(method, path, token, raw, "Idempotency-Key", key)
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestIdempotencyKeyOnlyOnRetryableRoutes: the route table declares which
// operations honour the key (and so which the gateway may retry): the
// writes do, reads and logout do not.
func TestIdempotencyKeyOnlyOnRetryableRoutes(t *testing.T) {
	t.Parallel()
	a := setup(t)
	res := a.do("GET", "/openapi.json", "", nil)
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In string }
		}
	}
	if err := json.Unmarshal(res.Body, &doc); err != nil {
		t.Fatalf("openapi: %v", err)
	}
	takesKey := func(path, method string) bool {
		for _, p := range doc.Paths[path][method].Parameters {
			if p.Name == "Idempotency-Key" && p.In == "header" {
				return true
			}
		}
		return false
	}
	for _, op := range [][2]string{
		{"/v1/properties", "post"}, {"/v1/users", "post"}, {"/v1/users/{id}/properties", "put"}, {"/v1/users/{id}", "patch"},
		{"/v1/finance/revenues", "post"}, {"/v1/finance/expenses", "post"}, {"/v1/finance/revenues/{id}", "patch"},
		{"/v1/finance/revenues/{id}", "delete"}, {"/v1/finance/revenues/{id}/approve", "post"}, {"/v1/finance/expenses/{id}/reject", "post"},
		{"/v1/finance/daily-approvals", "post"}, {"/v1/finance/deletion-requests/{id}/approve", "post"},
	} {
		if !takesKey(op[0], op[1]) {
			t.Errorf("%s %s does not declare Idempotency-Key", op[1], op[0])
		}
	}
	for _, op := range [][2]string{{"/v1/properties", "get"}, {"/v1/finance/revenues", "get"}, {"/v1/auth/logout", "post"}, {"/v1/auth/signup", "post"}} {
		if takesKey(op[0], op[1]) {
			t.Errorf("%s %s declares Idempotency-Key", op[1], op[0])
		}
	}
}

// TestGroupedCreatesMarkEachKey: concurrent creates share a transaction
// (finance's group commit), and each one's Idempotency-Key is marked with
// its own write: after the burst every key replays its own answer and a
// replay writes nothing.
func TestGroupedCreatesMarkEachKey(t *testing.T) {
	t.Parallel()
	a := setup(t)
	orgs := []org{a.org("Grouped Keys One"), a.org("Grouped Keys Two")}
	const perOrg = 16
	type sent struct {
		o    org
		key  string
		body map[string]any
		ans  answer
	}
	var reqs []*sent
	for _, o := range orgs {
		for i := range perOrg {
			b := revenue(o.propertyID)
			b["amountCents"] = 100 + i
			reqs = append(reqs, &sent{o: o, key: fmt.Sprintf("grouped-%d", i), body: b})
		}
	}
	var wg sync.WaitGroup
	for _, r := range reqs {
		wg.Go(func() { r.ans = a.keyedQuiet("POST", "/v1/finance/revenues", r.o.adminToken, r.key, r.body) })
	}
	wg.Wait()
	before := map[string]orgState{}
	for _, o := range orgs {
		before[o.adminToken] = a.state(o.adminToken)
		if n := before[o.adminToken].Counts["transactions"]; n != perOrg {
			t.Fatalf("%d rows after %d creates", n, perOrg)
		}
	}
	// Each key was marked inside the transaction that wrote its row: the
	// mark records that transaction, which its row's event carries too.
	var unmarked int
	if err := a.pool.QueryRow(context.Background(), `
		SELECT count(*) FROM idempotency_keys k
		WHERE k.key LIKE 'grouped-%' AND (k.state <> 'done' OR k.tx_id IS NULL OR NOT EXISTS (
			SELECT 1 FROM events e WHERE e.org_id = k.org_id AND e.tx_id = k.tx_id AND e.entity_id::text = convert_from(k.response, 'UTF8')::jsonb->>'id'))`).Scan(&unmarked); err != nil {
		t.Fatal(err)
	}
	if unmarked != 0 {
		t.Errorf("%d of %d keys not marked in the transaction of their own write", unmarked, len(reqs))
	}
	for _, r := range reqs {
		if r.ans.Status != 201 {
			t.Fatalf("create %s: %d %s", r.key, r.ans.Status, r.ans.Body)
		}
		again := a.keyed("POST", "/v1/finance/revenues", r.o.adminToken, r.key, r.body)
		if again.Status != 201 || again.Header.Get("Idempotency-Replayed") != "true" || !bytes.Equal(again.Body, r.ans.Body) {
			t.Fatalf("replay of %s: %d replayed=%q %s; want its own answer %s", r.key, again.Status,
				again.Header.Get("Idempotency-Replayed"), again.Body, r.ans.Body)
		}
	}
	for _, o := range orgs {
		if !equalState(before[o.adminToken], a.state(o.adminToken)) {
			t.Errorf("the replays wrote")
		}
	}
}

// TestIdempotencyKeyFinanceCreates: what TestIdempotencyKeyEveryRetryableWrite
// leaves out, for the revenue and expense creates: the same JSON spelled
// differently is the same request; each differing field is a conflict with
// its detail; no refusal is remembered (422, 404, the daily approval gate's
// 409); a key belongs to its user, its route and its organization; and it
// is remembered for 24 hours, not longer.
func TestIdempotencyKeyFinanceCreates(t *testing.T) {
	t.Parallel()
	a := setup(t)
	a.clock.Set(baseTime)
	o := a.org("Sea Side Stays")
	admin := o.adminToken

	for _, kind := range []string{"revenue", "expense"} {
		base := rows(kind)
		t.Run(kind, func(t *testing.T) {
			t.Run("the same key and body replay the original answer", func(t *testing.T) {
				a := a.in(t)
				body := cash(kind, o.propertyID, 1111)
				var orig row
				first := a.must(201, "POST", base, admin, body, &orig, "Idempotency-Key", kind+"-replay")
				if h := first.Header.Get("Idempotency-Replayed"); h != "" {
					t.Fatalf("the original answer says Idempotency-Replayed: %q", h)
				}
				if tok := first.Header.Get("X-Consistency-Token"); tok == "" {
					t.Fatalf("%s: no X-Consistency-Token header", first)
				}
				// The same JSON spelled differently is the same request.
				respelled := `{ "occurredAt": "` + body.OccurredAt + `", "paymentMode": "cash", "amountCents": 1111,
					"propertyId": "` + o.propertyID + `", ` + map[string]string{"revenue": `"source": "room"`, "expense": `"category": "supplies"`}[kind] + ` }`
				var got row
				r := a.must(201, "POST", base, admin, respelled, &got, "Idempotency-Key", kind+"-replay")
				if got != orig || r.Header.Get("Idempotency-Replayed") != "true" {
					t.Fatalf("respelled body: %s, want the original %+v", r, orig)
				}
				if n := a.count(admin, kind, 1111); n != 1 {
					t.Fatalf("%d rows of the retried create, want 1", n)
				}
				if evs := a.entityEvents(admin, orig.ID); len(evs) != 1 {
					t.Fatalf("%d events of the retried create, want 1", len(evs))
				}
			})

			t.Run("the same key with another body is a conflict", func(t *testing.T) {
				a := a.in(t)
				a.must(201, "POST", base, admin, cash(kind, o.propertyID, 2222), nil, "Idempotency-Key", kind+"-conflict")
				for _, other := range []txn{
					cash(kind, o.propertyID, 2223),
					httpapitest.WithKind(kind, txn{PropertyID: o.propertyID, AmountCents: 2222, PaymentMode: "bank", OccurredAt: morning}),
					httpapitest.WithKind(kind, txn{PropertyID: o.propertyID, AmountCents: 2222, PaymentMode: "cash", OccurredAt: morning, Description: "again"}),
				} {
					p := mustProblem(t, a.do("POST", base, admin, other, "Idempotency-Key", kind+"-conflict"), 409)
					if p.Detail != "this Idempotency-Key was used with a different request body" {
						t.Fatalf("detail = %q", p.Detail)
					}
				}
				if n := a.count(admin, kind, 2222) + a.count(admin, kind, 2223); n != 1 {
					t.Fatalf("%d rows, want the first only", n)
				}
			})

			t.Run("a refused request is not remembered", func(t *testing.T) {
				a := a.in(t)
				key := kind + "-fix-and-retry"
				mustProblem(t, a.do("POST", base, admin, cash(kind, o.propertyID, 0), "Idempotency-Key", key), 422)
				ghost := cash(kind, "01900000-0000-7000-8000-000000000000", 3333)
				mustProblem(t, a.do("POST", base, admin, ghost, "Idempotency-Key", key), 404)
				tooOld := httpapitest.WithKind(kind, txn{PropertyID: o.propertyID, AmountCents: 3333, PaymentMode: "cash", OccurredAt: "1999-01-01T00:00:00Z"})
				mustProblem(t, a.do("POST", base, admin, tooOld, "Idempotency-Key", key), 422)
				fixed := a.must(201, "POST", base, admin, cash(kind, o.propertyID, 3333), nil, "Idempotency-Key", key)
				if fixed.Header.Get("Idempotency-Replayed") != "" {
					t.Fatalf("the fixed request was answered as a replay: %s", fixed)
				}
			})

			t.Run("a request the daily approval gate refused is not remembered", func(t *testing.T) {
				a := setup(t) // moves its own clock
				a.clock.Set(baseTime)
				o := a.org("Gated Inn")
				a.create(a.login(o.managerEmail, managerPassword), kind, cash(kind, o.propertyID, 10))
				a.clock.Advance(24 * time.Hour)
				admin, mgr := a.login(o.adminEmail, adminPassword), a.login(o.managerEmail, managerPassword)
				next := httpapitest.WithKind(kind, txn{PropertyID: o.propertyID, AmountCents: 4444, PaymentMode: "cash", OccurredAt: "2026-06-16T04:30:00Z"})
				mustProblem(t, a.do("POST", base, mgr, next, "Idempotency-Key", kind+"-gated"), 409)
				a.must(201, "POST", "/v1/finance/daily-approvals", admin, map[string]any{"managerUserId": o.managerID, "date": "2026-06-16"}, nil)
				r := a.must(201, "POST", base, mgr, next, nil, "Idempotency-Key", kind+"-gated")
				if r.Header.Get("Idempotency-Replayed") != "" {
					t.Fatalf("answered as a replay: %s", r)
				}
			})
		})
	}

	t.Run("a key belongs to its user and its route", func(t *testing.T) {
		a := a.in(t)
		mgr := a.login(o.managerEmail, managerPassword)
		var ra, rb, rc row
		a.must(201, "POST", rows("revenue"), admin, cash("revenue", o.propertyID, 5555), &ra, "Idempotency-Key", "shared")
		a.must(201, "POST", rows("revenue"), mgr, cash("revenue", o.propertyID, 5555), &rb, "Idempotency-Key", "shared")
		a.must(201, "POST", rows("expense"), admin, cash("expense", o.propertyID, 5555), &rc, "Idempotency-Key", "shared")
		if ra.ID == rb.ID || ra.ID == rc.ID || rb.Status != "pending" || ra.Status != "approved" {
			t.Fatalf("one key shared across users or routes: %+v %+v %+v", ra, rb, rc)
		}
		// Another organization's user with the same key writes its own row.
		other := a.org("Other Org")
		var rd row
		a.must(201, "POST", rows("revenue"), other.adminToken, cash("revenue", other.propertyID, 5555), &rd, "Idempotency-Key", "shared")
		if rd.ID == ra.ID || rd.PropertyID != other.propertyID {
			t.Fatalf("another organization got %+v", rd)
		}
	})

	t.Run("a key is remembered for 24 hours", func(t *testing.T) {
		a := setup(t) // moves its own clock
		a.clock.Set(baseTime)
		o := a.org("Day Long Keys")
		body := cash("revenue", o.propertyID, 6666)
		var first, replay, later row
		a.must(201, "POST", rows("revenue"), o.adminToken, body, &first, "Idempotency-Key", "a-day")
		a.clock.Advance(23 * time.Hour)
		r := a.must(201, "POST", rows("revenue"), a.login(o.adminEmail, adminPassword), body, &replay, "Idempotency-Key", "a-day")
		if replay.ID != first.ID || r.Header.Get("Idempotency-Replayed") != "true" {
			t.Fatalf("after 23 h: %s", r)
		}
		a.clock.Advance(time.Hour + time.Second)
		r = a.must(201, "POST", rows("revenue"), a.login(o.adminEmail, adminPassword), body, &later, "Idempotency-Key", "a-day")
		if later.ID == first.ID || r.Header.Get("Idempotency-Replayed") != "" {
			t.Fatalf("after 24 h the key still replays: %s", r)
		}
	})
}
