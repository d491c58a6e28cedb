package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
)

// transactionBody is a revenue or an expense as the API shows it.
type transactionBody struct {
	ID            string     `json:"id" format:"uuid"`
	PropertyID    string     `json:"propertyId" format:"uuid"`
	Source        string     `json:"source,omitempty" enum:"room,addon,other" doc:"revenues only"`
	Category      string     `json:"category,omitempty" doc:"expenses only"`
	AmountCents   int64      `json:"amountCents"`
	Currency      string     `json:"currency"`
	PaymentMode   string     `json:"paymentMode" enum:"cash,bank"`
	OccurredAt    time.Time  `json:"occurredAt"`
	BusinessDate  string     `json:"businessDate" format:"date" doc:"calendar date of occurredAt in the property's time zone"`
	BankReference string     `json:"bankReference,omitempty"`
	Description   string     `json:"description,omitempty"`
	Status        string     `json:"status" enum:"pending,approved,rejected"`
	Version       int        `json:"version"`
	CreatedBy     string     `json:"createdBy" format:"uuid"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedBy     string     `json:"updatedBy" format:"uuid"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	ReviewedBy    string     `json:"reviewedBy,omitempty" format:"uuid"`
	ReviewedAt    *time.Time `json:"reviewedAt,omitempty"`
	ReviewNotes   string     `json:"reviewNotes,omitempty"`
}

func toTransactionBody(t finance.Transaction) transactionBody {
	b := transactionBody{
		ID: t.ID.String(), PropertyID: t.PropertyID.String(), Source: t.Source, Category: t.Category,
		AmountCents: t.AmountCents, Currency: t.Currency, PaymentMode: string(t.PaymentMode), OccurredAt: t.OccurredAt,
		BusinessDate: t.BusinessDate.String(), BankReference: t.BankReference, Description: t.Description,
		Status: string(t.Status), Version: t.Version, CreatedBy: t.CreatedBy.String(), CreatedAt: t.CreatedAt,
		UpdatedBy: t.UpdatedBy.String(), UpdatedAt: t.UpdatedAt, ReviewedAt: t.ReviewedAt, ReviewNotes: t.ReviewNotes,
	}
	if t.ReviewedBy != nil {
		b.ReviewedBy = t.ReviewedBy.String()
	}
	return b
}

type revenueCreate struct {
	PropertyID    string    `json:"propertyId" format:"uuid"`
	Source        string    `json:"source" enum:"room,addon,other"`
	AmountCents   int64     `json:"amountCents" minimum:"1" maximum:"1000000000000000"`
	PaymentMode   string    `json:"paymentMode" enum:"cash,bank"`
	OccurredAt    time.Time `json:"occurredAt" doc:"RFC 3339; from 2000-01-01 to one year after today"`
	BankReference *string   `json:"bankReference,omitempty" maxLength:"100"`
	Description   *string   `json:"description,omitempty" maxLength:"1000"`
}

type expenseCreate struct {
	PropertyID    string    `json:"propertyId" format:"uuid"`
	Category      string    `json:"category" minLength:"1" maxLength:"100"`
	AmountCents   int64     `json:"amountCents" minimum:"1" maximum:"1000000000000000"`
	PaymentMode   string    `json:"paymentMode" enum:"cash,bank"`
	OccurredAt    time.Time `json:"occurredAt" doc:"RFC 3339; from 2000-01-01 to one year after today"`
	BankReference *string   `json:"bankReference,omitempty" maxLength:"100"`
	Description   *string   `json:"description,omitempty" maxLength:"1000"`
}

type createInput[B any] struct {
	Body B
}

type patchBody struct {
	PropertyID    *string    `json:"propertyId,omitempty" format:"uuid"`
	Source        *string    `json:"source,omitempty" enum:"room,addon,other" doc:"revenues only"`
	Category      *string    `json:"category,omitempty" minLength:"1" maxLength:"100" doc:"expenses only"`
	AmountCents   *int64     `json:"amountCents,omitempty" minimum:"1" maximum:"1000000000000000"`
	PaymentMode   *string    `json:"paymentMode,omitempty" enum:"cash,bank"`
	OccurredAt    *time.Time `json:"occurredAt,omitempty"`
	BankReference *string    `json:"bankReference,omitempty" maxLength:"100"`
	Description   *string    `json:"description,omitempty" maxLength:"1000"`
}

type patchInput struct {
	ID      string `path:"id" format:"uuid"`
	IfMatch string `header:"If-Match" maxLength:"200" doc:"the ETag last read: the change is made only if the row is still at that version, else 412"`
	Body    patchBody
}

type idMatchInput struct {
	ID      string `path:"id" format:"uuid"`
	IfMatch string `header:"If-Match" maxLength:"200" doc:"the ETag last read: the change is made only if the row is still at that version, else 412"`
}

type idInput struct {
	ID string `path:"id" format:"uuid"`
}

type reviewInput struct {
	ID      string `path:"id" format:"uuid"`
	IfMatch string `header:"If-Match" maxLength:"200" doc:"the ETag last read: the decision is made only if the row is still at that version, else 412"`
	Body    *struct {
		Notes string `json:"notes,omitempty" maxLength:"1000"`
	}
}

type transactionOutput struct {
	ConsistencyToken string `header:"X-Consistency-Token" doc:"send back on reads to see this write"`
	ETag             string `header:"ETag" doc:"the row's version; send it back in If-Match to change the row only if nobody changed it meanwhile"`
	Body             transactionBody
}

type listInput struct {
	PropertyID string `query:"propertyId" format:"uuid"`
	StartDate  string `query:"startDate" format:"date"`
	EndDate    string `query:"endDate" format:"date"`
	Status     string `query:"status" enum:"pending,approved,rejected"`
	Limit      int    `query:"limit" minimum:"1" maximum:"500" default:"50"`
	Cursor     string `query:"cursor" maxLength:"200"`
}

type listOutput struct {
	Body struct {
		Items      []transactionBody `json:"items"`
		NextCursor *string           `json:"nextCursor"`
	}
}

type deleteOutput struct {
	Status           int
	ConsistencyToken string `header:"X-Consistency-Token"`
	Body             *struct {
		DeletionRequestID string `json:"deletionRequestId" format:"uuid"`
	}
}

type decisionOutput struct {
	ConsistencyToken string `header:"X-Consistency-Token"`
	Body             struct {
		ID     string `json:"id" format:"uuid"`
		Status string `json:"status" enum:"pending,approved,rejected"`
	}
}

type dailyApprovalInput struct {
	Body struct {
		ManagerUserID string `json:"managerUserId" format:"uuid"`
		Date          string `json:"date" format:"date"`
	}
}

type dailyApprovalOutput struct {
	ConsistencyToken string `header:"X-Consistency-Token"`
	Body             struct {
		ID            string    `json:"id" format:"uuid"`
		ManagerUserID string    `json:"managerUserId" format:"uuid"`
		Date          string    `json:"date" format:"date"`
		GrantedBy     string    `json:"grantedBy" format:"uuid"`
		GrantedAt     time.Time `json:"grantedAt"`
	}
}

type eventsInput struct {
	EntityType string `query:"entityType" enum:"revenue,expense,daily_approval,cash_balance"`
	EntityID   string `query:"entityId" format:"uuid"`
	PropertyID string `query:"propertyId" format:"uuid"`
	Limit      int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Cursor     string `query:"cursor" maxLength:"40"`
}

type eventBody struct {
	EventID          string    `json:"eventId" format:"uuid"`
	EventVersion     string    `json:"eventVersion"`
	EventType        string    `json:"eventType"`
	OrgID            string    `json:"orgId" format:"uuid"`
	PropertyID       *string   `json:"propertyId"`
	UserID           string    `json:"userId" format:"uuid"`
	EntityType       string    `json:"entityType"`
	EntityID         string    `json:"entityId" format:"uuid"`
	AggregateVersion int       `json:"aggregateVersion"`
	Timestamp        time.Time `json:"timestamp"`
	Metadata         any       `json:"metadata"`
	Sequence         int64     `json:"sequence"`
}

type eventsOutput struct {
	Body struct {
		Items      []eventBody `json:"items"`
		NextCursor *string     `json:"nextCursor"`
	}
}

func (s *server) registerFinance(api huma.API) {
	registerKind(s, api, domain.Revenue, "revenues", func(b *revenueCreate) (finance.CreateInput, error) {
		return createFields(b.PropertyID, b.AmountCents, b.PaymentMode, b.OccurredAt, b.BankReference, b.Description, b.Source, "")
	})
	registerKind(s, api, domain.Expense, "expenses", func(b *expenseCreate) (finance.CreateInput, error) {
		return createFields(b.PropertyID, b.AmountCents, b.PaymentMode, b.OccurredAt, b.BankReference, b.Description, "", b.Category)
	})
	s.registerHistory(api)
	h := s.help
	for _, approve := range []bool{true, false} {
		verb := map[bool]string{true: "approve", false: "reject"}[approve]
		register(api, s.help, Retryable(Secured(huma.Operation{
			OperationID: verb + "DeletionRequest", Method: http.MethodPost, Path: "/v1/finance/deletion-requests/{id}/" + verb,
			Tags: []string{"finance"}, Summary: verb + " a manager's deletion request (ADMIN)", Errors: []int{400, 401, 403, 404, 409, 422},
		})), func(ctx context.Context, in *idInput) (*decisionOutput, error) {
			id, err := parseID("path.id", in.ID)
			if err != nil {
				return nil, err
			}
			r, w, err := s.Finance.DecideDeletion(ctx, h.Actor(ctx), id, approve)
			if err != nil {
				return nil, err
			}
			out := &decisionOutput{ConsistencyToken: s.token(ctx, w.Token)}
			out.Body.ID, out.Body.Status = r.ID.String(), string(r.Status)
			return out, nil
		})
	}
	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "grantDailyApproval", Method: http.MethodPost, Path: "/v1/finance/daily-approvals", Tags: []string{"finance"},
		Summary: "Let a manager add rows on a date although older rows of theirs are pending (ADMIN)", DefaultStatus: http.StatusCreated,
		Errors: []int{400, 401, 403, 404, 409, 422},
	})), func(ctx context.Context, in *dailyApprovalInput) (*dailyApprovalOutput, error) {
		mid, err := parseID("body.managerUserId", in.Body.ManagerUserID)
		if err != nil {
			return nil, err
		}
		d, err := domain.ParseDate(in.Body.Date)
		if err != nil {
			return nil, domain.Invalid("body.date", "must be a date YYYY-MM-DD", in.Body.Date)
		}
		a, w, err := s.Finance.GrantDailyApproval(ctx, h.Actor(ctx), mid, d)
		if err != nil {
			return nil, err
		}
		out := &dailyApprovalOutput{ConsistencyToken: s.token(ctx, w.Token)}
		out.Body.ID, out.Body.ManagerUserID, out.Body.Date = a.ID.String(), a.ManagerUserID.String(), a.Date.String()
		out.Body.GrantedBy, out.Body.GrantedAt = a.GrantedBy.String(), a.GrantedAt
		return out, nil
	})
	register(api, s.help, Secured(huma.Operation{
		OperationID: "listEvents", Method: http.MethodGet, Path: "/v1/finance/events", Tags: []string{"finance"},
		Summary: "Event history (audit trail), oldest first", Errors: []int{400, 401, 404, 422},
	}), func(ctx context.Context, in *eventsInput) (*eventsOutput, error) {
		return s.listEvents(ctx, in)
	})
}

func (s *server) listEvents(ctx context.Context, in *eventsInput) (*eventsOutput, error) {
	h := s.help
	actor := h.Actor(ctx)
	q := eventstore.Query{OrgID: actor.OrgID, EntityType: domain.EntityType(in.EntityType), Limit: in.Limit}
	var err error
	if in.EntityID != "" {
		if q.EntityID, err = parseID("query.entityId", in.EntityID); err != nil {
			return nil, err
		}
	}
	if in.Cursor != "" {
		if q.After, err = strconv.ParseInt(in.Cursor, 10, 64); err != nil || q.After < 0 {
			return nil, domain.Invalid("query.cursor", "is not a cursor this API returned", in.Cursor)
		}
	}
	if in.PropertyID != "" {
		if q.PropertyID, err = parseID("query.propertyId", in.PropertyID); err != nil {
			return nil, err
		}
		if _, err := s.Tenancy.Property(ctx, actor, q.PropertyID); err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				err = &domain.NotFoundError{Field: "query.propertyId", Value: in.PropertyID, What: "property"}
			}
			return nil, err
		}
	} else if !actor.IsAdmin() {
		u, err := s.Tenancy.User(ctx, actor.OrgID, actor.UserID)
		if err != nil {
			return nil, err
		}
		q.OnlyProperties = u.PropertyIDs
	}
	events, next, err := s.Events.List(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &eventsOutput{}
	out.Body.Items = make([]eventBody, len(events))
	for i, e := range events {
		out.Body.Items[i] = toEventBody(e)
	}
	if next != "" {
		out.Body.NextCursor = &next
	}
	return out, nil
}

func toEventBody(e domain.Event) eventBody {
	b := eventBody{EventID: e.ID.String(), EventVersion: e.Version, EventType: string(e.Type), OrgID: e.OrgID.String(),
		UserID: e.UserID.String(), EntityType: string(e.EntityType), EntityID: e.EntityID.String(),
		AggregateVersion: e.AggregateVersion, Timestamp: e.Timestamp, Metadata: json.RawMessage(e.Metadata), Sequence: e.Sequence}
	if e.PropertyID != nil {
		p := e.PropertyID.String()
		b.PropertyID = &p
	}
	return b
}

func createFields(propertyID string, amount int64, mode string, occurred time.Time, ref, desc *string, source, category string) (finance.CreateInput, error) {
	pid, err := parseID("body.propertyId", propertyID)
	if err != nil {
		return finance.CreateInput{}, err
	}
	return finance.CreateInput{PropertyID: pid, Source: source, Category: category, AmountCents: amount,
		PaymentMode: domain.PaymentMode(mode), OccurredAt: occurred, BankReference: ref, Description: desc}, nil
}

// registerKind registers the routes of revenues or expenses; the handlers
// are the methods of kindRoutes.
func registerKind[B any](s *server, api huma.API, kind domain.Kind, plural string, toInput func(*B) (finance.CreateInput, error)) {
	k := kindRoutes{s: s, kind: kind}
	base := "/v1/finance/" + plural
	tags := []string{"finance"}

	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "create" + string(kind), Method: http.MethodPost, Path: base, Tags: tags, DefaultStatus: http.StatusCreated,
		Summary: "Record a " + string(kind) + " (approved when an ADMIN creates it, pending for a MANAGER)",
		Errors:  []int{400, 401, 404, 409, 413, 422},
	})), func(ctx context.Context, in *createInput[B]) (*transactionOutput, error) {
		input, err := toInput(&in.Body)
		if err != nil {
			return nil, err
		}
		return k.create(ctx, input)
	})
	register(api, s.help, Secured(huma.Operation{
		OperationID: "list" + string(kind), Method: http.MethodGet, Path: base, Tags: tags,
		Summary: "List " + plural + ", newest business date first", Errors: []int{400, 401, 404, 422},
	}), k.list)
	register(api, s.help, Secured(huma.Operation{
		OperationID: "get" + string(kind), Method: http.MethodGet, Path: base + "/{id}", Tags: tags,
		Summary: "Read one " + string(kind), Errors: []int{400, 401, 404, 422},
	}), k.get)
	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "update" + string(kind), Method: http.MethodPatch, Path: base + "/{id}", Tags: tags,
		Summary: "Change a " + string(kind) + " (a MANAGER's edit puts it back to pending)", Errors: []int{400, 401, 404, 409, 412, 413, 422},
	})), k.update)
	register(api, s.help, Retryable(Secured(huma.Operation{
		OperationID: "delete" + string(kind), Method: http.MethodDelete, Path: base + "/{id}", Tags: tags,
		Summary: "Delete a " + string(kind) + " (ADMIN: 204; MANAGER: 202 with a deletion request)",
		Errors:  []int{400, 401, 404, 409, 412, 422},
		Responses: map[string]*huma.Response{
			"204": {Description: "Deleted"},
			"202": {Description: "Deletion requested; an ADMIN decides"},
		},
	})), k.delete)
	for _, approve := range []bool{true, false} {
		verb := map[bool]string{true: "approve", false: "reject"}[approve]
		register(api, s.help, Retryable(Secured(huma.Operation{
			OperationID: verb + string(kind), Method: http.MethodPost, Path: base + "/{id}/" + verb, Tags: tags,
			Summary: verb + " a pending " + string(kind) + " (ADMIN)", Errors: []int{400, 401, 403, 404, 409, 412, 422},
		})), k.review(approve))
	}
}

// kindRoutes handles the routes of one kind, revenues or expenses.
type kindRoutes struct {
	s    *server
	kind domain.Kind
}

// written is the answer to a write of one row: its new version and the
// token that makes later reads see it.
func (k kindRoutes) written(ctx context.Context, t finance.Transaction, w finance.Written) *transactionOutput {
	return &transactionOutput{ConsistencyToken: k.s.token(ctx, w.Token), ETag: finance.ETag(t.Version), Body: toTransactionBody(t)}
}

func (k kindRoutes) create(ctx context.Context, input finance.CreateInput) (*transactionOutput, error) {
	t, w, err := k.s.Finance.Create(ctx, k.s.help.Actor(ctx), k.kind, input)
	if err != nil {
		return nil, err
	}
	return k.written(ctx, t, w), nil
}

func (k kindRoutes) list(ctx context.Context, in *listInput) (*listOutput, error) {
	f := finance.ListFilter{Status: domain.Status(in.Status), Limit: in.Limit, Cursor: in.Cursor}
	var err error
	if in.PropertyID != "" {
		if f.PropertyID, err = parseID("query.propertyId", in.PropertyID); err != nil {
			return nil, err
		}
	}
	if f.StartDate, err = optionalDate("query.startDate", in.StartDate); err != nil {
		return nil, err
	}
	if f.EndDate, err = optionalDate("query.endDate", in.EndDate); err != nil {
		return nil, err
	}
	items, next, err := k.s.Finance.List(ctx, k.s.help.Actor(ctx), k.kind, f)
	if err != nil {
		return nil, err
	}
	out := &listOutput{}
	out.Body.Items = make([]transactionBody, len(items))
	for i, t := range items {
		out.Body.Items[i] = toTransactionBody(t)
	}
	if next != "" {
		out.Body.NextCursor = &next
	}
	return out, nil
}

func (k kindRoutes) get(ctx context.Context, in *idInput) (*transactionOutput, error) {
	id, err := parseID("path.id", in.ID)
	if err != nil {
		return nil, err
	}
	t, err := k.s.Finance.Get(ctx, k.s.help.Actor(ctx), k.kind, id)
	if err != nil {
		return nil, err
	}
	return &transactionOutput{ETag: finance.ETag(t.Version), Body: toTransactionBody(t)}, nil
}

func (k kindRoutes) update(ctx context.Context, in *patchInput) (*transactionOutput, error) {
	id, err := parseID("path.id", in.ID)
	if err != nil {
		return nil, err
	}
	p, err := toPatch(k.kind, in.Body)
	if err != nil {
		return nil, err
	}
	t, w, err := k.s.Finance.UpdateIf(ctx, k.s.help.Actor(ctx), k.kind, id, p, finance.ParseIfMatch(in.IfMatch))
	if err != nil {
		return nil, err
	}
	return k.written(ctx, t, w), nil
}

func (k kindRoutes) delete(ctx context.Context, in *idMatchInput) (*deleteOutput, error) {
	id, err := parseID("path.id", in.ID)
	if err != nil {
		return nil, err
	}
	deleted, reqID, w, err := k.s.Finance.DeleteIf(ctx, k.s.help.Actor(ctx), k.kind, id, finance.ParseIfMatch(in.IfMatch))
	if err != nil {
		return nil, err
	}
	out := &deleteOutput{Status: http.StatusNoContent, ConsistencyToken: k.s.token(ctx, w.Token)}
	if !deleted {
		out.Status = http.StatusAccepted
		out.Body = &struct {
			DeletionRequestID string `json:"deletionRequestId" format:"uuid"`
		}{DeletionRequestID: reqID.String()}
	}
	return out, nil
}

// review returns the handler that approves (or rejects) a pending row.
func (k kindRoutes) review(approve bool) func(context.Context, *reviewInput) (*transactionOutput, error) {
	return func(ctx context.Context, in *reviewInput) (*transactionOutput, error) {
		actor := k.s.help.Actor(ctx)
		if !actor.IsAdmin() {
			return nil, domain.ErrForbidden
		}
		id, err := parseID("path.id", in.ID)
		if err != nil {
			return nil, err
		}
		notes := ""
		if in.Body != nil {
			notes = in.Body.Notes
		}
		t, w, err := k.s.Finance.ReviewIf(ctx, actor, k.kind, id, approve, notes, finance.ParseIfMatch(in.IfMatch))
		if err != nil {
			return nil, err
		}
		return k.written(ctx, t, w), nil
	}
}

func toPatch(kind domain.Kind, b patchBody) (finance.PatchInput, error) {
	v := &domain.ValidationError{}
	p := finance.PatchInput{Source: b.Source, Category: b.Category, AmountCents: b.AmountCents,
		OccurredAt: b.OccurredAt, BankReference: b.BankReference, Description: b.Description}
	if b.PropertyID != nil {
		id, err := domain.ParseID(*b.PropertyID)
		if err != nil {
			v.Add("body.propertyId", "must be a UUID", *b.PropertyID)
		}
		p.PropertyID = &id
	}
	if b.PaymentMode != nil {
		m := domain.PaymentMode(*b.PaymentMode)
		p.PaymentMode = &m
	}
	if kind == domain.Revenue && b.Category != nil {
		v.Add("body.category", "belongs to expenses, not revenues", *b.Category)
	}
	if kind == domain.Expense && b.Source != nil {
		v.Add("body.source", "belongs to revenues, not expenses", *b.Source)
	}
	return p, v.Err()
}

func optionalDate(location, s string) (domain.Date, error) {
	if s == "" {
		return domain.Date{}, nil
	}
	d, err := domain.ParseDate(s)
	if err != nil {
		return domain.Date{}, domain.Invalid(location, "must be a date YYYY-MM-DD", s)
	}
	return d, nil
}
