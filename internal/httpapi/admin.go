package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"hmp/internal/operator"
	"hmp/internal/ratelimit"
)

// adminScheme names the operator token's security scheme.
const adminScheme = "operator"

// AdminSecured marks an operation as an operator's: it requires
// "Authorization: Bearer <HMP_ADMIN_TOKEN>" instead of a user's token.
func AdminSecured(op huma.Operation) huma.Operation {
	op.Security = []map[string][]string{{adminScheme: {}}}
	if op.Errors == nil {
		op.Errors = []int{400, 401, 422}
	}
	if op.Tags == nil {
		op.Tags = []string{"operations"}
	}
	return op
}

// isAdminOp reports whether op is secured by the operator token.
func isAdminOp(op *huma.Operation) bool {
	for _, req := range op.Security {
		if _, ok := req[adminScheme]; ok {
			return true
		}
	}
	return false
}

// checkAdmin answers 401 unless the request carries the operator token,
// and 429 with Retry-After once its client address has spent its failed
// attempts (the operator guard counts and logs them). With no token
// configured the operator API is closed to everyone.
func (s *server) checkAdmin(api huma.API, ctx huma.Context) bool {
	token, _ := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
	r, _ := humago.Unwrap(ctx)
	v, wait := s.Operator.Check(r, operator.SurfaceAPI, strings.TrimSpace(token))
	if v == operator.Allowed {
		return true
	}
	status, detail := operatorRefusal(v, wait, "the operator API", ctx.SetHeader)
	_ = huma.WriteErr(api, ctx, status, detail)
	return false
}

// operatorRefusal is the answer to an operator token check that did not
// pass (v is not Allowed), for the surface named what: its status and
// detail, with Retry-After or WWW-Authenticate set through setHeader.
func operatorRefusal(v operator.Verdict, wait time.Duration, what string, setHeader func(name, value string)) (int, string) {
	switch v {
	case operator.Off:
		return http.StatusUnauthorized, what + " is off: the server has no HMP_ADMIN_TOKEN"
	case operator.Limited:
		setHeader("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
		return http.StatusTooManyRequests, "too many wrong operator tokens from this address; retry after the time in Retry-After"
	}
	setHeader("WWW-Authenticate", `Bearer realm="hmp-operator"`)
	return http.StatusUnauthorized, "missing or wrong operator token in the Authorization header"
}
