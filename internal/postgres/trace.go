package postgres

import (
	"context"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/prometheus/client_golang/prometheus"
)

// TracerConfig tunes a Tracer. The zero value of each field means its
// default.
type TracerConfig struct {
	// SlowThreshold is the duration from which a statement counts as slow
	// (the guide's trackSlowQuery). Default 200 ms; negative: nothing is
	// slow.
	SlowThreshold time.Duration
	// SlowKeep is how many distinct slow statements are kept (the slowest
	// win), each with one sample of its arguments for EXPLAIN. Default 50.
	SlowKeep int
	// LogEvery is how often one label's slow statement is logged at most.
	// Default 1 min.
	LogEvery time.Duration
	// Logger receives the slow_query lines. Default: discard.
	Logger *slog.Logger
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c TracerConfig) WithDefaults() TracerConfig {
	if c.SlowThreshold == 0 {
		c.SlowThreshold = 200 * time.Millisecond
	}
	if c.SlowKeep <= 0 {
		c.SlowKeep = 50
	}
	if c.LogEvery <= 0 {
		c.LogEvery = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// SlowStatement is one statement that ran at least the slow threshold.
type SlowStatement struct {
	// Label names the statement (see Tracer).
	Label string
	// SQL is the statement's text as sent.
	SQL string
	// Count is how many of its executions were slow; Total and Max sum up
	// their durations.
	Count int64
	Total time.Duration
	Max   time.Duration
	// Args are the arguments of its slowest execution: kept in memory for
	// EXPLAIN, never logged or served.
	Args []any
}

// maxStatements caps the label cache: SQL text is fixed in the code, so a
// cache that keeps growing means generated SQL (seeding, DDL), which then
// shares one label instead of growing memory.
const maxStatements = 10_000

// Tracer is a pgx query tracer: it labels every statement, records its
// duration per label (hmp_db_query_seconds), counts errors, and keeps the
// slowest statements for the index advisor.
//
// A statement's label is the name in a leading "-- name: X" comment, else
// the function that first ran that SQL text, outside pgx and this package
// (for example "finance.(*Service).checkGate"): derived once per distinct
// text and cached, so no query has to be edited to carry one.
type Tracer struct {
	cfg   TracerConfig
	stmts sync.Map // SQL text -> *stmtInfo
	n     atomic.Int64

	seconds  *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	slow     *prometheus.CounterVec
	batches  *prometheus.HistogramVec
	copies   *prometheus.HistogramVec
	overflow *stmtInfo

	mu      sync.Mutex
	slowest map[string]*SlowStatement // by SQL text
	logged  map[string]time.Time      // by label
}

// stmtInfo is what the tracer knows of one SQL text.
type stmtInfo struct {
	label   string
	seconds prometheus.Observer
	errors  prometheus.Counter
}

// NewTracer returns a tracer; register it (it is a prometheus.Collector)
// to export its metrics.
func NewTracer(cfg TracerConfig) *Tracer {
	cfg = cfg.WithDefaults()
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	t := &Tracer{
		cfg: cfg,
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hmp_db_query_seconds", Help: "Duration of database statements, by statement label.", Buckets: buckets,
		}, []string{"label"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hmp_db_query_errors_total", Help: "Database statements that failed, by statement label.",
		}, []string{"label"}),
		slow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hmp_db_slow_queries_total", Help: "Database statements at or over the slow threshold (HMP_SLOW_QUERY), by statement label.",
		}, []string{"label"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hmp_db_batch_seconds", Help: "Duration of statement batches, by the label of their first statement.", Buckets: buckets,
		}, []string{"label"}),
		copies: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hmp_db_copy_seconds", Help: "Duration of COPY FROM, by table.", Buckets: buckets,
		}, []string{"table"}),
		slowest: make(map[string]*SlowStatement),
		logged:  make(map[string]time.Time),
	}
	t.overflow = t.newInfo("other")
	return t
}

// Chain returns a tracer calling both (either may be nil): a tracer
// already configured is kept, never replaced.
func Chain(existing, added pgx.QueryTracer) pgx.QueryTracer {
	switch {
	case existing == nil:
		return added
	case added == nil:
		return existing
	}
	return multitracer.New(existing, added)
}

// Describe implements prometheus.Collector.
func (t *Tracer) Describe(ch chan<- *prometheus.Desc) {
	t.seconds.Describe(ch)
	t.errors.Describe(ch)
	t.slow.Describe(ch)
	t.batches.Describe(ch)
	t.copies.Describe(ch)
}

// Collect implements prometheus.Collector.
func (t *Tracer) Collect(ch chan<- prometheus.Metric) {
	t.seconds.Collect(ch)
	t.errors.Collect(ch)
	t.slow.Collect(ch)
	t.batches.Collect(ch)
	t.copies.Collect(ch)
}

// Label returns the label of a SQL text this tracer has seen.
func (t *Tracer) Label(sql string) (string, bool) {
	if v, ok := t.stmts.Load(sql); ok {
		return v.(*stmtInfo).label, true
	}
	return "", false
}

// Labels returns the label of every SQL text seen, by text.
func (t *Tracer) Labels() map[string]string {
	out := make(map[string]string)
	t.stmts.Range(func(k, v any) bool {
		out[k.(string)] = v.(*stmtInfo).label
		return true
	})
	return out
}

// Slowest returns the kept slow statements, slowest first.
func (t *Tracer) Slowest() []SlowStatement {
	t.mu.Lock()
	out := make([]SlowStatement, 0, len(t.slowest))
	for _, s := range t.slowest {
		c := *s
		c.Args = slices.Clone(s.Args)
		out = append(out, c)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b SlowStatement) int { return int(b.Max - a.Max) })
	return out
}

type queryKey struct{}

type queryStart struct {
	info  *stmtInfo
	sql   string
	args  []any
	start time.Time
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *Tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, queryKey{}, &queryStart{info: t.info(data.SQL), sql: data.SQL, args: data.Args, start: time.Now()})
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *Tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	q, ok := ctx.Value(queryKey{}).(*queryStart)
	if !ok {
		return
	}
	d := time.Since(q.start)
	q.info.seconds.Observe(d.Seconds())
	if data.Err != nil {
		q.info.errors.Inc()
	}
	if t.cfg.SlowThreshold > 0 && d >= t.cfg.SlowThreshold {
		t.trackSlow(q, d)
	}
}

type batchKey struct{}

type batchStart struct {
	label string
	start time.Time
}

// TraceBatchStart implements pgx.BatchTracer.
func (t *Tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	label := "empty"
	if data.Batch != nil && len(data.Batch.QueuedQueries) > 0 {
		label = t.info(data.Batch.QueuedQueries[0].SQL).label
	}
	return context.WithValue(ctx, batchKey{}, &batchStart{label: label, start: time.Now()})
}

// TraceBatchQuery implements pgx.BatchTracer: a statement of a batch
// counts its error under its own label.
func (t *Tracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if data.Err != nil {
		t.info(data.SQL).errors.Inc()
	}
}

// TraceBatchEnd implements pgx.BatchTracer.
func (t *Tracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	if b, ok := ctx.Value(batchKey{}).(*batchStart); ok {
		t.batches.WithLabelValues(b.label).Observe(time.Since(b.start).Seconds())
	}
}

type copyKey struct{}

type copyStart struct {
	table string
	start time.Time
}

// TraceCopyFromStart implements pgx.CopyFromTracer.
func (t *Tracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	return context.WithValue(ctx, copyKey{}, &copyStart{table: strings.Join(data.TableName, "."), start: time.Now()})
}

// TraceCopyFromEnd implements pgx.CopyFromTracer.
func (t *Tracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	if c, ok := ctx.Value(copyKey{}).(*copyStart); ok {
		t.copies.WithLabelValues(c.table).Observe(time.Since(c.start).Seconds())
	}
}

// info returns the cached facts of sql, labelling it on first sight.
func (t *Tracer) info(sql string) *stmtInfo {
	if v, ok := t.stmts.Load(sql); ok {
		return v.(*stmtInfo)
	}
	if t.n.Load() >= maxStatements {
		return t.overflow
	}
	v, loaded := t.stmts.LoadOrStore(sql, t.newInfo(labelOf(sql)))
	if !loaded {
		t.n.Add(1)
	}
	return v.(*stmtInfo)
}

func (t *Tracer) newInfo(label string) *stmtInfo {
	return &stmtInfo{label: label, seconds: t.seconds.WithLabelValues(label), errors: t.errors.WithLabelValues(label)}
}

// trackSlow counts a slow execution, keeps it among the slowest, and logs
// its label at most once per LogEvery: the text, never the arguments.
func (t *Tracer) trackSlow(q *queryStart, d time.Duration) {
	label := q.info.label
	t.slow.WithLabelValues(label).Inc()
	now := time.Now()
	t.mu.Lock()
	s := t.slowest[q.sql]
	if s == nil && len(t.slowest) >= t.cfg.SlowKeep {
		// Full: the new one replaces the kept statement with the smallest
		// maximum, if it is slower.
		var least *SlowStatement
		for _, c := range t.slowest {
			if least == nil || c.Max < least.Max {
				least = c
			}
		}
		if least.Max < d {
			delete(t.slowest, least.SQL)
		}
	}
	if s == nil && len(t.slowest) < t.cfg.SlowKeep {
		s = &SlowStatement{Label: label, SQL: q.sql}
		t.slowest[q.sql] = s
	}
	if s != nil {
		s.Count++
		s.Total += d
		if d >= s.Max {
			s.Max = d
			s.Args = slices.Clone(q.args)
		}
	}
	last, seen := t.logged[label]
	logIt := !seen || now.Sub(last) >= t.cfg.LogEvery
	if logIt {
		t.logged[label] = now
	}
	t.mu.Unlock()
	if logIt {
		t.cfg.Logger.Warn("slow_query", "label", label, "duration_ms", d.Milliseconds(),
			"threshold_ms", t.cfg.SlowThreshold.Milliseconds(), "sql", NormalizeSQL(q.sql))
	}
}

var spaces = regexp.MustCompile(`\s+`)

// NormalizeSQL returns sql on one line with single spaces, at most 1,000
// characters: for logs.
func NormalizeSQL(sql string) string {
	s := strings.TrimSpace(spaces.ReplaceAllString(sql, " "))
	if len(s) > 1000 {
		s = s[:1000] + "…"
	}
	return s
}

var funcSuffix = regexp.MustCompile(`(\.func\d+)+$`)

// labelOf names sql: its "-- name: X" comment, else the first calling
// function outside pgx, this package and the runtime.
func labelOf(sql string) string {
	if s := strings.TrimSpace(sql); strings.HasPrefix(s, "-- name:") {
		line, _, _ := strings.Cut(strings.TrimPrefix(s, "-- name:"), "\n")
		if f := strings.Fields(line); len(f) > 0 {
			return f[0]
		}
	}
	switch w := strings.ToLower(strings.TrimSpace(sql)); w {
	case "begin", "commit", "rollback", ";", "":
		// Shared by every transaction: the first caller would mislabel it.
		return "tx." + strings.Trim(w, ";")
	}
	var pcs [48]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if fn := f.Function; fn != "" && !internalFrame(fn) {
			if i := strings.LastIndexByte(fn, '/'); i >= 0 {
				fn = fn[i+1:]
			}
			return funcSuffix.ReplaceAllString(fn, "")
		}
		if !more {
			return "unknown"
		}
	}
}

// internalFrame reports whether fn is plumbing between the caller and the
// server: pgx, this package's helpers (WithTx, Retry), retries, runtime.
func internalFrame(fn string) bool {
	for _, p := range []string{"github.com/jackc/", "hmp/internal/postgres.", "runtime.", "github.com/cenkalti/backoff", "sync.", "database/sql."} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}
