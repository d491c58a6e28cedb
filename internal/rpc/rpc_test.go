package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"hmp/internal/auth"
	"hmp/internal/domain"
	"hmp/internal/natstest"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/rpc"
	"hmp/internal/tenancy"
)

// cluster is this package's throwaway PostgreSQL, with tenancy's tables
// for the tenancy endpoints.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	pgtest.Main(m, &cluster, tenancy.Migrations())
}

// fixture is an embedded NATS server with one connection for the
// callee's micro service and one for the caller, and their shared
// envelope key.
type fixture struct {
	url    string
	server *rpc.Server
	caller *nats.Conn
	key    *rpc.Key
}

func setup(t *testing.T) *fixture {
	t.Helper()
	url := natstest.StartServer(t)
	f := &fixture{url: url, caller: connect(t, url), key: newKey(t, "s")}
	f.server = newServer(t, connect(t, url))
	return f
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newKey(t *testing.T, secret string) *rpc.Key {
	t.Helper()
	k, err := rpc.NewKey([]byte(strings.Repeat(secret, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sessionKey is where the test's Vouch puts the vouched session.
type sessionKey struct{}

func vouch(ctx context.Context, s *auth.Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func newServer(t *testing.T, nc *nats.Conn) *rpc.Server {
	t.Helper()
	s, err := rpc.NewServer(nc, rpc.Finance, "0.0.0-test", 4, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// forward sends r through the bus as the gateway does and writes the
// answer into a recorder.
func (f *fixture) forward(t *testing.T, r *http.Request, sess *auth.Session, body string, deadline time.Time) (*httptest.ResponseRecorder, error) {
	t.Helper()
	return f.send(t, rpc.NewCall(f.key, r, sess, []byte(body), deadline))
}

func (f *fixture) send(t *testing.T, data []byte) (*httptest.ResponseRecorder, error) {
	t.Helper()
	reply, err := f.caller.Request(rpc.Subject(rpc.Finance, rpc.HTTPEndpoint), data, 10*time.Second)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	rec := httptest.NewRecorder()
	return rec, rpc.WriteHTTP(rec, reply)
}

// TestForwardHTTP: a forwarded request reaches the handler as the client
// sent it (method, path, query, headers, body, remote address) under the
// caller's deadline, without the per-connection headers; the answer comes
// back with its status, headers and body.
func TestForwardHTTP(t *testing.T) {
	t.Parallel()
	f := setup(t)
	type seen struct {
		method, path, query, uri, remote, body string
		header                                 http.Header
		length                                 int64
		deadline                               time.Time
	}
	got := make(chan seen, 1)
	err := f.server.HandleHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d, _ := r.Context().Deadline()
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.RequestURI, r.RemoteAddr, string(b), r.Header.Clone(), r.ContentLength, d}
		w.Header().Set("ETag", `"3"`)
		w.Header().Set("Connection", "close")
		w.Header().Add("Vary", "A")
		w.Header().Add("Vary", "B")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}), f.key, vouch)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("PATCH", "/v1/finance/revenues/42?x=1&y=two", nil)
	r.RemoteAddr = "192.0.2.7:4711"
	r.Header.Set("Authorization", "Bearer abc")
	r.Header.Set("If-Match", `"2"`)
	r.Header.Set("Connection", "keep-alive")
	r.Header.Set("Hmp-Status", "999") // a client may not speak for the callee
	deadline := time.Now().Add(time.Minute).Truncate(time.Nanosecond)
	rec, err := f.forward(t, r, nil, `{"amountCents":5}`, deadline)
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.method != "PATCH" || s.path != "/v1/finance/revenues/42" || s.query != "x=1&y=two" || s.uri != "/v1/finance/revenues/42?x=1&y=two" ||
		s.remote != "192.0.2.7:4711" || s.body != `{"amountCents":5}` || s.length != int64(len(s.body)) {
		t.Fatalf("the handler saw %+v", s)
	}
	if s.header.Get("Authorization") != "Bearer abc" || s.header.Get("If-Match") != `"2"` || s.header.Get("Connection") != "" || s.header.Get("Hmp-Status") != "" {
		t.Fatalf("the handler saw headers %v", s.header)
	}
	if !s.deadline.Equal(deadline) {
		t.Fatalf("the handler ran under deadline %s, want the caller's %s", s.deadline, deadline)
	}
	if rec.Code != http.StatusCreated || rec.Body.String() != `{"ok":true}` || rec.Header().Get("ETag") != `"3"` ||
		!slices.Equal(rec.Header().Values("Vary"), []string{"A", "B"}) || rec.Header().Get("Connection") != "" {
		t.Fatalf("answer = %d %v %q", rec.Code, rec.Header(), rec.Body)
	}

	t.Run("a handler that writes only a body answers 200", func(t *testing.T) {
		f := setup(t)
		if err := f.server.HandleHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "plain")
		}), f.key, vouch); err != nil {
			t.Fatal(err)
		}
		rec, err := f.forward(t, httptest.NewRequest("GET", "/healthz", nil), nil, "", time.Now().Add(time.Minute))
		if err != nil || rec.Code != 200 || rec.Body.String() != "plain" {
			t.Fatalf("answer %d %q (%v)", rec.Code, rec.Body, err)
		}
	})

	t.Run("the vouched session reaches the handler, the bearer token does not", func(t *testing.T) {
		f := setup(t)
		type seen struct {
			sess *auth.Session
			auth string
			id   string
		}
		got := make(chan seen, 1)
		if err := f.server.HandleHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := r.Context().Value(sessionKey{}).(*auth.Session)
			got <- seen{s, r.Header.Get("Authorization"), r.Header.Get("X-Request-Id")}
		}), f.key, vouch); err != nil {
			t.Fatal(err)
		}
		sess := auth.Session{Actor: domain.Actor{OrgID: domain.NewID(time.Now()), UserID: domain.NewID(time.Now()), Role: domain.Manager},
			ID: "token-7", ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Nanosecond)}
		r := httptest.NewRequest("GET", "/v1/reports/daily-report", nil)
		r.Header.Set("Authorization", "Bearer secret-token")
		r.Header.Set("X-Request-Id", "req-9")
		if _, err := f.forward(t, r, &sess, "", time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		s := <-got
		if s.sess == nil || s.sess.Actor != sess.Actor || s.sess.ID != sess.ID || !s.sess.ExpiresAt.Equal(sess.ExpiresAt) {
			t.Fatalf("the handler was vouched %+v, want %+v", s.sess, sess)
		}
		if s.auth != "" || s.id != "req-9" {
			t.Fatalf("the handler saw Authorization %q, request id %q", s.auth, s.id)
		}
		if r.Header.Get("Authorization") == "" {
			t.Fatal("NewCall removed the caller's own Authorization header")
		}
	})
}

// TestEnvelopeRefused: a service refuses, without running the handler, an
// envelope signed with another key, one changed after it was signed (its
// session or its body), one whose deadline has passed or that has none,
// and garbage.
func TestEnvelopeRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var ran atomic.Int64
	if err := f.server.HandleHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ran.Add(1) }), f.key, vouch); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/v1/finance/revenues", nil)
	admin := &auth.Session{Actor: domain.Actor{OrgID: domain.NewID(time.Now()), UserID: domain.NewID(time.Now()), Role: domain.Manager}}
	soon := time.Now().Add(time.Minute)
	good := rpc.NewCall(f.key, r, admin, []byte(`{"amountCents":100}`), soon)
	tampered := func(change func([]byte) []byte) []byte { return change(slices.Clone(good)) }
	for _, c := range []struct {
		name string
		data []byte
		code string
	}{
		{"signed with another secret", rpc.NewCall(newKey(t, "x"), r, admin, nil, soon), "403"},
		{"a role raised after signing", tampered(func(b []byte) []byte {
			i := bytes.Index(b, []byte("MANAGER")) // after its length, 7
			return slices.Concat(b[:i-1], []byte{5}, []byte("ADMIN"), b[i+7:])
		}), "403"},
		{"a body changed after signing", tampered(func(b []byte) []byte { return bytes.Replace(b, []byte("100"), []byte("900"), 1) }), "403"},
		{"a signature cut short", good[:10], "403"},
		{"a deadline passed", rpc.NewCall(f.key, r, admin, nil, time.Now().Add(-time.Millisecond)), "504"},
		{"no deadline", rpc.NewCall(f.key, r, admin, nil, time.Time{}), "400"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reply, err := f.caller.Request(rpc.Subject(rpc.Finance, rpc.HTTPEndpoint), c.data, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := rpc.ServiceError(reply); !strings.HasPrefix(got, c.code+" ") {
				t.Fatalf("service error = %q, want %s", got, c.code)
			}
			rec := httptest.NewRecorder()
			if err := rpc.WriteHTTP(rec, reply); err == nil || rec.Body.Len() != 0 {
				t.Fatalf("WriteHTTP = %v, wrote %q; want the service error, nothing written", err, rec.Body)
			}
		})
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("the handler ran %d times for refused envelopes", n)
	}
	// The same envelope unchanged is served: the refusals above are the
	// changes', not the fixture's.
	if rec, err := f.send(t, good); err != nil || rec.Code != 200 || ran.Load() != 1 {
		t.Fatalf("the good envelope: %v, %d, handler ran %d times", err, rec.Code, ran.Load())
	}
}

// TestForwardErrors: a signed message that is not a forwarded request is
// a micro error, which the caller's WriteHTTP reports instead of writing;
// a stopped server answers no more.
func TestForwardErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := f.server.HandleHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), f.key, vouch); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(time.Minute)
	for name, data := range map[string][]byte{
		"no method":       f.key.Seal(&rpc.Envelope{Deadline: soon, Path: "/x"}),
		"a relative path": f.key.Seal(&rpc.Envelope{Deadline: soon, Method: "GET", Path: "x"}),
	} {
		t.Run(name, func(t *testing.T) {
			reply, err := f.caller.Request(rpc.Subject(rpc.Finance, rpc.HTTPEndpoint), data, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := rpc.ServiceError(reply); !strings.HasPrefix(got, "400 ") {
				t.Fatalf("service error = %q, want a 400", got)
			}
			rec := httptest.NewRecorder()
			if err := rpc.WriteHTTP(rec, reply); err == nil || !strings.Contains(err.Error(), "400") {
				t.Fatalf("WriteHTTP = %v, want the service error", err)
			}
			if rec.Body.Len() != 0 {
				t.Fatalf("WriteHTTP wrote %q", rec.Body)
			}
		})
	}

	t.Run("a stopped server answers no more", func(t *testing.T) {
		f.server.Stop()
		f.server.Stop() // safe twice
		// Stop drains the endpoints' subscriptions: the interest goes away
		// once the drain is through, soon after Stop returns.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := f.caller.Request(rpc.Subject(rpc.Finance, rpc.HTTPEndpoint), rpc.NewCall(f.key, httptest.NewRequest("GET", "/x", nil), nil, nil, time.Now().Add(time.Minute)), 5*time.Second)
			if errors.Is(err, nats.ErrNoResponders) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("request to a stopped server: %v, want no responders", err)
			}
			if err := f.caller.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// tenancyFixture is a tenancy service on a fresh database, answering over
// NATS, and its client.
type tenancyFixture struct {
	*fixture
	ten    *tenancy.Service
	client *rpc.Tenancy
	admin  domain.Actor
	mgr    domain.Actor
	prop   tenancy.Property
}

func setupTenancy(t *testing.T) *tenancyFixture {
	t.Helper()
	ctx := t.Context()
	f := &tenancyFixture{fixture: setup(t)}
	var err error
	if f.ten, err = tenancy.New(cluster.NewPool(t), time.Now, tenancy.Config{BcryptCost: bcrypt.MinCost}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.ten.Close)
	if err := f.server.HandleTenancy(f.ten); err != nil {
		t.Fatal(err)
	}
	if f.client, err = rpc.NewTenancy(f.caller, rpc.TenancyConfig{}); err != nil {
		t.Fatal(err)
	}
	org, u, err := f.ten.Signup(ctx, tenancy.SignupInput{OrgName: "Wire Inn", Email: "admin@wire.test", Password: "correct horse", DisplayName: "Admin"})
	if err != nil {
		t.Fatal(err)
	}
	f.admin = domain.Actor{OrgID: org.ID, UserID: u.ID, Role: domain.Admin}
	if f.prop, err = f.ten.CreateProperty(ctx, f.admin, tenancy.PropertyInput{Name: "Lagoon", Type: "resort", Timezone: "Pacific/Kiritimati", Currency: "AUD"}); err != nil {
		t.Fatal(err)
	}
	m, err := f.ten.CreateUser(ctx, f.admin, tenancy.CreateUserInput{Email: "mgr@wire.test", Password: "manager pass", DisplayName: "Mgr", Role: domain.Manager})
	if err != nil {
		t.Fatal(err)
	}
	f.mgr = domain.Actor{OrgID: org.ID, UserID: m.ID, Role: domain.Manager}
	return f
}

// TestTenancyOverNATS: the other roles' tenancy questions get the answers
// the tenancy service gives, with its domain errors as themselves.
func TestTenancyOverNATS(t *testing.T) {
	t.Parallel()
	f := setupTenancy(t)
	ctx := t.Context()

	t.Run("user state", func(t *testing.T) {
		st, err := f.client.UserState(ctx, f.admin.OrgID, f.mgr.UserID)
		if err != nil || st.Role != domain.Manager || !st.TokensNotBefore.IsZero() {
			t.Fatalf("user state = %+v, %v", st, err)
		}
		if _, err := f.ten.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Disabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		_, err = f.client.UserState(ctx, f.admin.OrgID, f.mgr.UserID)
		if !errors.Is(err, domain.ErrUnauthenticated) || !strings.Contains(err.Error(), "disabled") {
			t.Fatalf("a disabled user's state: %v, want unauthenticated", err)
		}
		if _, err := f.ten.UpdateUser(ctx, f.admin, f.mgr.UserID, tenancy.UserPatch{Disabled: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		want, _ := f.ten.UserState(ctx, f.admin.OrgID, f.mgr.UserID)
		st, err = f.client.UserState(ctx, f.admin.OrgID, f.mgr.UserID)
		if err != nil || st.Role != domain.Manager || st.TokensNotBefore.IsZero() || !st.TokensNotBefore.Equal(want.TokensNotBefore) {
			t.Fatalf("re-enabled state = %+v, %v; want tokens not before %s", st, err, want.TokensNotBefore)
		}
	})

	t.Run("revocation", func(t *testing.T) {
		if err := f.client.Revoke(ctx, f.admin.OrgID, f.admin.UserID, "tok-1", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]bool{"tok-1": true, "tok-2": false} {
			if got, err := f.client.Revoked(ctx, f.admin.OrgID, id); err != nil || got != want {
				t.Fatalf("revoked(%s) = %v, %v; want %v", id, got, err, want)
			}
		}
		var v *domain.ValidationError
		if err := f.client.Revoke(ctx, f.admin.OrgID, f.admin.UserID, "a\x00b", time.Now().Add(time.Hour)); !errors.As(err, &v) || v.Fields[0].Field != "token" {
			t.Fatalf("revoking an unusable id: %v, want a validation error naming token", err)
		}
	})

	t.Run("properties", func(t *testing.T) {
		p, err := f.client.Property(ctx, f.admin, f.prop.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != f.prop.ID || p.OrgID != f.admin.OrgID || p.Name != "Lagoon" || p.Type != "resort" || p.Currency != "AUD" ||
			p.Timezone != "Pacific/Kiritimati" || p.Location.String() != "Pacific/Kiritimati" || !p.CreatedAt.Equal(f.prop.CreatedAt) {
			t.Fatalf("property over the wire = %+v, want %+v", p, f.prop)
		}
		// The manager is not assigned: not found, as tenancy answers.
		_, err = f.client.Property(ctx, f.mgr, f.prop.ID)
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("an unassigned property: %v, want not found", err)
		}
		ps, err := f.client.Properties(ctx, f.admin)
		if err != nil || len(ps) != 1 || ps[0].ID != f.prop.ID || ps[0].Location.String() != "Pacific/Kiritimati" {
			t.Fatalf("properties = %+v, %v", ps, err)
		}
		if ps, err := f.client.Properties(ctx, f.mgr); err != nil || len(ps) != 0 {
			t.Fatalf("the manager's properties = %+v, %v", ps, err)
		}
	})
}

// TestTenancyUnavailable: when no instance answers, or the backend fails
// with what is not a domain error, the caller gets ErrUnavailable (a 503
// it may retry), not a wrong answer.
func TestTenancyUnavailable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	t.Run("nobody answers", func(t *testing.T) {
		f := setup(t)
		c, err := rpc.NewTenancy(f.caller, rpc.TenancyConfig{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.UserState(ctx, domain.ID{}, domain.ID{})
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("no responder: %v, want unavailable", err)
		}
	})

	t.Run("the backend fails", func(t *testing.T) {
		f := setup(t)
		pool := cluster.NewPool(t)
		ten, err := tenancy.New(pool, time.Now, tenancy.Config{BcryptCost: bcrypt.MinCost})
		if err != nil {
			t.Fatal(err)
		}
		defer ten.Close()
		if err := f.server.HandleTenancy(ten); err != nil {
			t.Fatal(err)
		}
		pool.Close() // every query fails from now on
		c, err := rpc.NewTenancy(f.caller, rpc.TenancyConfig{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Revoked(context.Background(), domain.ID{}, "tok")
		if !errors.Is(err, domain.ErrUnavailable) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("failing backend: %v, want unavailable (503)", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
