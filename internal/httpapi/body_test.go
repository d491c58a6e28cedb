package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A JSON field name matches its field exactly or not at all: encoding/json
// would take a name in another case, and the last of two, while the
// schema validated another value (a 500-character limit passed with
// {"reason":"ok","REASON":"<5,000 chars>"}). Duplicates and case variants
// answer 422 at the name sent.
func TestHostileBodyFieldNames(t *testing.T) {
	t.Parallel()
	a := setup(t)
	o := a.org("Field Names")
	body := func(fields string) string {
		return fmt.Sprintf(`{"propertyId":%q,"amountCents":5000,"occurredAt":%q,%s}`,
			o.propertyID, revenue(o.propertyID)["occurredAt"], fields)
	}
	for _, tc := range []struct{ name, body, location, message string }{
		{"a case variant after the field", body(`"source":"room","paymentMode":"cash","PAYMENTMODE":"bank"`),
			"body.PAYMENTMODE", "differ only in case"},
		{"a case variant before the field", body(`"source":"room","PaymentMode":"bank","paymentMode":"cash"`),
			"body.PaymentMode", "case-sensitive"},
		{"the same name twice", body(`"source":"room","source":"addon","paymentMode":"cash"`),
			"body.source", "duplicate field"},
		{"a case variant alone", body(`"Source":"room","paymentMode":"cash"`),
			"body.Source", `did you mean "source"`},
		{"a variant only Unicode folding matches", body(`"ſource":"room","paymentMode":"cash"`),
			"body.ſource", `did you mean "source"`},
		{"a long case variant past a limit", fmt.Sprintf(`{"orgName":"ok","ORGNAME":%q,"email":"long@example.test",`+
			`"password":"correct horse","displayName":"A"}`, strings.Repeat("x", 5000)),
			"body.ORGNAME", "differ only in case"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, token := "/v1/finance/revenues", o.adminToken
			if strings.Contains(tc.body, "orgName") {
				path, token = "/v1/auth/signup", ""
			}
			res := a.do("POST", path, token, tc.body)
			if res.Status != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s, want 422", res.Status, res.Body)
			}
			p := res.problem(t)
			if len(p.Errors) == 0 || p.Errors[0].Location != tc.location || !strings.Contains(p.Errors[0].Message, tc.message) {
				t.Fatalf("errors %+v, want %s: …%s…", p.Errors, tc.location, tc.message)
			}
		})
	}
	t.Run("the exact names pass", func(t *testing.T) {
		a.must(201, "POST", "/v1/finance/revenues", o.adminToken, body(`"source":"room","paymentMode":"cash"`), nil)
	})
}

// A number too large for any Go type is out of range at its field, like
// every other one, and no answer carries Go's error text.
func TestHostileHugeNumbers(t *testing.T) {
	t.Parallel()
	a := setup(t)
	o := a.org("Huge Numbers")
	for _, n := range []string{"1e400", "-1e400", "1e16", "123456789012345678901234567890"} {
		t.Run(n, func(t *testing.T) {
			body := fmt.Sprintf(`{"propertyId":%q,"source":"room","amountCents":%s,"paymentMode":"cash","occurredAt":%q}`,
				o.propertyID, n, revenue(o.propertyID)["occurredAt"])
			res := a.do("POST", "/v1/finance/revenues", o.adminToken, body)
			if res.Status != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s, want 422", res.Status, res.Body)
			}
			p := res.problem(t)
			if len(p.Errors) != 1 || p.Errors[0].Location != "body.amountCents" {
				t.Fatalf("errors %+v, want one at body.amountCents", p.Errors)
			}
			for _, goText := range []string{"Go ", "float64", "int64", "json:", "strconv"} {
				if strings.Contains(string(res.Body), goText) {
					t.Fatalf("answer carries %q: %s", goText, res.Body)
				}
			}
		})
	}
	t.Run("malformed JSON says so without Go's text", func(t *testing.T) {
		res := a.do("POST", "/v1/finance/revenues", o.adminToken, `{"amountCents": 1e400,}`)
		if res.Status != http.StatusBadRequest || strings.Contains(string(res.Body), "Go ") ||
			!strings.Contains(string(res.Body), "malformed JSON") {
			t.Fatalf("%d %s, want 400 malformed JSON", res.Status, res.Body)
		}
	})
}
