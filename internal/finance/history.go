package finance

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
)

// Change is one entry of a row's audit trail: who did what, when, and the
// row's state before and after.
type Change struct {
	Version int
	EventID domain.ID
	Type    domain.EventType
	Action  domain.Action
	UserID  domain.ID
	At      time.Time
	// Before is nil for the creation; After is nil for the deletion.
	Before, After *domain.TransactionState
	// Fields lists what differs between Before and After.
	Fields []FieldChange
	Notes  string
}

// FieldChange is one field's before and after (nil: absent).
type FieldChange struct {
	Field         string
	Before, After any
}

// History returns the audit trail of a row, oldest first, read from its
// events; a deleted row keeps its trail. Access is as for reading the row
// (its last property decides for a MANAGER); ErrNotFound otherwise.
func (s *Service) History(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID) ([]Change, error) {
	events, err := eventstore.EntityEvents(ctx, s.pool, actor.OrgID, domain.EntityType(kind), id)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, domain.NotFoundf("%s %s not found", kind, id)
	}
	out := make([]Change, 0, len(events))
	var last domain.ID
	for _, ev := range events {
		var md domain.TransactionMetadata
		if err := json.Unmarshal(ev.Metadata, &md); err != nil {
			return nil, fmt.Errorf("history of %s %s: event %s: %w", kind, id, ev.ID, err)
		}
		action, _ := actionOf(kind, ev.Type)
		c := Change{Version: ev.AggregateVersion, EventID: ev.ID, Type: ev.Type, Action: action, UserID: ev.UserID,
			At: ev.Timestamp.UTC(), Before: md.Previous, Notes: md.Notes}
		after := md.TransactionState
		if action == domain.ActionDeleted {
			if md.Previous != nil {
				last = md.Previous.PropertyID
			}
		} else {
			c.After = &after
			last = after.PropertyID
		}
		c.Fields = fieldChanges(c.Before, c.After)
		out = append(out, c)
	}
	if err := s.checkRowAccess(ctx, actor, Transaction{Kind: kind, ID: id, PropertyID: last}); err != nil {
		return nil, err
	}
	return out, nil
}

// fieldChanges compares two states field by field, by their JSON names.
func fieldChanges(before, after *domain.TransactionState) []FieldChange {
	fields := func(s *domain.TransactionState) map[string]any {
		m := map[string]any{}
		if s == nil {
			return m
		}
		b, _ := json.Marshal(s) // a struct of strings, numbers and times: cannot fail
		_ = json.Unmarshal(b, &m)
		return m
	}
	b, a := fields(before), fields(after)
	var names []string
	for k := range b {
		names = append(names, k)
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var out []FieldChange
	for _, k := range names {
		if !reflect.DeepEqual(b[k], a[k]) {
			out = append(out, FieldChange{Field: k, Before: b[k], After: a[k]})
		}
	}
	return out
}
