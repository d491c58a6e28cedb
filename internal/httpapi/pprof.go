package httpapi

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"

	"hmp/internal/operator"
	"hmp/internal/ratelimit"
)

// profiling serves Go's runtime profiles (net/http/pprof) under
// /debug/pprof/ to the operator only: a profile shows where a serving
// instance spends its CPU and memory (docs/operations.md: fetch with the
// token, read with go tool pprof). A goroutine dump holds request data, so
// the operator token guards it like the operator API (the same failure
// budget per address); without a token it answers 401, as that API does.
func (s *server) profiling() http.Handler {
	named := map[string]http.HandlerFunc{
		"cmdline": pprof.Cmdline, "profile": pprof.Profile, "symbol": pprof.Symbol, "trace": pprof.Trace,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch v, wait := s.Operator.Check(r, operator.SurfaceProfiling, strings.TrimSpace(token)); v {
		case operator.Allowed:
		case operator.Off:
			writeProblem(w, http.StatusUnauthorized, "profiling is off: the server has no HMP_ADMIN_TOKEN")
			return
		case operator.Limited:
			w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
			writeProblem(w, http.StatusTooManyRequests, "too many wrong operator tokens from this address; retry after the time in Retry-After")
			return
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="hmp-operator"`)
			writeProblem(w, http.StatusUnauthorized, "missing or wrong operator token in the Authorization header")
			return
		}
		if h, ok := named[strings.TrimPrefix(r.URL.Path, "/debug/pprof/")]; ok {
			h(w, r)
			return
		}
		pprof.Index(w, r) // the index and every named profile (heap, goroutine, …)
	})
}
