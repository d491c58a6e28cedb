package idempotency

import "strings"

// Routes lists the operations that honour an Idempotency-Key, as
// "METHOD /path/{param}" patterns: every create and every state change a
// client may retry. The HTTP edge applies the key to exactly these, and
// the gateway retries a write that got no answer only when it is one of
// these and carries a key.
func Routes() []string {
	routes := []string{
		"POST /v1/properties",
		"POST /v1/users",
		"PUT /v1/users/{id}/properties",
		"PATCH /v1/users/{id}",
		"POST /v1/finance/daily-approvals",
		"POST /v1/finance/deletion-requests/{id}/approve",
		"POST /v1/finance/deletion-requests/{id}/reject",
		"POST /v1/reports/cash-counts",
		"POST /v1/reports/reconciliation",
	}
	for _, kind := range []string{"revenues", "expenses"} {
		base := "/v1/finance/" + kind
		routes = append(routes, "POST "+base, "PATCH "+base+"/{id}", "DELETE "+base+"/{id}",
			"POST "+base+"/{id}/approve", "POST "+base+"/{id}/reject")
	}
	return routes
}

// Declared reports whether the operation method pattern (a path with
// {param} segments, as registered) honours an Idempotency-Key.
func Declared(method, pattern string) bool {
	for _, r := range Routes() {
		if r == method+" "+pattern {
			return true
		}
	}
	return false
}

// Honours reports whether a request to method path (as sent) reaches an
// operation that honours an Idempotency-Key.
func Honours(method, path string) bool {
	for _, r := range Routes() {
		m, pattern, _ := strings.Cut(r, " ")
		if m == method && matches(pattern, path) {
			return true
		}
	}
	return false
}

// matches reports whether path fits pattern, a {param} segment standing
// for any one non-empty segment.
func matches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	return true
}
