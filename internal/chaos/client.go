package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// tenant is one organization of the run: its ADMIN's token and property.
type tenant struct {
	token    string
	property string
}

// write is one create the clients were asked to make.
type write struct {
	org    int
	key    string // Idempotency-Key, also the row's description
	amount int64
	via    int // the instance of the first attempt (modulo the instances); retries go to the next
}

// outcome of a write: acknowledged with the row's id, or given up.
type ack struct {
	org    int
	id     string
	amount int64
}

// ledger records what the clients were told: every acknowledged write,
// every write given up on, the latest consistency token of each
// organization, and the errors seen, per phase of the run (0: before the
// first fault; i: during and after fault i).
type ledger struct {
	phase    atomic.Int32
	mu       sync.Mutex
	acked    map[string]ack
	gaveUp   map[string]int // key -> org
	rejected map[string]int // answers retrying cannot fix (4xx, a 2xx without a row), by class
	tokens   []string
	tokenAt  []time.Time
	errs     []map[string]int
	replayed int
	offered  int
	skipped  int
}

func newLedger(orgs, phases int) *ledger {
	l := &ledger{acked: map[string]ack{}, gaveUp: map[string]int{}, rejected: map[string]int{},
		tokens: make([]string, orgs), tokenAt: make([]time.Time, orgs), errs: make([]map[string]int, phases)}
	for i := range l.errs {
		l.errs[i] = map[string]int{}
	}
	return l
}

func (l *ledger) clientError(class string) {
	p := l.phase.Load()
	l.mu.Lock()
	l.errs[p][class]++
	l.mu.Unlock()
}

// api is the HTTP client of the run's writers: plain net/http, one
// attempt per deadline, retried with the same Idempotency-Key.
type api struct {
	base    string
	http    *http.Client
	timeout time.Duration
}

func newAPI(base string, conns int, timeout time.Duration) *api {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &api{base: base, http: &http.Client{Transport: tr, Timeout: timeout}, timeout: timeout}
}

// do sends one request and returns the status, headers and body.
func (a *api) do(ctx context.Context, method, path, token, key string, in any, hdr map[string]string) (int, http.Header, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

// call is do for set-up and checks: it retries transient failures (network,
// 429, 5xx) until within passes and decodes a want answer into out.
func (a *api) call(ctx context.Context, method, path, token string, in any, hdr map[string]string, want int, out any, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		status, _, b, err := a.do(ctx, method, path, token, "", in, hdr)
		if err == nil && status == want {
			if out != nil {
				if err := json.Unmarshal(b, out); err != nil {
					return fmt.Errorf("%s %s: decode: %w", method, path, err)
				}
			}
			return nil
		}
		if err == nil && status < 500 && status != http.StatusTooManyRequests {
			return fmt.Errorf("%s %s: status %d: %s", method, path, status, bytes.TrimSpace(b))
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("status %d: %s", status, bytes.TrimSpace(b))
			}
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// classify names an attempt's failure as a client sees it.
func classify(status int, err error) string {
	switch {
	case err == nil:
		return "http " + strconv.Itoa(status)
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	}
	return "network error"
}

// retryable says whether a create that answered status may succeed later
// with the same key: 409 is the key still in use by an attempt the client
// gave up on, 408/429/5xx are the server's way of saying later.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusConflict || status == http.StatusTooManyRequests || status >= 500
}

// create makes one write, retrying with the same Idempotency-Key until it
// is acknowledged or retryFor has passed; pause is the first wait between
// attempts (doubling to a second, with jitter).
func (r *run) create(ctx context.Context, w write, pause time.Duration) bool {
	t := r.tenants[w.org]
	body := map[string]any{
		"propertyId": t.property, "source": "room", "amountCents": w.amount, "paymentMode": "cash",
		"occurredAt": r.occurredAt, "description": w.key,
	}
	deadline := time.Now().Add(r.cfg.RetryFor)
	for attempt := w.via; ; attempt++ {
		// With two instances a retry goes to the other one, as behind a
		// load balancer: the key and the token must hold there too.
		a := r.apis[attempt%len(r.apis)]
		status, hdr, b, err := a.do(ctx, http.MethodPost, "/v1/finance/revenues", t.token, w.key, body, nil)
		if err == nil && status == http.StatusCreated {
			var out struct {
				ID string `json:"id"`
			}
			if jerr := json.Unmarshal(b, &out); jerr == nil && out.ID != "" {
				r.ledger.mu.Lock()
				r.ledger.acked[w.key] = ack{org: w.org, id: out.ID, amount: w.amount}
				if hdr.Get("Idempotency-Replayed") == "true" {
					r.ledger.replayed++
				}
				if tok := hdr.Get("X-Consistency-Token"); tok != "" {
					r.ledger.tokens[w.org] = tok
					r.ledger.tokenAt[w.org] = time.Now()
				}
				r.ledger.mu.Unlock()
				return true
			}
		}
		class := classify(status, err)
		if err == nil && status == http.StatusServiceUnavailable && hdr.Get("Retry-After") == "" {
			// A 503 must tell the client when to come back.
			class = "http 503 without Retry-After"
		}
		if err == nil && status < 300 {
			// Success without the created row: the client cannot know
			// what happened (an empty 200 is what a handler that returns
			// without writing gives).
			class = fmt.Sprintf("http %d without a row", status)
		}
		r.ledger.clientError(class)
		if err == nil && !retryable(status) {
			r.ledger.mu.Lock()
			r.ledger.rejected[class]++
			r.ledger.gaveUp[w.key] = w.org
			r.ledger.mu.Unlock()
			return false
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.ledger.mu.Lock()
			r.ledger.gaveUp[w.key] = w.org
			r.ledger.mu.Unlock()
			return false
		}
		d := pause + rand.N(pause/2+1)
		if sleep(ctx, d) != nil {
			continue // the deadline check above records the give-up
		}
		pause = min(2*pause, time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
