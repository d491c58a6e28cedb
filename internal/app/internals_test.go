package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/tools"
)

// leaks lists fragments of driver and server text that must never reach a
// client.
var leaks = []string{"SQLSTATE", "FATAL", "terminating connection", "pgx", "pgconn", "dial tcp", "connection refused", "unexpected EOF", "conn closed", "127.0.0.1"}

func assertNoLeak(t *testing.T, what string, r *apptest.Response) {
	t.Helper()
	for _, l := range leaks {
		if strings.Contains(string(r.Body), l) {
			t.Errorf("%s: body leaks %q: %s", what, l, r.Body)
		}
	}
}

// TestBackendsTerminatedMidRequest: PostgreSQL dropping every connection
// of the app while writes and reads run (pg_terminate_backend, as a
// restart does) answers 503 with Retry-After, never 500, and no body
// carries driver text.
func TestBackendsTerminatedMidRequest(t *testing.T) {
	t.Parallel()
	f := setup(t)
	killer, err := pgx.Connect(context.Background(), f.env.App.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(context.Background())

	const workers, perWorker = 4, 40
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		failures []string
	)
	done := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				var r *apptest.Response
				var err error
				if i%2 == 0 {
					body := txn(f.prop, int64(100+w))
					body.Source = "room"
					r, err = f.env.Send("POST", "/v1/finance/revenues", f.org.AdminToken, body)
				} else {
					r, err = f.env.Send("GET", "/v1/finance/revenues?propertyId="+f.prop, f.org.AdminToken, nil)
				}
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				default:
					statuses[r.Status]++
					if r.Status >= 500 && r.Status != 503 {
						failures = append(failures, r.String())
					}
					if r.Status == 503 && r.Header.Get("Retry-After") == "" {
						failures = append(failures, "503 without Retry-After: "+r.String())
					}
					for _, l := range leaks {
						if strings.Contains(string(r.Body), l) {
							failures = append(failures, fmt.Sprintf("leaks %q: %s", l, r.Body))
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	kills := 0
	for {
		select {
		case <-done:
		default:
			_, err := killer.Exec(context.Background(), `
				SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`)
			if err != nil {
				t.Fatalf("terminate backends: %v", err)
			}
			kills++
			// A restart drops connections now and then, not in a tight
			// loop: pausing gives the pool a window to reconnect, so the
			// test can also check that requests succeed between drops
			// (on a busy machine an unpaced loop left no such window, and
			// 20 ms was once too short for any reconnect to finish while
			// the whole suite ran: every tenth pause is longer).
			pause := 20 * time.Millisecond
			if kills%10 == 0 {
				pause = 250 * time.Millisecond
			}
			time.Sleep(pause)
			continue
		}
		break
	}
	for _, fl := range failures {
		t.Error(fl)
	}
	t.Logf("statuses %v over %d terminations", statuses, kills)
	if statuses[201]+statuses[200] == 0 {
		t.Errorf("no request succeeded between terminations: %v", statuses)
	}
}

// TestDatabaseStopped: with its PostgreSQL gone, /readyz names the
// database without its error text, and API requests answer 503 with
// Retry-After, never 500.
func TestDatabaseStopped(t *testing.T) {
	t.Parallel()
	own, err := pgtest.Start(context.Background(), tools.Migrations()...)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			own.Close()
		}
	}()
	f := func(c *config.Config) { c.Pool.MinConns = 1; c.Pool.MaxConns = 8 }
	env := apptest.Start(t, own, f)
	org := env.Signup("Dark Harbour")
	prop := env.Property(org.AdminToken, "Lighthouse", "")
	env.Must(200, "GET", "/readyz", "", nil)

	own.Close()
	stopped = true

	r := env.Do("GET", "/readyz", "", nil)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.Body), "not ready: database is unavailable") {
		t.Errorf("readyz with the database down: %s", r)
	}
	assertNoLeak(t, "readyz", r)
	for _, req := range []struct{ method, path string }{
		{"POST", "/v1/finance/revenues"},
		{"GET", "/v1/finance/revenues?propertyId=" + prop},
		{"GET", "/v1/properties"},
		{"POST", "/v1/auth/login"},
	} {
		var body any
		switch req.path {
		case "/v1/finance/revenues":
			body = map[string]any{"propertyId": prop, "source": "room", "amountCents": 100, "paymentMode": "cash", "occurredAt": time.Now().UTC().Format(time.RFC3339)}
		case "/v1/auth/login":
			body = map[string]any{"email": org.AdminEmail, "password": "correct horse"}
		}
		r := env.Do(req.method, req.path, org.AdminToken, body)
		if r.Status != 503 || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the database down: %s, want 503 with Retry-After", req.method, req.path, r)
		}
		assertNoLeak(t, req.method+" "+req.path, r)
	}
}
