package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"hmp/internal/auth"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/httpapi"
	"hmp/internal/idempotency"
	"hmp/internal/rpc"
	"hmp/internal/tenancy"
)

// losesFirstAnswer serves h, except that the first request marked
// X-Lose-Answer is run to its end (committed, its answer recorded) and its
// answer then lost: nothing reaches the gateway before the call's
// deadline. creates counts the marked calls.
type losesFirstAnswer struct {
	h       http.Handler
	creates atomic.Int64
}

func (l *losesFirstAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Lose-Answer") == "" {
		l.h.ServeHTTP(w, r)
		return
	}
	if l.creates.Add(1) > 1 {
		l.h.ServeHTTP(w, r)
		return
	}
	l.h.ServeHTTP(httptest.NewRecorder(), r)
	<-r.Context().Done()
	// Returning at the deadline would send an empty 200 that can still
	// beat the gateway's own timeout: the lost answer must arrive, if at
	// all, after the gateway gave up on it.
	time.Sleep(300 * time.Millisecond)
}

// retryDeployment is a gateway (the HTTP edge with Forward) in front of a
// finance service over NATS whose first answer to a request marked
// X-Lose-Answer is lost.
type retryDeployment struct {
	t       *testing.T
	gateway http.Handler
	backend *losesFirstAnswer
	ten     *tenancy.Service
	org     string
	token   string
	prop    string
}

func retrySetup(t *testing.T) *retryDeployment {
	t.Helper()
	pool := cluster.NewPool(t)
	ten, err := tenancy.New(pool, time.Now, tenancy.Config{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ten.Close)
	tokens := func() *auth.Tokens {
		tk, err := auth.New([]byte(strings.Repeat("s", 32)), time.Hour, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.UseUsers(ten, 0); err != nil {
			t.Fatal(err)
		}
		return tk
	}
	nc, connect := setup(t)
	backend := &losesFirstAnswer{h: httpapi.New(httpapi.Deps{Tenancy: ten, Tokens: tokens(), Finance: finance.New(pool, ten, time.Now),
		Events: eventstore.NewStore(pool), Idempotency: idempotency.NewStore(pool, time.Now)})}
	serve(t, connect, rpc.Finance, backend)
	g := New(nc, newKey(t), Config{CallTimeout: 500 * time.Millisecond, Retries: 2, RetryDelay: 10 * time.Millisecond, BreakerFailures: 100}, discard, nil)
	d := &retryDeployment{t: t, gateway: httpapi.New(httpapi.Deps{Tokens: tokens(), Forward: g}), backend: backend, ten: ten}
	var signup struct{ OrgID, AccessToken string }
	d.json(d.send("POST", "/v1/auth/signup", "", map[string]any{"orgName": "Retry Books", "email": "retry@example.test",
		"password": "correct horse", "displayName": "Admin"}), 201, &signup)
	d.org, d.token = signup.OrgID, signup.AccessToken
	var prop struct{ ID string }
	d.json(d.send("POST", "/v1/properties", d.token, map[string]any{"name": "Harbour", "type": "hotel"}), 201, &prop)
	d.prop = prop.ID
	return d
}

func (d *retryDeployment) send(method, path, token string, body any, headers ...string) *httptest.ResponseRecorder {
	d.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		d.t.Fatal(err)
	}
	r := httptest.NewRequest(method, path, bytes.NewReader(raw))
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	d.gateway.ServeHTTP(w, r)
	return w
}

func (d *retryDeployment) json(w *httptest.ResponseRecorder, want int, out any) {
	d.t.Helper()
	if w.Code != want {
		d.t.Fatalf("answer %d %s, want %d", w.Code, w.Body, want)
	}
	if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
		d.t.Fatal(err)
	}
}

// revenues lists the organization's revenues through the gateway.
func (d *retryDeployment) revenues() []string {
	d.t.Helper()
	var list struct{ Items []struct{ ID string } }
	d.json(d.send("GET", "/v1/finance/revenues?propertyId="+d.prop, d.token, nil), 200, &list)
	ids := make([]string, len(list.Items))
	for i, it := range list.Items {
		ids[i] = it.ID
	}
	return ids
}

func revenueBody(prop string) map[string]any {
	return map[string]any{"propertyId": prop, "source": "room", "amountCents": 4200, "paymentMode": "cash",
		"occurredAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}
}

// TestRetriedCreateWritesOnce: a create with an Idempotency-Key whose
// first answer is lost after the service committed it is retried by the
// gateway (the route declares itself idempotent); the retry gets the
// recorded answer, and one row was written. (A property create used to be
// retried for its header and written twice.)
func TestRetriedCreateWritesOnce(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/v1/properties", "/v1/finance/revenues"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			d := retrySetup(t)
			list := d.properties
			body := map[string]any{"name": "Lost Answer", "type": "resort"}
			if path == "/v1/finance/revenues" {
				list, body = d.revenues, revenueBody(d.prop)
			}
			before := list()
			w := d.send("POST", path, d.token, body, "Idempotency-Key", "lost-answer", "X-Lose-Answer", "1")
			var row struct{ ID string }
			d.json(w, 201, &row)
			if w.Header().Get("Idempotency-Replayed") != "true" {
				t.Errorf("the retry's answer is not the recorded one: %v", w.Header())
			}
			if n := d.backend.creates.Load(); n != 2 {
				t.Errorf("the service got %d calls, want 2 (the lost one and the retry)", n)
			}
			if after := list(); len(after) != len(before)+1 {
				t.Fatalf("%d rows before, %d after a retried create (%v), want one more", len(before), len(after), after)
			}
		})
	}
}

// properties lists the organization's properties through the gateway.
func (d *retryDeployment) properties() []string {
	d.t.Helper()
	var list struct{ Items []struct{ ID string } }
	d.json(d.send("GET", "/v1/properties", d.token, nil), 200, &list)
	ids := make([]string, len(list.Items))
	for i, it := range list.Items {
		ids[i] = it.ID
	}
	return ids
}

// TestCreateWithoutKeyIsNotRetried: the same lost answer for a create sent
// without a key: the gateway does not try it again (it would write twice)
// and answers 503, outcome unknown; the one call wrote one row.
func TestCreateWithoutKeyIsNotRetried(t *testing.T) {
	t.Parallel()
	d := retrySetup(t)
	w := d.send("POST", "/v1/finance/revenues", d.token, revenueBody(d.prop), "X-Lose-Answer", "1")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "outcome is unknown") {
		t.Fatalf("answer %d %s, want 503 with the outcome unknown", w.Code, w.Body)
	}
	if n := d.backend.creates.Load(); n != 1 {
		t.Errorf("the service got %d calls, want 1", n)
	}
	if ids := d.revenues(); len(ids) != 1 {
		t.Fatalf("revenues %v, want the one the lost call wrote", ids)
	}
}
