package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"hmp/internal/measure"
)

// Rollback drives the rollback plan through one instance's HTTP API (the
// bus carries each change to the others).
type Rollback struct {
	// URL is the instance's base URL; Token the operator token.
	URL, Token string
	// Operator names who rolls back, for the audit trail.
	Operator string
	// HTTP is the client (nil: one with a 60 s timeout).
	HTTP *http.Client
	// Log is told each step.
	Log io.Writer
	// StepWait is how long each gradual step runs before its stability is
	// judged. Default 30 s.
	StepWait time.Duration
	// Steps are the consumer concurrencies stepped through. Default 500,
	// 200, 100, 50, 20.
	Steps []int
	// MaxErrorRate is the most projector failures per batch and HTTP 5xx
	// per request allowed during a step. Default 0.05 (the guide's 5 %).
	MaxErrorRate float64
	// MaxLag is the most the outbox's oldest unpublished event may wait
	// at the end of a step. Default 2 s (the guide's processing time).
	MaxLag time.Duration
	// MaxBacklog is the most pipeline backlog (hmp_bus_backlog or
	// hmp_consumer_pending, when the instance exports them) allowed.
	// Default 1,000 (the guide's).
	MaxBacklog float64
}

// ErrUnstable is wrapped by a gradual rollback stopped for instability.
var ErrUnstable = errors.New("unstable")

func (r *Rollback) defaults() {
	if r.HTTP == nil {
		r.HTTP = &http.Client{Timeout: 60 * time.Second}
	}
	if r.Log == nil {
		r.Log = io.Discard
	}
	if r.StepWait == 0 {
		r.StepWait = 30 * time.Second
	}
	if len(r.Steps) == 0 {
		r.Steps = []int{500, 200, 100, 50, 20}
	}
	if r.MaxErrorRate == 0 {
		r.MaxErrorRate = 0.05
	}
	if r.MaxLag == 0 {
		r.MaxLag = 2 * time.Second
	}
	if r.MaxBacklog == 0 {
		r.MaxBacklog = 1000
	}
	if r.Operator == "" {
		r.Operator = "hmp rollback"
	}
}

// Emergency switches every instance to the baseline profile in one change.
func (r *Rollback) Emergency(ctx context.Context) (State, error) {
	r.defaults()
	p := "baseline"
	st, err := r.put(ctx, Change{Profile: &p, Reason: "emergency rollback"})
	if err == nil {
		fmt.Fprintf(r.Log, "emergency rollback: every instance switched to baseline (revision %d)\n", st.Revision)
	}
	return st, err
}

// Gradual steps the consumer concurrency down through Steps (those below
// the value in force), then turns batching off (projector batch size 1,
// corrections one row at a time), judging stability after each step; it
// stops at the first unstable step (ErrUnstable) and leaves the settings
// as they are then.
func (r *Rollback) Gradual(ctx context.Context) (State, error) {
	r.defaults()
	st, err := r.Current(ctx)
	if err != nil {
		return st, err
	}
	for _, c := range r.Steps {
		if c >= st.Settings.Projector.MaxConcurrency {
			continue
		}
		n := c
		if st, err = r.step(ctx, fmt.Sprintf("consumer concurrency %d", c),
			Change{Projector: &ProjectorChange{MaxConcurrency: &n}, Reason: fmt.Sprintf("gradual rollback: concurrency %d", c)}); err != nil {
			return st, err
		}
	}
	one, zero, row := 1, 0, "row"
	return r.step(ctx, "batching off", Change{Projector: &ProjectorChange{BatchSize: &one, LingerMs: &zero},
		Corrections: &row, Reason: "gradual rollback: batching off"})
}

// step applies one change, waits StepWait and judges stability.
func (r *Rollback) step(ctx context.Context, what string, c Change) (State, error) {
	before, err := r.metrics(ctx)
	if err != nil {
		return State{}, err
	}
	st, err := r.put(ctx, c)
	if err != nil {
		return st, fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintf(r.Log, "step: %s (revision %d); watching for %s\n", what, st.Revision, r.StepWait)
	select {
	case <-ctx.Done():
		return st, ctx.Err()
	case <-time.After(r.StepWait):
	}
	if err := r.stable(ctx, before); err != nil {
		fmt.Fprintf(r.Log, "stopped after %s: %v\n", what, err)
		return st, fmt.Errorf("after %s: %w", what, err)
	}
	fmt.Fprintf(r.Log, "stable after %s\n", what)
	return st, nil
}

// stable judges the step from the metrics (deltas since before) and the
// alerts, when the instance has an alert evaluator.
func (r *Rollback) stable(ctx context.Context, before map[string]float64) error {
	firing, err := r.firing(ctx)
	if err != nil {
		return err
	}
	if len(firing) > 0 {
		return fmt.Errorf("%w: alerts firing: %s", ErrUnstable, strings.Join(firing, ", "))
	}
	after, err := r.metrics(ctx)
	if err != nil {
		return err
	}
	d := func(prefix string, match func(series string) bool) float64 {
		return sumSeries(after, prefix, match) - sumSeries(before, prefix, match)
	}
	if batches := d("hmp_projector_batches_total", nil); batches > 0 || d("hmp_projector_failures_total", nil) > 0 {
		failures := d("hmp_projector_failures_total", nil)
		if rate := failures / max(batches+failures, 1); rate > r.MaxErrorRate {
			return fmt.Errorf("%w: projector error rate %.1f %% (%v failed batches)", ErrUnstable, 100*rate, failures)
		}
	}
	if reqs := d("hmp_http_requests_total", nil); reqs > 0 {
		errs := d("hmp_http_requests_total", func(s string) bool { return strings.Contains(s, `code="5`) })
		if rate := errs / reqs; rate > r.MaxErrorRate {
			return fmt.Errorf("%w: HTTP 5xx rate %.1f %%", ErrUnstable, 100*rate)
		}
	}
	if lag := after["hmp_outbox_oldest_unpublished_seconds"]; lag > r.MaxLag.Seconds() {
		return fmt.Errorf("%w: the oldest unpublished event waits %.1fs", ErrUnstable, lag)
	}
	for _, name := range []string{"hmp_bus_backlog", "hmp_consumer_pending"} {
		if b := sumSeries(after, name, nil); b > r.MaxBacklog {
			return fmt.Errorf("%w: pipeline backlog %v (%s)", ErrUnstable, b, name)
		}
	}
	return nil
}

// sumSeries sums the series of metric name (name or name{...}) that match.
func sumSeries(m map[string]float64, name string, match func(string) bool) float64 {
	var sum float64
	for s, v := range m {
		if (s == name || strings.HasPrefix(s, name+"{")) && (match == nil || match(s)) {
			sum += v
		}
	}
	return sum
}

// Current reads the settings in force on the instance.
func (r *Rollback) Current(ctx context.Context) (State, error) {
	r.defaults()
	var st State
	err := r.do(ctx, http.MethodGet, "/v1/admin/settings", nil, &st)
	return st, err
}

func (r *Rollback) put(ctx context.Context, c Change) (State, error) {
	var st State
	err := r.do(ctx, http.MethodPut, "/v1/admin/settings", c, &st)
	if err == nil && st.ApplyError != "" {
		err = fmt.Errorf("applied with an error: %s", st.ApplyError)
	}
	return st, err
}

// firing lists the alerts firing (none when the instance has no alert
// evaluator: 404).
func (r *Rollback) firing(ctx context.Context) ([]string, error) {
	var body json.RawMessage
	err := r.do(ctx, http.MethodGet, "/v1/admin/alerts", nil, &body)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var alerts []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	}
	var wrapped struct {
		Alerts json.RawMessage `json:"alerts"`
	}
	raw := []byte(body)
	if json.Unmarshal(raw, &wrapped) == nil && len(wrapped.Alerts) > 0 {
		raw = wrapped.Alerts
	}
	if err := json.Unmarshal(raw, &alerts); err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	var out []string
	for _, a := range alerts {
		if strings.EqualFold(a.State, "firing") {
			out = append(out, a.Name)
		}
	}
	return out, nil
}

func (r *Rollback) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(r.URL, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return measure.Parse(resp.Body)
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.body) }

func (r *Rollback) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(r.URL, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.Token)
	req.Header.Set("X-HMP-Operator", r.Operator)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %w", method, path, &statusError{status: resp.StatusCode, body: strings.TrimSpace(string(b))})
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}
