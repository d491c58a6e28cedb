package httpapi

import "net/http"

type patternKey struct{}

// recordPattern hands the route pattern the mux matched back to
// requestLog: the middlewares between them pass copies of the request
// (WithContext), so the pattern the mux sets on its copy never reaches the
// request requestLog holds, and every API route was labelled "unmatched".
func recordPattern(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r) // sets r.Pattern on this request
		if p, ok := r.Context().Value(patternKey{}).(*string); ok {
			*p = r.Pattern
		}
	})
}
