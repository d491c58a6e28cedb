package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hmp/internal/domain"
)

func chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// writeProblem writes an RFC 9457 problem outside huma (middleware).
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}

// limitBody reads the body of requests that carry one, answering 413 past
// max bytes and 400 for a JSON body that is not an object, so handlers
// never see either.
func limitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody || r.Method == http.MethodGet || r.Method == http.MethodHead {
				next.ServeHTTP(w, r)
				return
			}
			if r.ContentLength > max {
				w.Header().Set("Connection", "close")
				writeProblem(w, http.StatusRequestEntityTooLarge, "request body exceeds "+strconv.FormatInt(max, 10)+" bytes")
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					w.Header().Set("Connection", "close")
					writeProblem(w, http.StatusRequestEntityTooLarge, "request body exceeds "+strconv.FormatInt(max, 10)+" bytes")
					return
				}
				writeProblem(w, http.StatusBadRequest, "could not read request body")
				return
			}
			if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] != '{' && isJSON(r) {
				writeProblem(w, http.StatusBadRequest, "request body must be a JSON object")
				return
			}
			r = r.WithContext(withBody(r.Context(), body))
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			next.ServeHTTP(w, r)
		})
	}
}

func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return ct == "" || bytes.Contains([]byte(ct), []byte("json"))
}

// recoverer turns a panic into a logged 500 instead of a dropped
// connection.
func recoverer(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					logger.Error("http_panic", "panic", p, "method", r.Method, "path", r.URL.Path, "request_id", r.Header.Get("X-Request-Id"))
					writeProblem(w, http.StatusInternalServerError, "internal error")
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// The series of each route and code, looked up once: a request then
	// pays neither the code's formatting nor the label hashing.
	mu     sync.RWMutex
	series map[routeCode]routeSeries
}

type routeCode struct {
	route string
	code  int
}

type routeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// observe counts a request of route answered code after elapsed.
func (m *httpMetrics) observe(route string, code int, elapsed time.Duration) {
	k := routeCode{route, code}
	m.mu.RLock()
	s, ok := m.series[k]
	m.mu.RUnlock()
	if !ok {
		s = routeSeries{m.requests.WithLabelValues(route, strconv.Itoa(code)), m.duration.WithLabelValues(route)}
		m.mu.Lock()
		m.series[k] = s
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.duration.Observe(elapsed.Seconds())
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		series: map[routeCode]routeSeries{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hmp_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hmp_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestLog gives every request an id, measures it, and logs server
// errors (5xx) with that id; client errors are not logged.
func requestLog(logger *slog.Logger, m *httpMetrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			st := &reqState{Context: r.Context()}
			// One value slice serves the request's and the response's
			// header (neither is modified in place: Set replaces it).
			ids := r.Header["X-Request-Id"]
			if len(ids) == 0 || ids[0] == "" || len(ids[0]) > 128 {
				st.ids[0] = domain.NewID(start).String()
				ids = st.ids[:]
				r.Header["X-Request-Id"] = ids
			}
			st.id = ids[0]
			w.Header()["X-Request-Id"] = ids[:1:1]
			r = r.WithContext(st)
			sw := &st.sw
			sw.ResponseWriter = w
			next.ServeHTTP(sw, r)
			route := st.pattern
			if route == "" {
				route = r.Pattern
			}
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			m.observe(route, sw.status, elapsed)
			if sw.status >= 500 && !st.quiet {
				logger.Error("http_server_error", "method", r.Method, "route", route, "status", sw.status,
					"duration_ms", elapsed.Milliseconds(), "request_id", st.id, "org_id", st.org())
			} else if logger.Enabled(r.Context(), slog.LevelDebug) {
				// The access log, for aggregation at debug level: ids and
				// figures only, never headers or bodies (tokens, passwords).
				logger.Debug("http_request", "method", r.Method, "route", route, "status", sw.status,
					"duration_ms", elapsed.Milliseconds(), "request_id", st.id, "org_id", st.org())
			}
		})
	}
}

// org is the authenticated caller's organization id, or "".
func (st *reqState) org() string {
	if st == nil || !st.authed {
		return ""
	}
	return st.sess.Actor.OrgID.String()
}

func metricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

func notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
}

// noteRoute wraps the mux to hand its matched pattern back to requestLog
// (the mux sets it on the request it receives, which middleware that adds
// to the context has copied by then, so the route label would read
// "unmatched").
func noteRoute(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if st := stateOf(r.Context()); st != nil {
			st.pattern = r.Pattern
		}
	})
}

// orgOf returns the authenticated caller's organization id, or "".
func orgOf(ctx context.Context) string { return stateOf(ctx).org() }

// quietly marks a request's 5xx answer as expected (a shed request,
// counted by its own metric): requestLog does not log it, so that an
// overload does not also flood the logs.
func quietly(r *http.Request) {
	if st := stateOf(r.Context()); st != nil {
		st.quiet = true
	}
}
