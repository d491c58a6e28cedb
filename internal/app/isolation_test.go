package app_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/httpapi/httpapitest"
)

// who is a caller of the isolation test.
type who int

const (
	nobody     who = iota // no token
	adminA                // ADMIN of organization A
	keeperA               // MANAGER of A assigned to the hidden property
	outsiderA             // MANAGER of A not assigned to the hidden property
	strangerA             // MANAGER of A assigned to no property
	adminB                // ADMIN of organization B
	managerB              // MANAGER of B
	numCallers            // count
)

func (w who) String() string {
	return [...]string{"nobody", "A's admin", "A's manager of the property", "A's manager of another property",
		"A's manager of no property", "B's admin", "B's manager"}[w]
}

// world is two organizations. A has an open property (Sea View, assigned
// to outsiderA), a hidden one (Hidden Lodge, assigned to keeperA) and a
// manager of no property (strangerA); B has its own property and manager.
type world struct {
	env      *apptest.Env
	tokens   [numCallers]string
	orgA     apptest.Org
	open     string // A's property assigned to outsiderA
	hidden   string // A's property assigned to keeperA
	keeperID string
	outID    string
	orgB     apptest.Org
	propB    string
	mgrBID   string
	// aIDs collects every id of A created during the test.
	aIDs []string
	n    int
}

// secret is a description only rows of A's hidden property carry.
const secret = "hidden-note-of-org-A"

func (w *world) unique(prefix string) string {
	w.n++
	return fmt.Sprintf("%s%d", prefix, w.n)
}

// row creates a row in A's hidden property, as A's admin (approved) or
// its manager (pending).
func (w *world) row(t *testing.T, kind string, pending bool) row {
	t.Helper()
	e := w.env
	b := txn(w.hidden, 7777)
	b.Description = secret
	token := w.tokens[adminA]
	if pending {
		token = w.tokens[keeperA]
	}
	r := create(e, token, kind, b)
	w.aIDs = append(w.aIDs, r.ID)
	return r
}

// deletionRequest creates a row in the hidden property and keeperA's
// request to delete it.
func (w *world) deletionRequest(t *testing.T, kind string) string {
	t.Helper()
	r := w.row(t, kind, false)
	var out struct {
		DeletionRequestID string `json:"deletionRequestId"`
	}
	w.env.Must(202, "DELETE", "/v1/finance/"+plural(kind)+"/"+r.ID, w.tokens[keeperA], nil).JSON(t, &out)
	w.aIDs = append(w.aIDs, out.DeletionRequestID)
	return out.DeletionRequestID
}

// leaks returns what caller must never read: everything of organization A
// for outsiders of A, the hidden property's data for outsiderA.
func (w *world) leaks(caller who) []string {
	switch caller {
	case nobody, adminB, managerB:
		return append([]string{w.orgA.ID, w.orgA.AdminID, w.orgA.AdminEmail, w.open, w.hidden, w.keeperID, w.outID,
			"Sea View", "Hidden Lodge", "keeper@seaside.test", "manager@seaside.test", secret}, w.aIDs...)
	case outsiderA:
		return append([]string{w.hidden, w.keeperID, "Hidden Lodge", secret}, w.aIDs...)
	case strangerA:
		return append([]string{w.open, w.hidden, w.keeperID, w.outID, "Sea View", "Hidden Lodge", secret}, w.aIDs...)
	}
	return nil
}

// probe is one request sent by each of as, each expecting want. A probe
// with check set is an assertion run at its place instead.
type probe struct {
	as    []who
	path  string
	body  any
	want  int
	check func(t *testing.T)
}

// isolationCase lists the probes of one route.
type isolationCase struct {
	probes func(t *testing.T, w *world) []probe
}

var (
	outsiders = []who{adminB, managerB, outsiderA, strangerA}
	managers  = []who{managerB, outsiderA, strangerA, keeperA}
)

// unchanged checks that a row of A is as it was.
func unchanged(w *world, kind string, r row) probe {
	return probe{check: func(t *testing.T) {
		e := *w.env
		e.T = t
		if got := get(&e, w.tokens[adminA], kind, r.ID); got != r {
			t.Fatalf("refused requests changed %s %s: %+v, was %+v", kind, r.ID, got, r)
		}
	}}
}

func financeCases(kind string) map[string]isolationCase {
	base := "/v1/finance/" + plural(kind)
	return map[string]isolationCase{
		"POST " + base: {probes: func(t *testing.T, w *world) []probe {
			b := httpapitest.WithKind(kind, txn(w.hidden, 7777))
			before := len(list(w.env, w.tokens[adminA], kind, "propertyId="+w.hidden))
			return []probe{
				{as: outsiders, path: base, body: b, want: 404},
				{check: func(t *testing.T) {
					e := *w.env
					e.T = t
					if after := len(list(&e, w.tokens[adminA], kind, "propertyId="+w.hidden)); after != before {
						t.Fatalf("refused creates wrote %d rows", after-before)
					}
				}},
				{as: []who{keeperA}, path: base, body: b, want: 201},
			}
		}},
		"GET " + base: {probes: func(t *testing.T, w *world) []probe {
			w.row(t, kind, false)
			w.row(t, kind, true)
			return []probe{
				{as: outsiders, path: base + "?propertyId=" + w.hidden, want: 404},
				{as: outsiders, path: base, want: 200},
				{as: outsiders, path: base + "?status=pending&startDate=2000-01-01&limit=500", want: 200},
				{as: []who{keeperA, adminA}, path: base + "?propertyId=" + w.hidden, want: 200},
			}
		}},
		"GET " + base + "/{id}": {probes: func(t *testing.T, w *world) []probe {
			r := w.row(t, kind, false)
			return []probe{
				{as: outsiders, path: base + "/" + r.ID, want: 404},
				{as: []who{keeperA, adminA}, path: base + "/" + r.ID, want: 200},
			}
		}},
		"GET " + base + "/{id}/history": {probes: func(t *testing.T, w *world) []probe {
			r := w.row(t, kind, false)
			return []probe{
				{as: outsiders, path: base + "/" + r.ID + "/history", want: 404},
				{as: []who{keeperA, adminA}, path: base + "/" + r.ID + "/history", want: 200},
			}
		}},
		"PATCH " + base + "/{id}": {probes: func(t *testing.T, w *world) []probe {
			r := w.row(t, kind, false)
			mine := create(w.env, w.tokens[outsiderA], kind, txn(w.open, 100))
			theirs := create(w.env, w.tokens[adminB], kind, txn(w.propB, 100))
			move := map[string]any{"propertyId": w.hidden}
			return []probe{
				{as: outsiders, path: base + "/" + r.ID, body: map[string]any{"amountCents": 4242}, want: 404},
				// Moving one's own row into a property out of reach.
				{as: []who{outsiderA}, path: base + "/" + mine.ID, body: move, want: 404},
				{as: []who{adminB}, path: base + "/" + theirs.ID, body: move, want: 404},
				unchanged(w, kind, r),
				unchanged(w, kind, mine),
				{as: []who{keeperA}, path: base + "/" + r.ID, body: map[string]any{"amountCents": 4242}, want: 200},
			}
		}},
		"DELETE " + base + "/{id}": {probes: func(t *testing.T, w *world) []probe {
			r := w.row(t, kind, false)
			return []probe{
				{as: outsiders, path: base + "/" + r.ID, want: 404},
				unchanged(w, kind, r),
				{as: []who{keeperA}, path: base + "/" + r.ID, want: 202},
				{as: []who{adminA}, path: base + "/" + r.ID, want: 204},
			}
		}},
		"POST " + base + "/{id}/approve": {probes: func(t *testing.T, w *world) []probe {
			r := w.row(t, kind, true)
			return []probe{
				{as: []who{adminB}, path: base + "/" + r.ID + "/approve", want: 404},
				{as: managers, path: base + "/" + r.ID + "/approve", want: 403},
				unchanged(w, kind, r),
				{as: []who{adminA}, path: base + "/" + r.ID + "/approve", want: 200},
			}
		}},
		"POST " + base + "/{id}/reject": {probes: func(t *testing.T, w *world) []probe {
			r := w.row(t, kind, true)
			return []probe{
				{as: []who{adminB}, path: base + "/" + r.ID + "/reject", want: 404},
				{as: managers, path: base + "/" + r.ID + "/reject", want: 403},
				unchanged(w, kind, r),
				{as: []who{adminA}, path: base + "/" + r.ID + "/reject", want: 200},
			}
		}},
	}
}

func isolationCases() map[string]isolationCase {
	cases := map[string]isolationCase{
		"POST /v1/auth/signup": {probes: func(t *testing.T, w *world) []probe {
			return []probe{{as: []who{nobody}, path: "/v1/auth/signup", want: 201, body: map[string]any{
				"orgName": "Third Org", "email": w.unique("third") + "@example.test", "password": "long enough", "displayName": "Third"}}}
		}},
		"POST /v1/auth/login": {probes: func(t *testing.T, w *world) []probe {
			return []probe{{as: []who{nobody}, path: "/v1/auth/login", want: 200,
				body: map[string]any{"email": "keeper@seaside.test", "password": "manager pass"}}}
		}},
		"POST /v1/users": {probes: func(t *testing.T, w *world) []probe {
			body := map[string]any{"email": w.unique("clerk") + "@seaside.test", "password": "clerk pass", "displayName": "Clerk",
				"role": "MANAGER", "propertyIds": []string{w.hidden}}
			return []probe{
				{as: managers, path: "/v1/users", body: body, want: 403},
				{as: []who{adminB}, path: "/v1/users", body: body, want: 404},
				{as: []who{adminA}, path: "/v1/users", body: body, want: 201},
			}
		}},
		"PUT /v1/users/{id}/properties": {probes: func(t *testing.T, w *world) []probe {
			path := "/v1/users/" + w.outID + "/properties"
			open := map[string]any{"propertyIds": []string{w.open}}
			return []probe{
				{as: managers, path: path, body: open, want: 403},
				{as: []who{adminB}, path: path, body: map[string]any{"propertyIds": []string{}}, want: 404},
				{as: []who{adminB}, path: "/v1/users/" + w.mgrBID + "/properties", body: map[string]any{"propertyIds": []string{w.hidden}}, want: 404},
				{as: []who{adminA}, path: path, body: map[string]any{"propertyIds": []string{w.propB}}, want: 404},
				{check: func(t *testing.T) {
					e := *w.env
					e.T = t
					var props struct{ Items []struct{ ID string } }
					e.Must(200, "GET", "/v1/properties", w.tokens[outsiderA], nil).JSON(t, &props)
					if len(props.Items) != 1 || props.Items[0].ID != w.open {
						t.Fatalf("refused assignments changed outsiderA's properties: %+v", props.Items)
					}
				}},
				{as: []who{adminA}, path: path, body: open, want: 200},
			}
		}},
		"PATCH /v1/users/{id}": {probes: func(t *testing.T, w *world) []probe {
			path := "/v1/users/" + w.outID
			same := map[string]any{"role": "MANAGER", "disabled": false}
			return []probe{
				{as: managers, path: path, body: map[string]any{"disabled": true}, want: 403},
				{as: []who{adminB}, path: path, body: map[string]any{"disabled": true}, want: 404},
				{as: []who{adminA}, path: path, body: same, want: 200},
			}
		}},
		"POST /v1/auth/logout": {probes: func(t *testing.T, w *world) []probe {
			return []probe{
				{as: []who{nobody}, path: "/v1/auth/logout", want: 401},
				{check: func(t *testing.T) {
					e := *w.env
					e.T = t
					tok := login(&e, "keeper@seaside.test", "manager pass")
					e.Must(204, "POST", "/v1/auth/logout", tok, nil)
					e.Must(401, "GET", "/v1/properties", tok, nil)
					e.Must(200, "GET", "/v1/properties", w.tokens[keeperA], nil)
				}},
			}
		}},
		"POST /v1/properties": {probes: func(t *testing.T, w *world) []probe {
			body := map[string]any{"name": "Annex", "type": "hostel"}
			return []probe{
				{as: managers, path: "/v1/properties", body: body, want: 403},
				{as: []who{adminB, adminA}, path: "/v1/properties", body: body, want: 201},
			}
		}},
		"GET /v1/properties": {probes: func(t *testing.T, w *world) []probe {
			return []probe{
				{as: outsiders, path: "/v1/properties", want: 200},
				{as: []who{keeperA, adminA}, path: "/v1/properties", want: 200},
			}
		}},
		"POST /v1/finance/deletion-requests/{id}/approve": {probes: func(t *testing.T, w *world) []probe {
			id := w.deletionRequest(t, "revenue")
			return []probe{
				{as: []who{adminB}, path: "/v1/finance/deletion-requests/" + id + "/approve", want: 404},
				{as: managers, path: "/v1/finance/deletion-requests/" + id + "/approve", want: 403},
				{as: []who{adminA}, path: "/v1/finance/deletion-requests/" + id + "/approve", want: 200},
			}
		}},
		"POST /v1/finance/deletion-requests/{id}/reject": {probes: func(t *testing.T, w *world) []probe {
			id := w.deletionRequest(t, "expense")
			return []probe{
				{as: []who{adminB}, path: "/v1/finance/deletion-requests/" + id + "/reject", want: 404},
				{as: managers, path: "/v1/finance/deletion-requests/" + id + "/reject", want: 403},
				{as: []who{adminA}, path: "/v1/finance/deletion-requests/" + id + "/reject", want: 200},
			}
		}},
		"POST /v1/finance/daily-approvals": {probes: func(t *testing.T, w *world) []probe {
			body := map[string]any{"managerUserId": w.keeperID, "date": today}
			return []probe{
				{as: []who{adminB}, path: "/v1/finance/daily-approvals", body: body, want: 404},
				{as: managers, path: "/v1/finance/daily-approvals", body: body, want: 403},
				{as: []who{adminA}, path: "/v1/finance/daily-approvals", body: body, want: 201},
			}
		}},
		"GET /v1/finance/events": {probes: func(t *testing.T, w *world) []probe {
			r := w.row(t, "revenue", true)
			return []probe{
				{as: outsiders, path: "/v1/finance/events?propertyId=" + w.hidden, want: 404},
				{as: outsiders, path: "/v1/finance/events?entityId=" + r.ID, want: 200},
				{as: outsiders, path: "/v1/finance/events?entityType=revenue&limit=1000", want: 200},
				{as: outsiders, path: "/v1/finance/events", want: 200},
				{as: []who{keeperA, adminA}, path: "/v1/finance/events?propertyId=" + w.hidden, want: 200},
			}
		}},

		// Reports.
		"GET /v1/reports/daily-report": {probes: func(t *testing.T, w *world) []probe {
			w.row(t, "revenue", false)
			path := "/v1/reports/daily-report?propertyId=" + w.hidden + "&date=" + today
			return []probe{
				{as: outsiders, path: path, want: 404},
				{as: []who{keeperA, adminA}, path: path, want: 200},
			}
		}},
		"GET /v1/reports/daily-reports": {probes: func(t *testing.T, w *world) []probe {
			w.row(t, "revenue", false)
			path := "/v1/reports/daily-reports?propertyId=" + w.hidden + "&startDate=2026-06-01&endDate=" + today
			return []probe{
				{as: outsiders, path: path, want: 404},
				{as: []who{keeperA, adminA}, path: path, want: 200},
			}
		}},
		"GET /v1/reports/monthly-report": {probes: func(t *testing.T, w *world) []probe {
			w.row(t, "revenue", false)
			path := "/v1/reports/monthly-report?year=2026&month=6"
			return []probe{
				{as: outsiders, path: path + "&propertyId=" + w.hidden, want: 404},
				{as: outsiders, path: path, want: 200},
				{as: []who{keeperA, adminA}, path: path + "&propertyId=" + w.hidden, want: 200},
			}
		}},
		"GET /v1/reports/yearly-summary": {probes: func(t *testing.T, w *world) []probe {
			w.row(t, "revenue", false)
			path := "/v1/reports/yearly-summary?year=2026"
			return []probe{
				{as: outsiders, path: path + "&propertyId=" + w.hidden, want: 404},
				{as: outsiders, path: path, want: 200},
				{as: []who{keeperA, adminA}, path: path + "&propertyId=" + w.hidden, want: 200},
			}
		}},
		"POST /v1/reports/reconciliation": {probes: func(t *testing.T, w *world) []probe {
			w.row(t, "revenue", false)
			of := map[string]any{"propertyId": w.hidden}
			return []probe{
				{as: managers, path: "/v1/reports/reconciliation", body: of, want: 403},
				{as: []who{adminB}, path: "/v1/reports/reconciliation", body: of, want: 404},
				{as: []who{adminB}, path: "/v1/reports/reconciliation", body: map[string]any{}, want: 202},
				{as: []who{adminA}, path: "/v1/reports/reconciliation", body: of, want: 202},
			}
		}},
		"GET /v1/reports/reconciliation/{id}": {probes: func(t *testing.T, w *world) []probe {
			w.row(t, "revenue", false)
			var job struct{ ID string }
			w.env.Must(202, "POST", "/v1/reports/reconciliation", w.tokens[adminA], map[string]any{"propertyId": w.hidden}).JSON(t, &job)
			w.aIDs = append(w.aIDs, job.ID)
			path := "/v1/reports/reconciliation/" + job.ID
			return []probe{
				{as: managers, path: path, want: 403},
				{as: []who{adminB}, path: path, want: 404},
				{as: []who{adminA}, path: path, want: 200},
			}
		}},
		"POST /v1/reports/cash-counts": {probes: func(t *testing.T, w *world) []probe {
			body := map[string]any{"propertyId": w.hidden, "date": today, "countedClosingCents": 1234}
			return []probe{
				{as: outsiders, path: "/v1/reports/cash-counts", body: body, want: 404},
				{as: []who{keeperA}, path: "/v1/reports/cash-counts", body: body, want: 201},
			}
		}},
	}
	maps.Copy(cases, financeCases("revenue"))
	maps.Copy(cases, financeCases("expense"))
	// Operator routes take no user's token, whatever the organization.
	cases["GET /v1/admin/index-advice"] = isolationCase{probes: func(t *testing.T, w *world) []probe {
		return []probe{{as: []who{nobody, adminA, keeperA, outsiderA, strangerA, adminB, managerB}, path: "/v1/admin/index-advice", want: 401}}
	}}
	return cases
}

// TestTenantIsolation runs, for every route the API serves under /v1,
// requests against organization A's data by B, by A's managers and by A's
// admin: outsiders get 404 and nothing of A, managers 403 where the role
// may never act, the owner succeeds. A route the OpenAPI document lists
// without a case here fails the test.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	// Every operator route is tried with wrong tokens from one address on
	// a frozen clock: the guessing limit (tested in internal/operator and
	// TestAdminGuessing) would answer 429 instead of the 401 checked here.
	f := setup(t, func(c *config.Config) { c.RateLimits.OperatorPerAddr.Count = -1 })
	e := f.env
	w := &world{env: e, orgA: f.org, open: f.prop, outID: f.mgrID}
	w.hidden = e.Property(f.org.AdminToken, "Hidden Lodge", "")
	var keeper string
	w.keeperID, keeper = e.Manager(f.org.AdminToken, "keeper@seaside.test", w.hidden)
	w.orgB = e.Signup("Other Org")
	w.propB = e.Property(w.orgB.AdminToken, "Far Away", "")
	var mgrB string
	w.mgrBID, mgrB = e.Manager(w.orgB.AdminToken, "manager@other.test", w.propB)
	_, stranger := e.Manager(f.org.AdminToken, "stranger@seaside.test")
	w.tokens = [numCallers]string{nobody: "", adminA: f.org.AdminToken, keeperA: keeper, outsiderA: f.mgr, strangerA: stranger,
		adminB: w.orgB.AdminToken, managerB: mgrB}

	cases := isolationCases()
	served := map[string]bool{}
	for _, op := range openAPIOperations(e) {
		if _, ok := cases[op.String()]; !ok && op.Admin {
			cases[op.String()] = operatorOnly(op)
		}
		served[op.String()] = true
		if _, ok := cases[op.String()]; !ok {
			t.Errorf("%s has no tenant isolation case: add one to isolationCases", op)
		}
	}
	for _, route := range slices.Sorted(maps.Keys(cases)) {
		c := cases[route]
		if !served[route] {
			t.Errorf("isolation case for %s, which the API does not serve", route)
			continue
		}
		t.Run(route, func(t *testing.T) {
			ew := *w
			env := *e
			env.T = t
			ew.env = &env
			method, _, _ := strings.Cut(route, " ")
			for _, p := range c.probes(t, &ew) {
				if p.check != nil {
					p.check(t)
					continue
				}
				for _, caller := range p.as {
					r := env.Do(method, p.path, ew.tokens[caller], p.body)
					if r.Status != p.want {
						t.Fatalf("%s %s as %s: got %s, want %d", method, p.path, caller, r, p.want)
					}
					if r.Status >= 400 {
						mustProblem(t, r, p.want)
					}
					sent, _ := json.Marshal(p.body)
					for _, leak := range ew.leaks(caller) {
						if strings.Contains(p.path, leak) || strings.Contains(string(sent), leak) {
							continue // what the caller sent may come back
						}
						if strings.Contains(string(r.Body), leak) {
							t.Fatalf("%s %s as %s: the answer carries %q of organization A: %s", method, p.path, caller, leak, r.Body)
						}
					}
				}
			}
			w.aIDs = ew.aIDs
			w.n = ew.n
		})
	}
}

// operatorOnly is the case of an operator route: no user's token opens it,
// whatever their role or organization.
func operatorOnly(op httpapitest.Operation) isolationCase {
	return isolationCase{probes: func(t *testing.T, w *world) []probe {
		path := strings.ReplaceAll(op.Path, "{id}", "01900000-0000-7000-8000-000000000000")
		var body any
		if op.Method != "GET" {
			body = map[string]any{}
		}
		return []probe{{as: []who{nobody, adminA, keeperA, outsiderA, strangerA, adminB, managerB}, path: path, body: body, want: 401}}
	}}
}
