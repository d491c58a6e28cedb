package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
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

// checkAdmin answers 401 unless the request carries the operator token.
// With no token configured the operator API is closed to everyone.
func (s *server) checkAdmin(api huma.API, ctx huma.Context) bool {
	token, _ := strings.CutPrefix(ctx.Header("Authorization"), "Bearer ")
	token = strings.TrimSpace(token)
	switch {
	case s.AdminToken == "":
		_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "the operator API is off: the server has no HMP_ADMIN_TOKEN")
		return false
	case subtle.ConstantTimeCompare([]byte(token), []byte(s.AdminToken)) != 1:
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="hmp-operator"`)
		_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "missing or wrong operator token in the Authorization header")
		return false
	}
	return true
}
