package telemetry

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/startstop"
)

// Alert states.
const (
	StatePending  = "pending"
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// ErrNotFound is returned by Ack for an id it does not know.
var ErrNotFound = errors.New("no such alert")

// Alert is one activation of a rule for one series: pending while its
// condition holds for less than the rule's For, firing after, resolved once
// the condition no longer holds. A new activation of the same rule and
// series gets a new id.
type Alert struct {
	ID       string            `json:"id"`
	Rule     string            `json:"rule"`
	Family   string            `json:"family"`
	Severity string            `json:"severity"`
	Summary  string            `json:"summary"`
	Labels   map[string]string `json:"labels,omitempty"`
	State    string            `json:"state" enum:"pending,firing,resolved"`
	// Value is the last evaluated value (while resolved: the last one that
	// crossed the threshold).
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Below: the alert is about a value under the threshold.
	Below bool `json:"below,omitempty"`
	// Since is when the alert entered its current state.
	Since time.Time `json:"since"`
	// ActiveAt is when the condition was first seen (pending began).
	ActiveAt       time.Time  `json:"activeAt"`
	FiredAt        *time.Time `json:"firedAt,omitempty"`
	ResolvedAt     *time.Time `json:"resolvedAt,omitempty"`
	Acknowledged   bool       `json:"acknowledged"`
	AcknowledgedAt *time.Time `json:"acknowledgedAt,omitempty"`
	AcknowledgedBy string     `json:"acknowledgedBy,omitempty"`
}

// Change is a state change of an alert, as subscribers receive it.
type Change struct {
	// From is the previous state ("" for a new pending alert).
	From  string
	Alert Alert
}

// Evaluator evaluates the rules over the process's own registry at every
// interval, keeping the gathers of one window to compute rates.
type Evaluator struct {
	cfg    Config
	rules  []Rule
	g      prometheus.Gatherer
	logger *slog.Logger
	m      evalMetrics

	mu      sync.Mutex
	snaps   []*snapshot
	active  map[string]*Alert // by rule and series
	history []Alert           // resolved, oldest first, at most cfg.History
	seq     int
	subs    map[int]chan Change
	nextSub int

	base startstop.Base
}

type evalMetrics struct {
	alerts      *prometheus.GaugeVec
	evaluations prometheus.Counter
	failures    prometheus.Counter
}

// NewEvaluator returns a stopped evaluator of rules over g. reg may be
// nil.
func NewEvaluator(cfg Config, rules []Rule, g prometheus.Gatherer, logger *slog.Logger, reg prometheus.Registerer) *Evaluator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Evaluator{cfg: cfg.WithDefaults(), rules: rules, g: g, logger: logger,
		active: map[string]*Alert{}, subs: map[int]chan Change{},
		m: evalMetrics{
			alerts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hmp_alerts",
				Help: "Alerts of the built-in evaluator by state (pending, firing)."}, []string{"state"}),
			evaluations: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_alert_evaluations_total",
				Help: "Evaluations of the alert rules."}),
			failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "hmp_alert_evaluation_failures_total",
				Help: "Evaluations that could not gather the metrics."}),
		}}
	if reg != nil {
		reg.MustRegister(e.m.alerts, e.m.evaluations, e.m.failures)
	}
	return e
}

// Rules returns the rules the evaluator checks.
func (e *Evaluator) Rules() []Rule { return e.rules }

// Config returns the evaluator's settings.
func (e *Evaluator) Config() Config { return e.cfg }

// Start evaluates every interval until Stop. Safe to call twice.
func (e *Evaluator) Start(ctx context.Context) error {
	if e.cfg.Interval < 0 {
		return nil
	}
	e.base.Start(ctx, func(ctx context.Context) {
		t := time.NewTicker(e.cfg.Interval)
		defer t.Stop()
		for {
			if err := e.Evaluate(ctx); err != nil {
				e.logger.Warn("alert_evaluation_failed", "error", err.Error())
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return nil
}

// Stop ends the evaluations and closes every subscription. Safe to call
// twice.
func (e *Evaluator) Stop() {
	if !e.base.Stop() {
		return
	}
	e.mu.Lock()
	for id, ch := range e.subs {
		close(ch)
		delete(e.subs, id)
	}
	e.mu.Unlock()
}

// Subscribe returns a channel of every alert state change from now on,
// buffered by buf, and a function that ends the subscription. A
// subscriber that falls buf changes behind loses the newest (logged), so
// the evaluator never waits on one.
func (e *Evaluator) Subscribe(buf int) (<-chan Change, func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id := e.nextSub
	e.nextSub++
	ch := make(chan Change, buf)
	e.subs[id] = ch
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if c, ok := e.subs[id]; ok {
			close(c)
			delete(e.subs, id)
		}
	}
}

// Alerts returns the pending and firing alerts (firing first, then by
// rule), then the resolved ones kept in the history, newest first.
func (e *Evaluator) Alerts() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Alert, 0, len(e.active)+len(e.history))
	for _, a := range e.active {
		out = append(out, copyAlert(*a))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].State != out[j].State {
			return out[i].State == StateFiring
		}
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].ID < out[j].ID
	})
	for i := len(e.history) - 1; i >= 0; i-- {
		out = append(out, copyAlert(e.history[i]))
	}
	return out
}

// Ack acknowledges the alert id (pending, firing or resolved): an operator
// is on it. It stays listed and still notifies its resolution.
func (e *Evaluator) Ack(id, by string) (Alert, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	ack := func(a *Alert) Alert {
		if !a.Acknowledged {
			a.Acknowledged, a.AcknowledgedAt, a.AcknowledgedBy = true, &now, by
		}
		return copyAlert(*a)
	}
	for _, a := range e.active {
		if a.ID == id {
			return ack(a), nil
		}
	}
	for i := range e.history {
		if e.history[i].ID == id {
			return ack(&e.history[i]), nil
		}
	}
	return Alert{}, fmt.Errorf("alert %q: %w", id, ErrNotFound)
}

// Evaluate gathers the registry once and evaluates every rule. Start calls
// it every interval; tests and tools may call it directly.
func (e *Evaluator) Evaluate(ctx context.Context) error {
	families, err := e.g.Gather()
	if err != nil && len(families) == 0 {
		e.m.failures.Inc()
		return fmt.Errorf("gather metrics: %w", err)
	}
	now := e.cfg.Now()
	snap := newSnapshot(now, families)

	e.mu.Lock()
	defer e.mu.Unlock()
	e.m.evaluations.Inc()
	e.keep(snap)
	ec := &evalContext{now: snap, past: e.past}
	seen := map[string]bool{}
	var changes []Change
	for _, r := range e.rules {
		for _, smp := range r.Expr.eval(ec) {
			if math.IsNaN(smp.value) || !r.crossed(smp.value) {
				continue
			}
			key := r.Name + "\x00" + labelKey(smp.labels)
			seen[key] = true
			a, ok := e.active[key]
			if !ok {
				e.seq++
				a = &Alert{ID: alertID(r.Name, smp.labels, e.seq), Rule: r.Name, Family: r.Family, Severity: r.Severity,
					Summary: r.Summary, Labels: smp.labels, State: StatePending, Threshold: r.Threshold, Below: r.Below,
					Value: smp.value, Since: now, ActiveAt: now}
				e.active[key] = a
				changes = append(changes, Change{From: "", Alert: copyAlert(*a)})
			}
			a.Value = smp.value
			if a.State == StatePending && now.Sub(a.ActiveAt) >= r.For {
				fired := now
				a.State, a.Since, a.FiredAt = StateFiring, now, &fired
				changes = append(changes, Change{From: StatePending, Alert: copyAlert(*a)})
			}
		}
	}
	for key, a := range e.active {
		if seen[key] {
			continue
		}
		delete(e.active, key)
		if a.State != StateFiring {
			continue // a pending alert that never fired leaves no trace, as in Prometheus
		}
		resolved := now
		a.State, a.Since, a.ResolvedAt = StateResolved, now, &resolved
		e.history = append(e.history, *a)
		if over := len(e.history) - e.cfg.History; over > 0 {
			e.history = append(e.history[:0], e.history[over:]...)
		}
		changes = append(changes, Change{From: StateFiring, Alert: copyAlert(*a)})
	}
	pending, firing := 0, 0
	for _, a := range e.active {
		if a.State == StateFiring {
			firing++
		} else {
			pending++
		}
	}
	e.m.alerts.WithLabelValues(StatePending).Set(float64(pending))
	e.m.alerts.WithLabelValues(StateFiring).Set(float64(firing))
	for _, c := range changes {
		e.logChange(c)
		for _, ch := range e.subs {
			select {
			case ch <- c:
			default:
				e.logger.Warn("alert_subscriber_behind", "alert_id", c.Alert.ID, "state", c.Alert.State)
			}
		}
	}
	return nil
}

func (e *Evaluator) logChange(c Change) {
	a := c.Alert
	lvl := slog.LevelInfo
	if a.State == StateFiring {
		lvl = slog.LevelWarn
	}
	e.logger.Log(context.Background(), lvl, "alert_state_changed", "alert_id", a.ID, "rule", a.Rule,
		"from", c.From, "to", a.State, "value", a.Value, "threshold", a.Threshold, "severity", a.Severity)
}

// keep adds snap and drops the gathers older than one window before it
// (keeping the newest such, where a rate over exactly the window starts).
func (e *Evaluator) keep(snap *snapshot) {
	e.snaps = append(e.snaps, snap)
	cut := snap.at.Add(-e.cfg.Window)
	drop := 0
	for drop < len(e.snaps)-1 && e.snaps[drop+1].at.Before(cut) {
		drop++
	}
	e.snaps = append(e.snaps[:0], e.snaps[drop:]...)
}

// past returns the oldest kept gather at most window old (other than the
// current one), or nil.
func (e *Evaluator) past(window time.Duration) *snapshot {
	if len(e.snaps) < 2 {
		return nil
	}
	now := e.snaps[len(e.snaps)-1].at
	for _, s := range e.snaps[:len(e.snaps)-1] {
		if !s.at.Before(now.Add(-window)) {
			return s
		}
	}
	return nil
}

func alertID(rule string, labels map[string]string, seq int) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(labelKey(labels)))
	return fmt.Sprintf("%s-%d-%08x", rule, seq, h.Sum32())
}

func copyAlert(a Alert) Alert {
	if a.Labels != nil {
		l := make(map[string]string, len(a.Labels))
		for k, v := range a.Labels {
			l[k] = v
		}
		a.Labels = l
	}
	return a
}
