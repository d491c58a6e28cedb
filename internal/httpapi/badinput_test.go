package httpapi_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBadInputWritesNothing sends every kind of bad request API.md names
// and checks each answer (status, problem+json, the offending field in
// errors[].location), then that none of them wrote anything.
func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	a := setup(t)
	a.clock.Set(baseTime)
	o := a.org("Sea Side Stays")
	admin := o.adminToken
	ghost := "01900000-0000-7000-8000-000000000000"
	before := a.state(admin)

	// revenue returns a revenue create body as JSON text, with fields
	// replaced (a value of nil drops the field). JSON values are given as
	// their literal text.
	revenue := func(changes ...string) string {
		fields := [][2]string{
			{"propertyId", `"` + o.propertyID + `"`}, {"source", `"room"`}, {"amountCents", "5000"},
			{"paymentMode", `"cash"`}, {"occurredAt", `"` + morning + `"`},
		}
		return jsonObject(fields, changes...)
	}
	expense := func(changes ...string) string {
		fields := [][2]string{
			{"propertyId", `"` + o.propertyID + `"`}, {"category", `"laundry"`}, {"amountCents", "5000"},
			{"paymentMode", `"cash"`}, {"occurredAt", `"` + morning + `"`},
		}
		return jsonObject(fields, changes...)
	}
	revenues, expenses := rows("revenue"), rows("expense")
	huge := `{"propertyId":"` + o.propertyID + `","source":"room","amountCents":1,"paymentMode":"cash","occurredAt":"` + morning +
		`","description":"` + strings.Repeat("x", 1<<20) + `"}`

	for _, tc := range []struct {
		name     string
		method   string
		path     string
		body     string
		status   int
		location string // the field named in errors[].location; "" when none is expected
	}{
		// Not JSON, or not an object.
		{"malformed JSON", "POST", revenues, `{"propertyId": "` + o.propertyID + `", "amountCents": 50`, 400, ""},
		{"trailing garbage", "POST", revenues, revenue() + ` }`, 400, ""},
		{"a JSON array", "POST", revenues, `[` + revenue() + `]`, 400, ""},
		{"an empty JSON array", "POST", expenses, `[]`, 400, ""},
		{"a JSON string", "POST", revenues, `"room 5000 cash"`, 400, ""},
		{"a JSON number", "POST", revenues, `5000`, 400, ""},
		{"JSON null", "POST", revenues, `null`, 400, ""},
		{"an array to a patch", "PATCH", revenues + "/" + ghost, `[{"amountCents": 1}]`, 400, ""},

		// Unknown fields and wrong types.
		{"an unknown field", "POST", revenues, revenue("status", `"approved"`), 422, "body.status"},
		{"a category on a revenue", "POST", revenues, revenue("category", `"food"`), 422, "body.category"},
		{"a source on an expense", "POST", expenses, expense("source", `"room"`), 422, "body.source"},
		{"amount as a string", "POST", revenues, revenue("amountCents", `"5000"`), 422, "body.amountCents"},
		{"amount with a fraction", "POST", revenues, revenue("amountCents", `50.5`), 422, "body.amountCents"},
		{"payment mode as a number", "POST", revenues, revenue("paymentMode", `1`), 422, "body.paymentMode"},
		{"occurredAt as a number", "POST", expenses, expense("occurredAt", `1781500000`), 422, "body.occurredAt"},
		{"propertyId as a number", "POST", revenues, revenue("propertyId", `42`), 422, "body.propertyId"},
		{"description as a boolean", "POST", revenues, revenue("description", `true`), 422, "body.description"},
		{"propertyId not a UUID", "POST", revenues, revenue("propertyId", `"sea-view"`), 422, "body.propertyId"},
		{"amount in exponent form", "POST", revenues, revenue("amountCents", `1e3`), 422, "body.amountCents"},
		{"amount with a zero fraction", "POST", expenses, expense("amountCents", `100.0`), 422, "body.amountCents"},

		// Missing required fields.
		{"an empty object", "POST", revenues, `{}`, 422, "body.amountCents"},
		{"no propertyId", "POST", revenues, revenue("propertyId", ""), 422, "body.propertyId"},
		{"no amount", "POST", revenues, revenue("amountCents", ""), 422, "body.amountCents"},
		{"no payment mode", "POST", expenses, expense("paymentMode", ""), 422, "body.paymentMode"},
		{"no occurredAt", "POST", expenses, expense("occurredAt", ""), 422, "body.occurredAt"},
		{"no source", "POST", revenues, revenue("source", ""), 422, "body.source"},
		{"no category", "POST", expenses, expense("category", ""), 422, "body.category"},

		// Out of range.
		{"amount 0", "POST", revenues, revenue("amountCents", "0"), 422, "body.amountCents"},
		{"amount -5", "POST", expenses, expense("amountCents", "-5"), 422, "body.amountCents"},
		{"amount 10^15 + 1", "POST", revenues, revenue("amountCents", "1000000000000001"), 422, "body.amountCents"},
		{"amount beyond int64", "POST", revenues, revenue("amountCents", "99999999999999999999"), 422, "body.amountCents"},
		{"payment mode card", "POST", revenues, revenue("paymentMode", `"card"`), 422, "body.paymentMode"},
		{"payment mode in capitals", "POST", expenses, expense("paymentMode", `"CASH"`), 422, "body.paymentMode"},
		{"source spa", "POST", revenues, revenue("source", `"spa"`), 422, "body.source"},
		{"a blank category", "POST", expenses, expense("category", `"   "`), 422, "body.category"},
		{"an empty category", "POST", expenses, expense("category", `""`), 422, "body.category"},
		{"a category of 101 characters", "POST", expenses, expense("category", `"`+strings.Repeat("c", 101)+`"`), 422, "body.category"},
		{"a description of 1001 characters", "POST", revenues, revenue("description", `"`+strings.Repeat("d", 1001)+`"`), 422, "body.description"},
		{"a bank reference of 101 characters", "POST", revenues, revenue("bankReference", `"`+strings.Repeat("r", 101)+`"`), 422, "body.bankReference"},
		{"a NUL in a description", "POST", revenues, revenue("description", `"a\u0000b"`), 422, "body.description"},
		{"a NUL in a bank reference", "POST", expenses, expense("bankReference", `"\u0000"`), 422, "body.bankReference"},
		{"a NUL in a category", "POST", expenses, expense("category", `"food\u0000"`), 422, "body.category"},
		{"occurredAt before 2000", "POST", revenues, revenue("occurredAt", `"1999-12-31T23:59:59Z"`), 422, "body.occurredAt"},
		{"occurredAt over a year ahead", "POST", expenses, expense("occurredAt", `"2027-06-16T06:30:00Z"`), 422, "body.occurredAt"},
		{"occurredAt on 30 February", "POST", revenues, revenue("occurredAt", `"2026-02-30T10:00:00Z"`), 422, "body.occurredAt"},
		{"occurredAt in month 13", "POST", revenues, revenue("occurredAt", `"2026-13-01T10:00:00Z"`), 422, "body.occurredAt"},
		{"occurredAt at 25 o'clock", "POST", revenues, revenue("occurredAt", `"2026-06-15T25:00:00Z"`), 422, "body.occurredAt"},
		{"occurredAt without a time", "POST", revenues, revenue("occurredAt", `"2026-06-15"`), 422, "body.occurredAt"},
		{"occurredAt without a zone", "POST", revenues, revenue("occurredAt", `"2026-06-15T10:00:00"`), 422, "body.occurredAt"},

		// References that do not resolve.
		{"an unknown propertyId", "POST", revenues, revenue("propertyId", `"`+ghost+`"`), 404, "body.propertyId"},
		{"an unknown propertyId on an expense", "POST", expenses, expense("propertyId", `"`+ghost+`"`), 404, "body.propertyId"},

		// Properties.
		{"an invalid time zone", "POST", "/v1/properties", `{"name": "Moon Base", "type": "hotel", "timezone": "Mars/Olympus_Mons"}`, 422, "body.timezone"},
		{"the Local time zone", "POST", "/v1/properties", `{"name": "Moon Base", "type": "hotel", "timezone": "Local"}`, 422, "body.timezone"},
		{"a zone offset instead of a zone", "POST", "/v1/properties", `{"name": "Moon Base", "type": "hotel", "timezone": "+05:30"}`, 422, "body.timezone"},
		{"an unknown property type", "POST", "/v1/properties", `{"name": "Moon Base", "type": "castle"}`, 422, "body.type"},
		{"a lower-case currency", "POST", "/v1/properties", `{"name": "Moon Base", "type": "hotel", "currency": "inr"}`, 422, "body.currency"},
		{"a blank property name", "POST", "/v1/properties", `{"name": "  ", "type": "hotel"}`, 422, "body.name"},
		{"a NUL in a property name", "POST", "/v1/properties", `{"name": "Sea\u0000View", "type": "hotel"}`, 422, "body.name"},

		// Reviews, signup and login.
		{"a NUL in review notes", "POST", revenues + "/" + ghost + "/approve", `{"notes": "ok\u0000"}`, 422, "body.notes"},
		{"review notes of 1001 characters", "POST", expenses + "/" + ghost + "/reject", `{"notes": "` + strings.Repeat("n", 1001) + `"}`, 422, "body.notes"},
		{"a NUL in an organization name", "POST", "/v1/auth/signup", `{"orgName": "Sea\u0000Side", "email": "nul@example.test", "password": "long enough", "displayName": "N"}`, 422, "body.orgName"},
		{"a NUL in a display name", "POST", "/v1/users", `{"email": "nul@example.test", "password": "long enough", "displayName": "\u0000", "role": "MANAGER"}`, 422, "body.displayName"},
		{"a NUL in a login email", "POST", "/v1/auth/login", `{"email": "owner\u0000@example.test", "password": "long enough"}`, 401, ""},
		{"a NUL in a signup email", "POST", "/v1/auth/signup", `{"orgName": "X", "email": "nul\u0000@example.test", "password": "long enough", "displayName": "N"}`, 422, "body.email"},
		{"an invalid email at signup", "POST", "/v1/auth/signup", `{"orgName": "X", "email": "not an email", "password": "long enough", "displayName": "N"}`, 422, "body.email"},

		// Daily approvals.
		{"a daily approval on 30 February", "POST", "/v1/finance/daily-approvals", `{"managerUserId": "` + o.managerID + `", "date": "2026-02-30"}`, 422, "body.date"},
		{"a daily approval for an unknown user", "POST", "/v1/finance/daily-approvals", `{"managerUserId": "` + ghost + `", "date": "` + baseDate + `"}`, 404, "body.managerUserId"},
		{"a daily approval for an ADMIN", "POST", "/v1/finance/daily-approvals", `{"managerUserId": "` + o.adminID + `", "date": "` + baseDate + `"}`, 422, "body.managerUserId"},
		{"a daily approval before 2000", "POST", "/v1/finance/daily-approvals", `{"managerUserId": "` + o.managerID + `", "date": "1999-12-31"}`, 422, "body.date"},

		// Query strings of the lists.
		{"a start date that does not exist", "GET", revenues + "?startDate=2026-02-30", "", 422, "query.startDate"},
		{"an end date before the start date", "GET", expenses + "?startDate=2026-06-10&endDate=2026-06-01", "", 422, "query.endDate"},
		{"an unknown status", "GET", revenues + "?status=deleted", "", 422, "query.status"},
		{"a limit of 0", "GET", revenues + "?limit=0", "", 422, "query.limit"},
		{"a limit of 501", "GET", revenues + "?limit=501", "", 422, "query.limit"},
		{"a forged cursor", "GET", revenues + "?cursor=not-a-cursor", "", 422, "query.cursor"},
		{"a forged event cursor", "GET", "/v1/finance/events?cursor=abc", "", 422, "query.cursor"},
		{"an unknown event entity type", "GET", "/v1/finance/events?entityType=invoice", "", 422, "query.entityType"},
		{"an id that is not a UUID", "GET", revenues + "/42", "", 422, "path.id"},

		// Size.
		{"a body over 1 MiB", "POST", revenues, huge, 413, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := a.in(t)
			var body any
			if tc.body != "" {
				body = tc.body
			}
			p := mustProblem(t, a.do(tc.method, tc.path, admin, body), tc.status)
			if tc.location != "" {
				mustLocations(t, p, tc.location)
			}
		})
	}

	t.Run("a body over 1 MiB without a length", func(t *testing.T) {
		// Of unknown length, as a chunked body reaches the handler: the
		// edge only learns the size by reading.
		req := httptest.NewRequest("POST", revenues, io.MultiReader(strings.NewReader(huge)))
		if req.ContentLength != -1 {
			t.Fatalf("ContentLength = %d, want -1 (unknown)", req.ContentLength)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+admin)
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, req)
		mustProblem(t, answer{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}, 413)
	})

	t.Run("nothing was written", func(t *testing.T) {
		a := a.in(t)
		for _, kind := range []string{"revenue", "expense"} {
			if rows := a.list(admin, kind, ""); len(rows) != 0 {
				t.Fatalf("bad requests wrote %d %ss: %+v", len(rows), kind, rows)
			}
		}
		if evs := a.events(admin, ""); len(evs) != 0 {
			t.Fatalf("bad requests wrote %d events, the first %s", len(evs), evs[0].EventType)
		}
		var props struct{ Items []struct{ Name string } }
		a.must(200, "GET", "/v1/properties", admin, nil, &props)
		if len(props.Items) != 1 || props.Items[0].Name != "North" {
			t.Fatalf("properties = %+v, want only North", props.Items)
		}
		if after := a.state(admin); !equalState(before, after) {
			t.Fatalf("bad requests changed the organization's tables: %+v, was %+v", after, before)
		}
	})
}

// TestBadPatchChangesNothing sends invalid changes to an existing row: each
// is refused naming the field, and the row and its history stay as they
// were.
func TestBadPatchChangesNothing(t *testing.T) {
	t.Parallel()
	a := setup(t)
	a.clock.Set(baseTime)
	o := a.org("Sea Side Stays")
	admin := o.adminToken
	other := a.org("Other Org")
	foreignProp := other.propertyID
	created := map[string]row{
		"revenue": a.create(admin, "revenue", cash("revenue", o.propertyID, 5000)),
		"expense": a.create(admin, "expense", cash("expense", o.propertyID, 5000)),
	}
	for _, tc := range []struct {
		name     string
		kind     string
		body     string
		status   int
		location string
	}{
		{"malformed JSON", "revenue", `{"amountCents": `, 400, ""},
		{"a JSON string", "revenue", `"more"`, 400, ""},
		{"an unknown field", "revenue", `{"status": "approved"}`, 422, "body.status"},
		{"amount 0", "revenue", `{"amountCents": 0}`, 422, "body.amountCents"},
		{"amount -5", "expense", `{"amountCents": -5}`, 422, "body.amountCents"},
		{"amount 10^15 + 1", "revenue", `{"amountCents": 1000000000000001}`, 422, "body.amountCents"},
		{"amount as a string", "revenue", `{"amountCents": "10"}`, 422, "body.amountCents"},
		{"payment mode card", "expense", `{"paymentMode": "card"}`, 422, "body.paymentMode"},
		{"source spa", "revenue", `{"source": "spa"}`, 422, "body.source"},
		{"a source on an expense", "expense", `{"source": "room"}`, 422, "body.source"},
		{"a category on a revenue", "revenue", `{"category": "food"}`, 422, "body.category"},
		{"a blank category", "expense", `{"category": "   "}`, 422, "body.category"},
		{"a NUL in a description", "revenue", `{"description": "\u0000"}`, 422, "body.description"},
		{"amount in exponent form", "expense", `{"amountCents": 1e2}`, 422, "body.amountCents"},
		{"occurredAt before 2000", "revenue", `{"occurredAt": "1999-01-01T00:00:00Z"}`, 422, "body.occurredAt"},
		{"occurredAt on 30 February", "expense", `{"occurredAt": "2026-02-30T10:00:00Z"}`, 422, "body.occurredAt"},
		{"occurredAt over a year ahead", "revenue", `{"occurredAt": "2027-07-01T00:00:00Z"}`, 422, "body.occurredAt"},
		{"propertyId not a UUID", "revenue", `{"propertyId": "x"}`, 422, "body.propertyId"},
		{"an unknown propertyId", "revenue", `{"propertyId": "01900000-0000-7000-8000-000000000000"}`, 404, "body.propertyId"},
		{"another organization's property", "expense", `{"propertyId": "` + foreignProp + `"}`, 404, "body.propertyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := a.in(t)
			r := created[tc.kind]
			p := mustProblem(t, a.do("PATCH", rows(tc.kind)+"/"+r.ID, admin, tc.body), tc.status)
			if tc.location != "" {
				mustLocations(t, p, tc.location)
			}
			if got := a.get(admin, tc.kind, r.ID); got != r {
				t.Fatalf("row changed: %+v, was %+v", got, r)
			}
		})
	}
	for kind, r := range created {
		if evs := a.entityEvents(admin, r.ID); len(evs) != 1 {
			t.Fatalf("%s %s has %d events after bad patches, want 1", kind, r.ID, len(evs))
		}
	}
}

// jsonObject renders fields as a JSON object after applying changes, name
// and literal pairs: an empty literal drops the field, an unknown name is
// added.
func jsonObject(fields [][2]string, changes ...string) string {
	for i := 0; i+1 < len(changes); i += 2 {
		name, lit := changes[i], changes[i+1]
		found := false
		for j := range fields {
			if fields[j][0] == name {
				fields[j][1], found = lit, true
			}
		}
		if !found {
			fields = append(fields, [2]string{name, lit})
		}
	}
	parts := make([]string, 0, len(fields))
	for _, fl := range fields {
		if fl[1] != "" {
			parts = append(parts, fmt.Sprintf("%q: %s", fl[0], fl[1]))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
