package httpapi

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"hmp/internal/operator"
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
		if v, wait := s.Operator.Check(r, operator.SurfaceProfiling, strings.TrimSpace(token)); v != operator.Allowed {
			status, detail := operatorRefusal(v, wait, "profiling", w.Header().Set)
			writeProblem(w, status, detail)
			return
		}
		if h, ok := named[strings.TrimPrefix(r.URL.Path, "/debug/pprof/")]; ok {
			h(w, r)
			return
		}
		pprof.Index(w, r) // the index and every named profile (heap, goroutine, …)
	})
}
