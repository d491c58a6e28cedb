package httpapi

import (
	"net/http"
	"strings"
)

// OperatorPath reports whether path belongs to the operator surface:
// /metrics, the dashboard, the operator API (/v1/admin/...) and the
// runtime profiles (/debug/pprof/...).
func OperatorPath(path string) bool {
	return path == "/metrics" || path == "/dashboard" || strings.HasPrefix(path, "/dashboard/") ||
		path == "/v1/admin" || strings.HasPrefix(path, "/v1/admin/") || strings.HasPrefix(path, "/debug/pprof/")
}

// PublicOnly serves h without its operator surface, which answers 404: the
// handler of the public port when the operator surface has a listener of
// its own (HMP_OPERATOR_ADDR). The API, /openapi.json, /docs, /healthz and
// /readyz stay.
func PublicOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if OperatorPath(r.URL.Path) {
			writeProblem(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// OperatorOnly serves h's operator surface and its health checks (404 for
// anything else): the handler of the operator listener.
func OperatorOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !OperatorPath(r.URL.Path) && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			writeProblem(w, http.StatusNotFound, "the operator listener serves /metrics, /dashboard, /v1/admin, /debug/pprof and the health checks only: "+r.Method+" "+r.URL.Path)
			return
		}
		h.ServeHTTP(w, r)
	})
}
