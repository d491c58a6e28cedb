package dashboard_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hmp/internal/clocktest"
	"hmp/internal/logtest"
	"hmp/internal/natstest"
	"hmp/internal/operator"
	"hmp/internal/ratelimit"
	"hmp/internal/settings"
	"hmp/internal/telemetry/dashboard"
)

const token = "operator-token-for-tests-0123456789"

// fixture is two instances' dashboards sharing one bus's settings bucket.
type fixture struct {
	a, b  *dashboard.Dashboard
	reg   *prometheus.Registry
	logs  *logtest.Buffer
	clock *clocktest.Clock
}

func setup(t *testing.T) *fixture {
	t.Helper()
	url := natstest.StartServer(t)
	f := &fixture{reg: prometheus.NewRegistry(), logs: &logtest.Buffer{}, clock: clocktest.New(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))}
	logger := slog.New(slog.NewTextHandler(f.logs, nil))
	proxies, err := operator.ParseProxies([]string{"10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	instance := func(reg prometheus.Registerer) *dashboard.Dashboard {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		kv, err := js.CreateOrUpdateKeyValue(context.Background(), settings.BucketConfig())
		if err != nil {
			t.Fatal(err)
		}
		lim, err := ratelimit.New(ratelimit.Config{Limits: map[string]ratelimit.Limit{ratelimit.OperatorAddr: {Count: 3, Period: time.Hour}}}, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lim.Close)
		d := dashboard.New(dashboard.Config{
			Guard:    operator.New(operator.Config{Token: token, Limiter: lim, Proxies: proxies, Registerer: reg, Logger: logger}),
			Sessions: settings.NewSessions(kv, settings.SessionsConfig{TTL: time.Hour, Clock: f.clock.Now}),
			Gatherer: prometheus.NewRegistry(), Interval: time.Millisecond, Logger: logger,
		})
		t.Cleanup(d.Close)
		return d
	}
	f.a, f.b = instance(f.reg), instance(nil)
	return f
}

// do sends one request from addr to d.
func do(d http.Handler, method, path, addr string, form url.Values, cookie *http.Cookie, header ...string) *http.Response {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, path, body)
	r.RemoteAddr = addr + ":5555"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	d.ServeHTTP(w, r)
	return w.Result()
}

func login(t *testing.T, d http.Handler, addr string, header ...string) *http.Cookie {
	t.Helper()
	resp := do(d, "POST", "/dashboard/login", addr, url.Values{"token": {token}}, nil, header...)
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || cs[0].Value == "" {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, cs)
	}
	return cs[0]
}

func status(t *testing.T, resp *http.Response, want int, what string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: %d, want %d", what, resp.StatusCode, want)
	}
}

// TestDashboardGuessing: wrong operator tokens, in the login form or the
// Authorization header, are limited per client address: past the budget
// every attempt from the address answers 429 with Retry-After, the right
// token included, while another address logs in; each failure is counted
// and logged without the guess.
func TestDashboardGuessing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const guess = "guess-of-the-operator-token-42"
	status(t, do(f.a, "POST", "/dashboard/login", "198.51.100.7", url.Values{"token": {guess}}, nil), 401, "1st wrong login")
	status(t, do(f.a, "GET", "/dashboard", "198.51.100.7", nil, nil, "Authorization", "Bearer "+guess), 401, "2nd wrong, in the header")
	status(t, do(f.a, "GET", "/dashboard/events", "198.51.100.7", nil, nil, "Authorization", "Bearer "+guess), 401, "3rd wrong, on the events")
	for _, tc := range []struct {
		what string
		resp *http.Response
	}{
		{"4th wrong login", do(f.a, "POST", "/dashboard/login", "198.51.100.7", url.Values{"token": {guess}}, nil)},
		{"the right token, spent address", do(f.a, "POST", "/dashboard/login", "198.51.100.7", url.Values{"token": {token}}, nil)},
		{"the right header, spent address", do(f.a, "GET", "/dashboard", "198.51.100.7", nil, nil, "Authorization", "Bearer "+token)},
	} {
		status(t, tc.resp, 429, tc.what)
		if ra := tc.resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("%s: Retry-After %q", tc.what, ra)
		}
		if len(tc.resp.Cookies()) != 0 {
			t.Fatalf("%s: a cookie was set", tc.what)
		}
	}
	// Behind the trusted proxy, the client's address counts, not the proxy's.
	login(t, f.a, "10.0.0.1", "X-Forwarded-For", "203.0.113.50")
	login(t, f.a, "203.0.113.9")

	if n := testutil.ToFloat64(f.guardFailures("wrong")); n != 3 {
		t.Errorf("wrong attempts counted %v, want 3", n)
	}
	if n := testutil.ToFloat64(f.guardFailures("limited")); n != 3 {
		t.Errorf("limited attempts counted %v, want 3", n)
	}
	logs := f.logs.String()
	if strings.Count(logs, "operator_auth_failed") != 3 || !strings.Contains(logs, "addr=198.51.100.7") || !strings.Contains(logs, "operator_auth_limited") {
		t.Errorf("failures not logged with the address:\n%s", logs)
	}
	if strings.Contains(logs, guess) || strings.Contains(logs, token) {
		t.Errorf("the log holds a token:\n%s", logs)
	}
}

func (f *fixture) guardFailures(reason string) prometheus.Collector {
	return gathered{f.reg, reason}
}

// gathered reads hmp_operator_auth_failures_total{surface="dashboard",reason} from reg.
type gathered struct {
	reg    *prometheus.Registry
	reason string
}

func (g gathered) Describe(chan<- *prometheus.Desc) {}
func (g gathered) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "hmp_operator_auth_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["surface"] == "dashboard" && labels["reason"] == g.reason {
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "", nil, nil), prometheus.CounterValue, m.GetCounter().GetValue())
			}
		}
	}
}

// TestDashboardSessions: a login opens a session on the server, valid on
// every instance; logging out on one ends it on all at once, open event
// streams included; the server enforces the expiry; each login has its
// own id, not derived from the token; the cookie is Secure over TLS or
// when the trusted proxy says so, and only then.
func TestDashboardSessions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const addr = "203.0.113.9"

	t.Run("logout ends it on every instance", func(t *testing.T) {
		c := login(t, f.a, addr)
		status(t, do(f.b, "GET", "/dashboard", addr, nil, c), 200, "the other instance with the cookie")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		streamed := make(chan int, 1)
		w := &startedRecorder{ResponseRecorder: httptest.NewRecorder(), started: make(chan struct{})}
		go func() {
			r := httptest.NewRequest("GET", "/dashboard/events", nil).WithContext(ctx)
			r.RemoteAddr = addr + ":5555"
			r.AddCookie(c)
			f.a.ServeHTTP(w, r)
			streamed <- w.Code
		}()
		// The logout must find the stream open: wait for its first bytes.
		select {
		case <-w.started:
		case code := <-streamed:
			t.Fatalf("the stream ended before the logout: %d", code)
		case <-ctx.Done():
			t.Fatal("the event stream did not start")
		}
		resp := do(f.b, "POST", "/dashboard/logout", addr, nil, c)
		status(t, resp, 303, "logout")
		if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
			t.Fatalf("logout did not delete the cookie: %v", cs)
		}
		status(t, do(f.a, "GET", "/dashboard", addr, nil, c), 401, "the first instance after the logout")
		status(t, do(f.a, "GET", "/dashboard/events", addr, nil, c), 401, "new events after the logout")
		select {
		case code := <-streamed:
			if code != 200 {
				t.Fatalf("the stream answered %d", code)
			}
		case <-ctx.Done():
			t.Fatal("the event stream outlived the logout")
		}
	})
	t.Run("the server enforces the expiry", func(t *testing.T) {
		c := login(t, f.a, addr)
		if c.MaxAge < 3500 || c.MaxAge > 3600 {
			t.Fatalf("cookie max-age %d, want the session's hour", c.MaxAge)
		}
		f.clock.Advance(time.Hour)
		status(t, do(f.b, "GET", "/dashboard", addr, nil, c), 401, "an expired session the browser still sends")
	})
	t.Run("each login its own id", func(t *testing.T) {
		c1, c2 := login(t, f.a, addr), login(t, f.a, addr)
		if c1.Value == c2.Value || strings.Contains(c1.Value, token) {
			t.Fatalf("cookies %q and %q", c1.Value, c2.Value)
		}
		forged := &http.Cookie{Name: dashboard.CookieName, Value: strings.Repeat("0", 64)}
		status(t, do(f.a, "GET", "/dashboard", addr, nil, forged), 401, "a forged cookie")
	})
	t.Run("secure over TLS", func(t *testing.T) {
		if c := login(t, f.a, addr); c.Secure {
			t.Fatal("plain HTTP: Secure cookie")
		}
		if c := login(t, f.a, addr, "X-Forwarded-Proto", "https"); c.Secure {
			t.Fatal("X-Forwarded-Proto from an untrusted peer believed")
		}
		if c := login(t, f.a, "10.0.0.1", "X-Forwarded-Proto", "https", "X-Forwarded-For", addr); !c.Secure {
			t.Fatal("the trusted proxy says https: cookie not Secure")
		}
		r := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.TLS = &tls.ConnectionState{}
		w := httptest.NewRecorder()
		f.a.ServeHTTP(w, r)
		if cs := w.Result().Cookies(); len(cs) != 1 || !cs[0].Secure {
			t.Fatalf("over TLS: cookies %v", cs)
		}
	})
}

// startedRecorder records a response and says when it started (its
// header was written), so a test can act on an open stream.
type startedRecorder struct {
	*httptest.ResponseRecorder
	once    sync.Once
	started chan struct{}
}

func (r *startedRecorder) WriteHeader(code int) {
	r.ResponseRecorder.WriteHeader(code)
	r.once.Do(func() { close(r.started) })
}

func (r *startedRecorder) Write(b []byte) (int, error) {
	r.once.Do(func() { close(r.started) })
	return r.ResponseRecorder.Write(b)
}

func (r *startedRecorder) Flush() {
	r.once.Do(func() { close(r.started) })
	r.ResponseRecorder.Flush()
}
