package reports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/postgres"
)

// DefaultSnapshotEvery is the snapshot interval when none is set: a
// point-in-time read folds at most about this many events of the
// organization past the newest snapshot before it stores a new one.
const DefaultSnapshotEvery = 1000

// WithSnapshotEvery sets the snapshot interval in events (0: the default)
// and returns s.
func (s *Service) WithSnapshotEvery(n int) *Service {
	s.snapshotEvery = n
	return s
}

// The flows of one day in a snapshot (see the balance_snapshots
// migration for the layout).
const (
	fCashIn = iota
	fBankIn
	fCashOut
	fBankOut
	fPending       // + the four above
	fApprovedCount = 8
	fPendingCount  = 9
	fCounted       = 10 // counted closing + 1; 0: none
	fLen           = 11
)

type dayFlows = [fLen]int64

// DailyReportAsOf answers what the daily report of a property said at
// asOf: exactly the changes committed at or before asOf, in commit order
// (a later back-dated edit is left out). It first seals asOf
// (eventstore.Seal: appends in flight end, later ones are stamped after
// it), so the answer never changes later. It reads the event store, never
// the cache; it starts from the newest snapshot taken before asOf. asOf
// must not be in the future (ValidationError on query.asOf): sealing it
// would push the stamps of writes ahead of the clock.
func (s *Service) DailyReportAsOf(ctx context.Context, actor domain.Actor, propertyID domain.ID, date domain.Date, asOf time.Time, includePending bool) (DailyReport, error) {
	days, err := s.dailyReportsAsOf(ctx, actor, propertyID, date, date, asOf, includePending, "query.date", "query.date")
	if err != nil {
		return DailyReport{}, err
	}
	return days[0], nil
}

// DailyReportsAsOf is DailyReports as known at asOf (see DailyReportAsOf).
func (s *Service) DailyReportsAsOf(ctx context.Context, actor domain.Actor, propertyID domain.ID, start, end domain.Date, asOf time.Time, includePending bool) ([]DailyReport, error) {
	return s.dailyReportsAsOf(ctx, actor, propertyID, start, end, asOf, includePending, "query.startDate", "query.endDate")
}

func (s *Service) dailyReportsAsOf(ctx context.Context, actor domain.Actor, propertyID domain.ID, start, end domain.Date, asOf time.Time, includePending bool, startField, endField string) ([]DailyReport, error) {
	now := s.now()
	v := &domain.ValidationError{}
	today := domain.DateOf(now)
	if err := domain.CheckReportDate(start, today); err != nil {
		v.Add(startField, err.Error(), start.String())
	}
	if end != start {
		if err := domain.CheckReportDate(end, today); err != nil {
			v.Add(endField, err.Error(), end.String())
		}
		if end.Before(start) {
			v.Add(endField, "must not be before startDate", end.String())
		} else if domain.DaysBetween(start, end)+1 > MaxRangeDays {
			v.Add(endField, fmt.Sprintf("the range must span at most %d days", MaxRangeDays), end.String())
		}
	}
	if asOf.After(now) {
		v.Add("query.asOf", "must not be in the future", asOf.Format(time.RFC3339Nano))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if _, _, err := s.scope(ctx, actor, &propertyID, "query.propertyId"); err != nil {
		return nil, err
	}
	if err := eventstore.Seal(ctx, s.pool, actor.OrgID, asOf); err != nil {
		return nil, err
	}
	days, err := s.daysAsOf(ctx, actor.OrgID, propertyID, asOf)
	if err != nil {
		return nil, err
	}
	return rangeAsOf(days, start, end, includePending), nil
}

// rangeAsOf renders the days start..end of a folded property.
func rangeAsOf(days map[domain.Date]*dayFlows, start, end domain.Date, includePending bool) []DailyReport {
	net := func(f *dayFlows) int64 {
		n := f[fCashIn] - f[fCashOut]
		if includePending {
			n += f[fPending+fCashIn] - f[fPending+fCashOut]
		}
		return n
	}
	var opening int64
	for d, f := range days {
		if d.Before(start) {
			opening += net(f)
		}
	}
	out := make([]DailyReport, 0, domain.DaysBetween(start, end)+1)
	for d := start; !d.After(end); d = d.AddDays(1) {
		r := DailyReport{Date: d, OpeningCents: opening}
		if f, ok := days[d]; ok {
			r.CashReceivedCents, r.BankReceivedCents = f[fCashIn], f[fBankIn]
			r.CashExpensesCents, r.BankExpensesCents = f[fCashOut], f[fBankOut]
			r.TransactionCount = f[fApprovedCount]
			if includePending {
				r.CashReceivedCents += f[fPending+fCashIn]
				r.BankReceivedCents += f[fPending+fBankIn]
				r.CashExpensesCents += f[fPending+fCashOut]
				r.BankExpensesCents += f[fPending+fBankOut]
				r.TransactionCount += f[fPendingCount]
			}
			if f[fCounted] > 0 {
				c := f[fCounted] - 1
				r.CountedClosingCents = &c
			}
			opening += net(f)
		}
		out = append(out, r)
	}
	return out
}

// MonthlyReportAsOf is MonthlyReport as known at asOf (see
// DailyReportAsOf): for one property, or summed per day over every
// property the actor may see (counted closings only for one property).
func (s *Service) MonthlyReportAsOf(ctx context.Context, actor domain.Actor, propertyID *domain.ID, year int, month time.Month, asOf time.Time, includePending bool) (MonthlyReport, error) {
	now := s.now()
	if err := checkYear(year, now); err != nil {
		return MonthlyReport{}, err
	}
	if month < 1 || month > 12 {
		return MonthlyReport{}, domain.Invalid("query.month", "must be between 1 and 12", int(month))
	}
	if asOf.After(now) {
		return MonthlyReport{}, domain.Invalid("query.asOf", "must not be in the future", asOf.Format(time.RFC3339Nano))
	}
	props, _, err := s.scope(ctx, actor, propertyID, "query.propertyId")
	if err != nil {
		return MonthlyReport{}, err
	}
	if err := eventstore.Seal(ctx, s.pool, actor.OrgID, asOf); err != nil {
		return MonthlyReport{}, err
	}
	start := domain.Date{Year: year, Month: month, Day: 1}
	end := domain.Date{Year: year, Month: month, Day: domain.DaysInMonth(year, month)}
	var sum []DailyReport
	for _, p := range props {
		days, err := s.daysAsOf(ctx, actor.OrgID, p, asOf)
		if err != nil {
			return MonthlyReport{}, err
		}
		r := rangeAsOf(days, start, end, includePending)
		if sum == nil {
			sum = r
			continue
		}
		for i := range sum {
			sum[i].OpeningCents += r[i].OpeningCents
			sum[i].CashReceivedCents += r[i].CashReceivedCents
			sum[i].BankReceivedCents += r[i].BankReceivedCents
			sum[i].CashExpensesCents += r[i].CashExpensesCents
			sum[i].BankExpensesCents += r[i].BankExpensesCents
			sum[i].TransactionCount += r[i].TransactionCount
			sum[i].CountedClosingCents = nil
		}
	}
	if sum == nil {
		sum = rangeAsOf(nil, start, end, includePending)
	}
	m := MonthlyReport{Year: year, Month: month, PropertyID: propertyID, Days: sum,
		OpeningCents: sum[0].OpeningCents, ClosingCents: sum[len(sum)-1].ClosingCents()}
	for _, d := range sum {
		m.CashReceivedCents += d.CashReceivedCents
		m.BankReceivedCents += d.BankReceivedCents
		m.CashExpensesCents += d.CashExpensesCents
		m.BankExpensesCents += d.BankExpensesCents
		m.TransactionCount += d.TransactionCount
	}
	return m, nil
}

// snapshotAsOf loads the property's newest balance snapshot taken at or
// before asOf: its chain position, its newest event time and its days
// (none: position 0 and no days).
func (s *Service) snapshotAsOf(ctx context.Context, org, prop domain.ID, asOf time.Time) (int64, time.Time, map[domain.Date]*dayFlows, error) {
	days := map[domain.Date]*dayFlows{}
	var (
		base  int64
		raw   []byte
		maxAt time.Time
	)
	err := s.pool.QueryRow(ctx, `
		SELECT chain_pos, max_event_at, days FROM balance_snapshots
		WHERE org_id = $1 AND property_id = $2 AND max_event_at <= $3
		ORDER BY chain_pos DESC LIMIT 1`, org, prop, asOf).Scan(&base, &maxAt, &raw)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, nil, fmt.Errorf("load balance snapshot: %w", postgres.Translate(err))
	}
	if raw != nil {
		var stored map[domain.Date]dayFlows
		if err := json.Unmarshal(raw, &stored); err != nil {
			return 0, time.Time{}, nil, fmt.Errorf("decode balance snapshot: %w", err)
		}
		for d, f := range stored {
			days[d] = &f
		}
	}
	return base, maxAt, days, nil
}

// daysAsOf folds the property's per-day flows from the newest snapshot
// at or before asOf through the organization's later events written at
// or before asOf, storing a new snapshot when it folded a whole interval.
func (s *Service) daysAsOf(ctx context.Context, org, prop domain.ID, asOf time.Time) (map[domain.Date]*dayFlows, error) {
	every := s.snapshotEvery
	if every <= 0 {
		every = DefaultSnapshotEvery
	}
	base, maxAt, days, err := s.snapshotAsOf(ctx, org, prop, asOf)
	if err != nil {
		return nil, err
	}
	// complete: every event up to pos was written at or before asOf, so
	// the fold up to pos is a snapshot valid for any later asOf.
	var (
		pos, snapPos = base, base
		complete     = true
		snap         map[domain.Date]*dayFlows
		snapAt       = maxAt
	)
	const page = 2000
	for after := base; ; {
		evs, err := eventstore.ChainAfter(ctx, s.pool, org, after, page)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			after = ev.Pos
			if ev.Timestamp.After(asOf) {
				if complete && ev.Pos > 0 {
					complete, snap = false, cloneDays(days)
				}
				continue
			}
			if err := foldAsOf(days, prop, ev.Event); err != nil {
				return nil, err
			}
			if complete && ev.Pos > 0 {
				pos = ev.Pos
				if ev.Timestamp.After(snapAt) {
					snapAt = ev.Timestamp
				}
			}
		}
		full := 0
		for _, ev := range evs {
			if ev.Pos > 0 {
				full++
			}
		}
		if full < page {
			break
		}
	}
	snapPos = pos
	if snap == nil {
		snap = days
	}
	if snapPos-base >= int64(every) {
		if err := s.storeSnapshot(ctx, org, prop, snapPos, snapAt, snap); err != nil {
			return nil, err
		}
	}
	return days, nil
}

func cloneDays(days map[domain.Date]*dayFlows) map[domain.Date]*dayFlows {
	out := make(map[domain.Date]*dayFlows, len(days))
	for d, f := range days {
		c := *f
		out[d] = &c
	}
	return out
}

func (s *Service) storeSnapshot(ctx context.Context, org, prop domain.ID, pos int64, maxAt time.Time, days map[domain.Date]*dayFlows) error {
	flat := make(map[domain.Date]dayFlows, len(days))
	for d, f := range days {
		if *f != (dayFlows{}) {
			flat[d] = *f
		}
	}
	raw, err := json.Marshal(flat)
	if err != nil {
		return fmt.Errorf("encode balance snapshot: %w", err)
	}
	_, err = s.pool.Exec(ctx, `
		INSERT INTO balance_snapshots (org_id, property_id, chain_pos, max_event_at, taken_at, days)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, org, prop, pos, maxAt, s.now(), raw)
	if err != nil {
		return fmt.Errorf("store balance snapshot: %w", postgres.Translate(err))
	}
	return nil
}

// foldAsOf applies one event's effect on prop's days: a row's state before
// the change leaves, its state after arrives (each only where it was or
// is on prop); a cash count sets its day's counted closing.
func foldAsOf(days map[domain.Date]*dayFlows, prop domain.ID, ev domain.Event) error {
	day := func(d domain.Date) *dayFlows {
		f := days[d]
		if f == nil {
			f = &dayFlows{}
			days[d] = f
		}
		return f
	}
	switch ev.EntityType {
	case domain.EntityRevenue, domain.EntityExpense:
		var md domain.TransactionMetadata
		if err := json.Unmarshal(ev.Metadata, &md); err != nil {
			return fmt.Errorf("event %s: decode metadata: %w", ev.ID, err)
		}
		kind := domain.Kind(ev.EntityType)
		add := func(st *domain.TransactionState, sign int64) {
			if st == nil || st.PropertyID != prop {
				return
			}
			off, count := 0, fApprovedCount
			switch st.Status {
			case domain.Approved:
			case domain.Pending:
				off, count = fPending, fPendingCount
			default:
				return
			}
			col := fCashIn
			switch {
			case kind == domain.Revenue && st.PaymentMode == domain.Bank:
				col = fBankIn
			case kind == domain.Expense && st.PaymentMode == domain.Cash:
				col = fCashOut
			case kind == domain.Expense:
				col = fBankOut
			}
			f := day(st.BusinessDate)
			f[off+col] += sign * st.AmountCents
			f[count] += sign
		}
		add(md.Previous, -1)
		after := md.TransactionState
		add(&after, 1)
	case domain.EntityCashBalance:
		if ev.PropertyID == nil || *ev.PropertyID != prop {
			return nil
		}
		var md domain.CashCountMetadata
		if err := json.Unmarshal(ev.Metadata, &md); err != nil {
			return fmt.Errorf("event %s: decode metadata: %w", ev.ID, err)
		}
		day(md.Date)[fCounted] = md.CountedClosingCents + 1
	}
	return nil
}
