package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/domain"
)

type historyState struct {
	PropertyID    string    `json:"propertyId" format:"uuid"`
	Status        string    `json:"status"`
	AmountCents   int64     `json:"amountCents"`
	Currency      string    `json:"currency"`
	PaymentMode   string    `json:"paymentMode"`
	BusinessDate  string    `json:"businessDate" format:"date"`
	OccurredAt    time.Time `json:"occurredAt,omitzero"`
	Source        string    `json:"source,omitempty"`
	Category      string    `json:"category,omitempty"`
	Description   string    `json:"description,omitempty"`
	BankReference string    `json:"bankReference,omitempty"`
}

type fieldChangeBody struct {
	Field  string `json:"field"`
	Before any    `json:"before"`
	After  any    `json:"after"`
}

type historyEntry struct {
	Version   int               `json:"version" doc:"the row's version after this change (its ETag)"`
	EventID   string            `json:"eventId" format:"uuid"`
	EventType string            `json:"eventType"`
	Action    string            `json:"action" enum:"added,updated,approved,rejected,deleted"`
	UserID    string            `json:"userId" format:"uuid" doc:"who made the change"`
	At        time.Time         `json:"at"`
	Before    *historyState     `json:"before" doc:"the row before the change; null for the creation"`
	After     *historyState     `json:"after" doc:"the row after the change; null for the deletion"`
	Changes   []fieldChangeBody `json:"changes" doc:"the fields that differ between before and after"`
	Notes     string            `json:"notes,omitempty"`
}

type historyOutput struct {
	Body struct {
		Items []historyEntry `json:"items"`
	}
}

func toHistoryState(s *domain.TransactionState) *historyState {
	if s == nil {
		return nil
	}
	return &historyState{PropertyID: s.PropertyID.String(), Status: string(s.Status), AmountCents: s.AmountCents,
		Currency: s.Currency, PaymentMode: string(s.PaymentMode), BusinessDate: s.BusinessDate.String(), OccurredAt: s.OccurredAt,
		Source: s.Source, Category: s.Category, Description: s.Description, BankReference: s.BankReference}
}

// registerHistory registers GET /v1/finance/{revenues|expenses}/{id}/history:
// the audit trail of one row (also of a deleted one), oldest first.
func (s *server) registerHistory(api huma.API) {
	h := s.help
	for kind, plural := range map[domain.Kind]string{domain.Revenue: "revenues", domain.Expense: "expenses"} {
		register(api, s.help, Secured(huma.Operation{
			OperationID: "history" + string(kind), Method: http.MethodGet, Path: "/v1/finance/" + plural + "/{id}/history",
			Tags: []string{"finance"}, Summary: "Audit trail of one " + string(kind) + ": who changed what, before and after, oldest first",
			Errors: []int{400, 401, 404, 422},
		}), func(ctx context.Context, in *idInput) (*historyOutput, error) {
			id, err := parseID("path.id", in.ID)
			if err != nil {
				return nil, err
			}
			changes, err := s.Finance.History(ctx, h.Actor(ctx), kind, id)
			if err != nil {
				return nil, err
			}
			out := &historyOutput{}
			out.Body.Items = make([]historyEntry, len(changes))
			for i, c := range changes {
				e := historyEntry{Version: c.Version, EventID: c.EventID.String(), EventType: string(c.Type), Action: string(c.Action),
					UserID: c.UserID.String(), At: c.At, Before: toHistoryState(c.Before), After: toHistoryState(c.After),
					Changes: make([]fieldChangeBody, len(c.Fields)), Notes: c.Notes}
				for j, f := range c.Fields {
					e.Changes[j] = fieldChangeBody{Field: f.Field, Before: f.Before, After: f.After}
				}
				out.Body.Items[i] = e
			}
			return out, nil
		})
	}
}
