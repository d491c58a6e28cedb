package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/apptest"
	"hmp/internal/config"
)

// rowLock holds a row of transactions locked from outside the app, so
// that requests writing it block in PostgreSQL and hold their slots.
type rowLock struct {
	tx   pgx.Tx
	conn *pgx.Conn
}

func lockRow(t *testing.T, url, id string) *rowLock {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM transactions WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	l := &rowLock{tx: tx, conn: conn}
	t.Cleanup(l.release)
	return l
}

func (l *rowLock) release() {
	if l.conn != nil {
		_ = l.tx.Rollback(context.Background())
		_ = l.conn.Close(context.Background())
		l.conn = nil
	}
}

// waitLocked polls until n backends of the database wait on a lock.
func waitLocked(t *testing.T, url string, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests blocked on the lock, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blocked sends n PATCHes of row id that block on its lock, and returns
// a wait for their answers.
func blocked(e *apptest.Env, token, id string, n int) func() []*apptest.Response {
	var wg sync.WaitGroup
	out := make([]*apptest.Response, n)
	for i := range n {
		wg.Go(func() {
			r, err := e.Send("PATCH", "/v1/finance/revenues/"+id, token, map[string]any{"description": "slow"})
			if err != nil {
				r = &apptest.Response{Status: -1, Body: []byte(err.Error())}
			}
			out[i] = r
		})
	}
	return func() []*apptest.Response { wg.Wait(); return out }
}

func want503(t *testing.T, what string, r *apptest.Response) {
	t.Helper()
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("%s: got %s, want 503 with Retry-After", what, r)
	}
}

// TestShedding: with every slot held by slow requests, more requests are
// refused with 503 and Retry-After while the slow ones still run (they
// do not park until a slot frees); one organization holding its share
// cannot take the slots another organization needs.
func TestShedding(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster, smallPool, func(c *config.Config) {
		c.MaxInFlight, c.OrgShare, c.MaxQueueWait = 4, 0.5, 20*time.Millisecond
	})
	url := env.App.DatabaseURL
	a, b, c := env.Signup("Flooder"), env.Signup("Bystander"), env.Signup("Latecomer")
	rowA := env.Revenue(a.AdminToken, apptest.Txn{PropertyID: env.Property(a.AdminToken, "A1", ""), AmountCents: 100, PaymentMode: "cash", OccurredAt: time.Now().UTC().Format(time.RFC3339)})
	rowB := env.Revenue(b.AdminToken, apptest.Txn{PropertyID: env.Property(b.AdminToken, "B1", ""), AmountCents: 100, PaymentMode: "cash", OccurredAt: time.Now().UTC().Format(time.RFC3339)})

	lockA := lockRow(t, url, rowA.ID)
	waitA := blocked(env, a.AdminToken, rowA.ID, 2)
	waitLocked(t, url, 2)
	// A holds its share (2 of 4): A's next request is shed, B's is served.
	want503(t, "A past its share", env.Do("GET", "/v1/properties", a.AdminToken, nil))
	env.Must(200, "GET", "/v1/properties", b.AdminToken, nil)

	lockB := lockRow(t, url, rowB.ID)
	waitB := blocked(env, b.AdminToken, rowB.ID, 2)
	waitLocked(t, url, 4)
	// Every slot is held: anyone is shed at once, while the four still wait.
	want503(t, "C with every slot held", env.Do("GET", "/v1/properties", c.AdminToken, nil))
	want503(t, "login with every slot held", env.Do("POST", "/v1/auth/login", "", map[string]any{"email": c.AdminEmail, "password": "correct horse"}))
	m := string(env.Do("GET", "/metrics", "", nil).Body)
	for _, line := range []string{`hmp_http_shed_total{reason="org_share"} 1`, `hmp_http_shed_total{reason="queue_timeout"} 2`, `hmp_http_in_flight 4`} {
		if !contains(m, line) {
			t.Errorf("metrics lack %q:\n%s", line, grepLines(m, "hmp_http_"))
		}
	}

	lockA.release()
	lockB.release()
	for _, r := range append(waitA(), waitB()...) {
		if r.Status != 200 {
			t.Errorf("slow request: %s, want 200 once the lock is gone", r)
		}
	}
	env.Must(200, "GET", "/v1/properties", c.AdminToken, nil)
}

// TestRequestDeadline: a request blocked in PostgreSQL answers 503 with
// Retry-After at its deadline, while the lock is still held: the deadline
// reaches the database call.
func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster, smallPool, func(c *config.Config) { c.RequestTimeout = 2 * time.Second })
	org := env.Signup("Slow Lane")
	row := env.Revenue(org.AdminToken, apptest.Txn{PropertyID: env.Property(org.AdminToken, "S1", ""), AmountCents: 100, PaymentMode: "cash", OccurredAt: time.Now().UTC().Format(time.RFC3339)})
	lock := lockRow(t, env.App.DatabaseURL, row.ID)
	r := env.Do("PATCH", "/v1/finance/revenues/"+row.ID, org.AdminToken, map[string]any{"description": "slow"})
	want503(t, "blocked write past its deadline", r)
	assertNoLeak(t, "deadline", r)
	lock.release()
	env.Must(200, "PATCH", "/v1/finance/revenues/"+row.ID, org.AdminToken, map[string]any{"description": "fast"})
}

func contains(s, sub string) bool { return len(grepLines(s, sub)) > 0 }

// TestConnectionLimit: past MaxConns a new connection waits in the accept
// queue unanswered; while the listener is full, a refused request's
// connection is closed, which lets the waiting one in.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster, smallPool, func(c *config.Config) {
		c.MaxInFlight, c.OrgShare, c.MaxQueueWait, c.MaxConns = 1, 1, 20*time.Millisecond, 2
	})
	org := env.Signup("Crowd")
	row := env.Revenue(org.AdminToken, apptest.Txn{PropertyID: env.Property(org.AdminToken, "C1", ""), AmountCents: 100, PaymentMode: "cash", OccurredAt: time.Now().UTC().Format(time.RFC3339)})
	env.Client.CloseIdleConnections() // their places go back

	lock := lockRow(t, env.App.DatabaseURL, row.ID)
	holder := dialAPI(t, env)
	holder.send(t, "PATCH", "/v1/finance/revenues/"+row.ID, org.AdminToken, `{"description":"slow"}`)
	waitLocked(t, env.App.DatabaseURL, 1) // the only slot is held, and one place
	refused := dialAPI(t, env)            // the last place
	waiting := dialAPI(t, env)            // in the accept queue
	waiting.send(t, "GET", "/healthz", "", "")
	if r, err := waiting.read(300 * time.Millisecond); err == nil {
		t.Fatalf("a connection past the limit was served: %d", r.StatusCode)
	}

	refused.send(t, "GET", "/v1/properties", org.AdminToken, "")
	r, err := refused.read(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" || !r.Close {
		t.Fatalf("refused with the listener full: %d, Retry-After %q, close %v; want 503, Retry-After, Connection: close", r.StatusCode, r.Header.Get("Retry-After"), r.Close)
	}
	if r, err := waiting.read(5 * time.Second); err != nil || r.StatusCode != 200 {
		t.Fatalf("the waiting connection, once a place was given back: %v %v, want 200", r, err)
	}
	lock.release()
	if r, err := holder.read(10 * time.Second); err != nil || r.StatusCode != 200 {
		t.Fatalf("the slow request: %v %v, want 200", r, err)
	}
}

// rawConn is one client connection to the API, so that a test controls
// which requests share it.
type rawConn struct {
	c  net.Conn
	rd *bufio.Reader
}

func dialAPI(t *testing.T, env *apptest.Env) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", env.App.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, rd: bufio.NewReader(c)}
}

func (rc *rawConn) send(t *testing.T, method, path, token, body string) {
	t.Helper()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: hmp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, len(body))
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(rc.c, req+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
}

// read waits at most d for the next response.
func (rc *rawConn) read(d time.Duration) (*http.Response, error) {
	_ = rc.c.SetReadDeadline(time.Now().Add(d))
	r, err := http.ReadResponse(rc.rd, nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	return r, nil
}
