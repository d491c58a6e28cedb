package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestIdempotencyKeyHeader: a key that is not printable ASCII (bytes that
// are not UTF-8 used to reach PostgreSQL and answer 500) or longer than
// 255 characters is refused with 422 at header.Idempotency-Key, and
// nothing is written; a good key creates the row.
func TestIdempotencyKeyHeader(t *testing.T) {
	t.Parallel()
	a := setup(t)
	o := a.org("Key Checks")
	// One body for every request: the replay below must send the same.
	raw, err := json.Marshal(revenue(o.propertyID))
	if err != nil {
		t.Fatal(err)
	}
	post := func(key string) answer {
		t.Helper()
		req := httptest.NewRequest("POST", "/v1/finance/revenues", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+o.adminToken)
		req.Header.Set("Idempotency-Key", key)
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, req)
		return answer{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	}
	for name, key := range map[string]string{
		"not UTF-8":    "key-\xff\xfe",
		"control byte": "key-\x01",
		"non-ASCII":    "clé",
		"too long":     strings.Repeat("k", 256),
	} {
		res := post(key)
		if res.Status != 422 {
			t.Errorf("%s: %d %s, want 422", name, res.Status, res.Body)
			continue
		}
		if p := res.problem(t); len(p.Errors) != 1 || p.Errors[0].Location != "header.Idempotency-Key" {
			t.Errorf("%s: problem %+v, want one error at header.Idempotency-Key", name, p)
		}
	}
	var list struct{ Items []json.RawMessage }
	a.must(200, "GET", "/v1/finance/revenues?propertyId="+o.propertyID, o.adminToken, nil, &list)
	if len(list.Items) != 0 {
		t.Fatalf("refused keys wrote %d rows", len(list.Items))
	}
	if res := post("good key ~ 42"); res.Status != 201 {
		t.Fatalf("a printable key: %d %s, want 201", res.Status, res.Body)
	}
	if res := post("good key ~ 42"); res.Status != 201 || res.Header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("the same key again: %d replayed=%q, want the recorded 201", res.Status, res.Header.Get("Idempotency-Replayed"))
	}
}
