// Package apptest starts a whole HMP (the same app.Start that `hmp serve`
// runs) on a free loopback port against a fresh database of a test
// cluster, and gives tests a small HTTP client speaking its API.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"hmp/internal/app"
	"hmp/internal/config"
	"hmp/internal/httpapi/httpapitest"
	"hmp/internal/logtest"
	"hmp/internal/postgres/pgtest"
)

// Env is a running HMP for one test.
type Env struct {
	T       testing.TB
	App     *app.App
	BaseURL string
	Client  *http.Client
	// Logs holds everything the app logged (debug level and up).
	Logs *logtest.Buffer
}

// Clock is a settable clock for tests; the zero value reads time.Now.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
	fixed  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fixed.IsZero() {
		return c.fixed
	}
	return time.Now().Add(c.offset)
}

// Set freezes the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fixed = t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fixed.IsZero() {
		c.fixed = c.fixed.Add(d)
		return
	}
	c.offset += d
}

// WithClock makes the app read time from c.
func WithClock(c *Clock) func(*config.Config) { return func(cfg *config.Config) { cfg.Clock = c.Now } }

// SystemTestDeadline is how long a test that starts an HMP may run
// (from its first Start) before Deadline ends the run. The slowest system
// test takes about a minute on a loaded 2-core machine.
const SystemTestDeadline = 5 * time.Minute

// Deadline ends the whole test binary with every goroutine's stack if t
// is still running d from now, so that a hung system test fails in
// minutes naming the goroutine that hangs, instead of at go test's
// -timeout with nothing but the package name. Benchmarks choose their own
// length and are not limited.
func Deadline(t testing.TB, d time.Duration) {
	if _, ok := t.(*testing.T); !ok {
		return
	}
	name := t.Name()
	timer := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		for {
			n := runtime.Stack(buf, true)
			if n < len(buf) {
				buf = buf[:n]
				break
			}
			buf = make([]byte, 2*len(buf))
		}
		panic(fmt.Sprintf("%s is still running after its %s deadline; every goroutine:\n%s", name, d, buf))
	})
	t.Cleanup(func() { timer.Stop() })
}

// Start runs HMP for the test and stops it at cleanup. opts adjust the
// configuration before start. The test gets SystemTestDeadline.
func Start(t testing.TB, cluster *pgtest.Cluster, opts ...func(*config.Config)) *Env {
	t.Helper()
	return StartLogging(t, cluster, slog.LevelDebug, opts...)
}

// StartLogging is Start logging at level: a benchmark of the request path
// logs as `hmp serve` does by default (info), without the debug access log.
func StartLogging(t testing.TB, cluster *pgtest.Cluster, level slog.Leveler, opts ...func(*config.Config)) *Env {
	t.Helper()
	Deadline(t, SystemTestDeadline)
	cfg := config.Config{
		HTTPAddr:    "127.0.0.1:0",
		DataDir:     t.TempDir(),
		DatabaseURL: cluster.NewDatabase(t),
		BcryptCost:  4,
		TokenSecret: strings.Repeat("s", 32),
	}
	// Drift is not repaired behind a test's back (tests inject drift and
	// look for it); a test of the detectors turns them on.
	cfg.Reconcile.SampleRate, cfg.Reconcile.SweepEvery = -1, -1
	for _, o := range opts {
		o(&cfg)
	}
	logs := &logtest.Buffer{}
	var w io.Writer = logs
	if os.Getenv("HMP_TEST_LOG") != "" {
		w = io.MultiWriter(logs, os.Stderr)
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	a, err := app.Start(context.Background(), cfg, logger)
	if err != nil {
		t.Fatalf("start hmp: %v", err)
	}
	t.Cleanup(func() {
		a.Close()
		if t.Failed() {
			t.Logf("hmp logs:\n%s", logs.String())
		}
	})
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &Env{T: t, App: a, BaseURL: "http://" + a.Addr, Client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, Logs: logs}
}

// Response is a received answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %d response %q: %v", r.Status, r.Body, err)
	}
}

// Map decodes the body as a JSON object.
func (r *Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

func (r *Response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// Do sends a request. body may be nil, a string or []byte (sent as is) or
// any value (sent as JSON). headers are name, value pairs.
func (e *Env) Do(method, path, token string, body any, headers ...string) *Response {
	e.T.Helper()
	r, err := e.Send(method, path, token, body, headers...)
	if err != nil {
		e.T.Fatal(err)
	}
	return r
}

// Send is Do for goroutines: it reports a failure to send or receive as
// an error instead of failing the test from the wrong goroutine.
func (e *Env) Send(method, path, token string, body any, headers ...string) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.BaseURL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Must sends a request and fails the test unless the status is want.
func (e *Env) Must(want int, method, path, token string, body any, headers ...string) *Response {
	e.T.Helper()
	r := e.Do(method, path, token, body, headers...)
	if r.Status != want {
		e.T.Fatalf("%s %s: got %s, want %d", method, path, r, want)
	}
	return r
}

// Org is a signed-up organization with its first ADMIN.
type Org struct {
	ID, AdminID, AdminToken, AdminEmail string
}

// Signup creates an organization whose admin email is derived from name.
func (e *Env) Signup(name string) Org {
	e.T.Helper()
	email := strings.ToLower(strings.ReplaceAll(name, " ", "")) + "@example.test"
	r := e.Must(201, "POST", "/v1/auth/signup", "", map[string]any{
		"orgName": name, "email": email, "password": "correct horse", "displayName": name + " Admin",
	})
	var out struct{ OrgID, UserID, AccessToken string }
	r.JSON(e.T, &out)
	return Org{ID: out.OrgID, AdminID: out.UserID, AdminToken: out.AccessToken, AdminEmail: email}
}

// Property creates a property and returns its id. tz may be "" (default).
func (e *Env) Property(token, name, tz string) string {
	e.T.Helper()
	body := map[string]any{"name": name, "type": "hotel"}
	if tz != "" {
		body["timezone"] = tz
	}
	var out struct{ ID string }
	e.Must(201, "POST", "/v1/properties", token, body).JSON(e.T, &out)
	return out.ID
}

// Manager creates a MANAGER assigned to propertyIDs and returns their id
// and token.
func (e *Env) Manager(adminToken, email string, propertyIDs ...string) (id, token string) {
	e.T.Helper()
	if propertyIDs == nil {
		propertyIDs = []string{}
	}
	var u struct{ ID string }
	e.Must(201, "POST", "/v1/users", adminToken, map[string]any{
		"email": email, "password": "manager pass", "displayName": "Manager " + email, "role": "MANAGER", "propertyIds": propertyIDs,
	}).JSON(e.T, &u)
	var l struct{ AccessToken string }
	e.Must(200, "POST", "/v1/auth/login", "", map[string]any{"email": email, "password": "manager pass"}).JSON(e.T, &l)
	return u.ID, l.AccessToken
}

// Txn is the body of a revenue or expense create.
type Txn = httpapitest.Txn

// Row is a revenue or expense as the API returns it.
type Row struct {
	ID           string `json:"id"`
	PropertyID   string `json:"propertyId"`
	Source       string `json:"source"`
	Category     string `json:"category"`
	AmountCents  int64  `json:"amountCents"`
	Currency     string `json:"currency"`
	PaymentMode  string `json:"paymentMode"`
	OccurredAt   string `json:"occurredAt"`
	BusinessDate string `json:"businessDate"`
	Status       string `json:"status"`
	Version      int    `json:"version"`
}

// Revenue creates a revenue (expects 201) and returns it.
func (e *Env) Revenue(token string, t Txn) Row {
	e.T.Helper()
	if t.Source == "" {
		t.Source = "room"
	}
	var r Row
	e.Must(201, "POST", "/v1/finance/revenues", token, t).JSON(e.T, &r)
	return r
}

// Expense creates an expense (expects 201) and returns it.
func (e *Env) Expense(token string, t Txn) Row {
	e.T.Helper()
	if t.Category == "" {
		t.Category = "supplies"
	}
	var r Row
	e.Must(201, "POST", "/v1/finance/expenses", token, t).JSON(e.T, &r)
	return r
}
