package finance

import (
	"context"
	"strconv"
	"strings"

	"hmp/internal/domain"
)

// Precondition is what a client asserts about a row before it changes it
// (HTTP If-Match): the row must still be at one of the versions it names.
// The zero value asserts nothing (the last writer wins).
type Precondition struct {
	// Versions are the acceptable current versions; nil: any. A non-nil
	// empty list (tags that are no version of ours) matches no row.
	Versions []int
}

// ParseIfMatch reads an If-Match header: "*", or a comma-separated list of
// entity tags as ETag returns them ("3", also W/"3" and a bare 3). ""
// and "*" assert nothing about the version.
func ParseIfMatch(h string) Precondition {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return Precondition{}
	}
	p := Precondition{Versions: []int{}}
	for _, tag := range strings.Split(h, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		tag = strings.Trim(tag, `"`)
		if v, err := strconv.Atoi(tag); err == nil && v > 0 {
			p.Versions = append(p.Versions, v)
		}
	}
	return p
}

// ETag renders a row version as the entity tag ParseIfMatch reads.
func ETag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// check answers ErrPreconditionFailed unless t is at an asserted version.
func (p Precondition) check(t Transaction) error {
	if p.Versions == nil {
		return nil
	}
	for _, v := range p.Versions {
		if v == t.Version {
			return nil
		}
	}
	return domain.PreconditionFailedf("%s %s is at version %d (ETag %s), not the one If-Match names; reload it and retry",
		t.Kind, t.ID, t.Version, ETag(t.Version))
}

// Update applies a patch without a precondition; see UpdateIf.
func (s *Service) Update(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID, p PatchInput) (Transaction, Written, error) {
	return s.UpdateIf(ctx, actor, kind, id, p, Precondition{})
}

// Review decides a row without a precondition; see ReviewIf.
func (s *Service) Review(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID, approve bool, notes string) (Transaction, Written, error) {
	return s.ReviewIf(ctx, actor, kind, id, approve, notes, Precondition{})
}

// Delete removes a row without a precondition; see DeleteIf.
func (s *Service) Delete(ctx context.Context, actor domain.Actor, kind domain.Kind, id domain.ID) (deleted bool, requestID domain.ID, w Written, err error) {
	return s.DeleteIf(ctx, actor, kind, id, Precondition{})
}
