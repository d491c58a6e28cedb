package postgres

import (
	"github.com/jackc/pgx/v5/pgtype"

	"hmp/internal/domain"
)

// registerTypes teaches a connection's type map to send and read
// domain.ID as a binary uuid directly. Without it pgx takes the generic
// driver.Valuer path for every id parameter: format the id as text, fail
// to encode text as binary uuid (building an error), parse the text back
// and encode that: a tenth of the CPU of a revenue create went there.
func registerTypes(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{wrapIDEncode}, m.TryWrapEncodePlanFuncs...)
	m.TryWrapScanPlanFuncs = append([]pgtype.TryWrapScanPlanFunc{wrapIDScan}, m.TryWrapScanPlanFuncs...)
}

// wrapIDEncode handles domain.ID and *domain.ID (pgx does not dereference
// a pointer whose element is a driver.Valuer); a nil pointer is NULL.
func wrapIDEncode(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	switch v := value.(type) {
	case domain.ID:
		return &idEncodePlan{}, pgtype.UUID{Bytes: v, Valid: true}, true
	case *domain.ID:
		return &idEncodePlan{}, toUUID(v), true
	}
	return nil, nil, false
}

func toUUID(p *domain.ID) pgtype.UUID {
	if p == nil {
		return pgtype.UUID{}
	}
	return pgtype.UUID{Bytes: *p, Valid: true}
}

type idEncodePlan struct{ next pgtype.EncodePlan }

func (p *idEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *idEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	if id, ok := value.(domain.ID); ok {
		return p.next.Encode(pgtype.UUID{Bytes: id, Valid: true}, buf)
	}
	return p.next.Encode(toUUID(value.(*domain.ID)), buf)
}

func wrapIDScan(target any) (pgtype.WrappedScanPlanNextSetter, any, bool) {
	if id, ok := target.(*domain.ID); ok {
		return &idScanPlan{}, idScanner{id}, true
	}
	return nil, nil, false
}

type idScanPlan struct{ next pgtype.ScanPlan }

func (p *idScanPlan) SetNext(next pgtype.ScanPlan) { p.next = next }

func (p *idScanPlan) Scan(src []byte, target any) error {
	return p.next.Scan(src, idScanner{target.(*domain.ID)})
}

// idScanner reads a uuid into an ID; SQL NULL is the zero ID, as
// (*domain.ID).Scan has it.
type idScanner struct{ id *domain.ID }

func (s idScanner) ScanUUID(v pgtype.UUID) error {
	*s.id = v.Bytes // zero when NULL
	return nil
}
