// Package httpapitest spells the HTTP API's JSON as a client test writes
// and reads it, apart from any server: the edge's own tests (package
// httpapi) and the whole app's (apptest) share one copy of the wire shapes,
// so that a field renamed on the wire is renamed in one place.
package httpapitest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// Txn is the body of a revenue or expense create.
type Txn struct {
	PropertyID    string `json:"propertyId"`
	Source        string `json:"source,omitempty"`
	Category      string `json:"category,omitempty"`
	AmountCents   int64  `json:"amountCents"`
	PaymentMode   string `json:"paymentMode"`
	OccurredAt    string `json:"occurredAt"`
	Description   string `json:"description,omitempty"`
	BankReference string `json:"bankReference,omitempty"`
}

// WithKind fills the kind-specific field of a create body: source room for
// a revenue, category supplies for an expense, unless set.
func WithKind(kind string, b Txn) Txn {
	if kind == "revenue" && b.Source == "" {
		b.Source = "room"
	}
	if kind == "expense" && b.Category == "" {
		b.Category = "supplies"
	}
	return b
}

// Row is a revenue or an expense as the API returns it, with every field.
type Row struct {
	ID            string    `json:"id"`
	PropertyID    string    `json:"propertyId"`
	Source        string    `json:"source"`
	Category      string    `json:"category"`
	AmountCents   int64     `json:"amountCents"`
	Currency      string    `json:"currency"`
	PaymentMode   string    `json:"paymentMode"`
	OccurredAt    time.Time `json:"occurredAt"`
	BusinessDate  string    `json:"businessDate"`
	BankReference string    `json:"bankReference"`
	Description   string    `json:"description"`
	Status        string    `json:"status"`
	Version       int       `json:"version"`
	CreatedBy     string    `json:"createdBy"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedBy     string    `json:"updatedBy"`
	UpdatedAt     time.Time `json:"updatedAt"`
	ReviewedBy    string    `json:"reviewedBy"`
	ReviewedAt    string    `json:"reviewedAt"`
	ReviewNotes   string    `json:"reviewNotes"`
}

// Operation is one (method, path) of the served OpenAPI document.
type Operation struct {
	Method, Path string
	// Secured: the operation wants a bearer token; Admin: the operator's
	// (HMP_ADMIN_TOKEN), not a user's.
	Secured, Admin bool
}

func (o Operation) String() string { return o.Method + " " + o.Path }

// Operations lists every operation under /v1 that doc (the body of GET
// /openapi.json) documents, sorted; it fails the test when doc is no
// OpenAPI document or lists none.
func Operations(tb testing.TB, doc []byte) []Operation {
	tb.Helper()
	var d struct {
		Paths map[string]map[string]struct {
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		tb.Fatalf("decode the OpenAPI document: %v", err)
	}
	var ops []Operation
	for path, methods := range d.Paths {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for method, op := range methods {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				admin := slices.ContainsFunc(op.Security, func(s map[string][]string) bool { _, ok := s["operator"]; return ok })
				ops = append(ops, Operation{Method: strings.ToUpper(method), Path: path, Secured: len(op.Security) > 0, Admin: admin})
			}
		}
	}
	if len(ops) == 0 {
		tb.Fatalf("the OpenAPI document lists no /v1 operations")
	}
	slices.SortFunc(ops, func(a, b Operation) int { return strings.Compare(a.String(), b.String()) })
	return ops
}
