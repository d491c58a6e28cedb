package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/cache"
	"hmp/internal/domain"
	"hmp/internal/postgres"
)

// The report SQL: an opening balance from the monthly rollups before the
// first day's month plus the days of that month before the first day,
// then the day rows of the range. Bounded work however old the property.
const (
	openingSQL = `
	SELECT
	  COALESCE((SELECT sum(cash_received - cash_expenses
	                       + CASE WHEN $5 THEN pending_cash_received - pending_cash_expenses ELSE 0 END)
	            FROM monthly_cash_balances
	            WHERE org_id = $1 AND property_id = ANY ($2) AND month < $3), 0)
	+ COALESCE((SELECT sum(cash_received - cash_expenses
	                       + CASE WHEN $5 THEN pending_cash_received - pending_cash_expenses ELSE 0 END)
	            FROM daily_cash_balances
	            WHERE org_id = $1 AND property_id = ANY ($2) AND business_date >= $3 AND business_date < $4), 0)`

	daysSQL = `
	SELECT business_date,
	       sum(cash_received), sum(bank_received), sum(cash_expenses), sum(bank_expenses),
	       sum(pending_cash_received), sum(pending_bank_received), sum(pending_cash_expenses), sum(pending_bank_expenses),
	       sum(approved_count), sum(pending_count),
	       CASE WHEN count(*) = 1 THEN max(counted_closing) END
	FROM daily_cash_balances
	WHERE org_id = $1 AND property_id = ANY ($2) AND business_date BETWEEN $3 AND $4
	GROUP BY business_date
	ORDER BY business_date`

	monthsSQL = `
	SELECT month,
	       sum(cash_received), sum(bank_received), sum(cash_expenses), sum(bank_expenses),
	       sum(pending_cash_received), sum(pending_bank_received), sum(pending_cash_expenses), sum(pending_bank_expenses),
	       sum(approved_count), sum(pending_count)
	FROM monthly_cash_balances
	WHERE org_id = $1 AND property_id = ANY ($2) AND month >= $3 AND month < $4
	GROUP BY month
	ORDER BY month`
)

func uuids(ids []domain.ID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = pgtype.UUID{Bytes: id, Valid: true}
	}
	return out
}

// days returns one report per calendar day from start to end (both
// included), days without rows included, for the properties summed.
func (s *Service) days(ctx context.Context, tok *domain.Token, org domain.ID, props []domain.ID, start, end domain.Date, includePending bool) ([]DailyReport, error) {
	n := domain.DaysBetween(start, end) + 1
	out := make([]DailyReport, n)
	for i := range out {
		out[i].Date = start.AddDays(i)
	}
	if len(props) == 0 {
		return out, nil
	}
	ids := uuids(props)
	var opening int64
	rowsByDate := make(map[domain.Date]DailyReport, n)
	// A batch is built per attempt: the router runs it again on the
	// primary when a replica fails it.
	err := s.read(ctx, tok, func(db *pgxpool.Pool) error {
		clear(rowsByDate)
		b := &pgx.Batch{}
		b.Queue(openingSQL, org, ids, start.MonthStart().Time(), start.Time(), includePending).QueryRow(func(row pgx.Row) error {
			return row.Scan(&opening)
		})
		b.Queue(daysSQL, org, ids, start.Time(), end.Time()).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					d       time.Time
					f       Flows
					counted *int64
				)
				if err := rows.Scan(&d, &f.CashReceived, &f.BankReceived, &f.CashExpenses, &f.BankExpenses,
					&f.PendingCashReceived, &f.PendingBankReceived, &f.PendingCashExpenses, &f.PendingBankExpenses,
					&f.ApprovedCount, &f.PendingCount, &counted); err != nil {
					return err
				}
				r := DailyReport{Date: domain.DateOf(d), CountedClosingCents: counted}
				r.CashReceivedCents, r.BankReceivedCents, r.CashExpensesCents, r.BankExpensesCents, r.TransactionCount = f.View(includePending)
				rowsByDate[r.Date] = r
			}
			return rows.Err()
		})
		return db.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("read cash book: %w", postgres.Translate(err))
	}
	if len(props) > 1 {
		for d, r := range rowsByDate {
			r.CountedClosingCents = nil // a count belongs to one property's drawer
			rowsByDate[d] = r
		}
	}
	balance := opening
	for i := range out {
		if r, ok := rowsByDate[out[i].Date]; ok {
			out[i] = r
		}
		out[i].OpeningCents = balance
		balance = out[i].ClosingCents()
	}
	return out, nil
}

// DailyReport returns one property's cash book for one day.
func (s *Service) DailyReport(ctx context.Context, actor domain.Actor, propertyID domain.ID, date domain.Date, r Read) (DailyReport, error) {
	k, err := s.dailyKey(ctx, actor, propertyID, date, r)
	if err != nil {
		return DailyReport{}, err
	}
	return cache.Fetch(ctx, s.cache, k, r.Token != nil, s.loadDay(actor.OrgID, k.Props, date, r))
}

// DailyReportEncoded is DailyReport rendered by encode (the HTTP body; it
// is handed propertyID, so that a plain function serves and a hit builds
// no closure). A cached report keeps its rendering, so a hit encodes nothing; the
// bytes are shared and must not be modified. Every caller passes the same
// encode.
func (s *Service) DailyReportEncoded(ctx context.Context, actor domain.Actor, propertyID domain.ID, date domain.Date, r Read, encode func(domain.ID, DailyReport) ([]byte, error)) ([]byte, error) {
	k, err := s.dailyKey(ctx, actor, propertyID, date, r)
	if err != nil {
		return nil, err
	}
	if r.Token == nil {
		if b, ok := s.cache.Encoded(k); ok {
			return b, nil // a hit builds neither the load nor the encoder
		}
	}
	return cache.FetchEncoded(ctx, s.cache, k, r.Token != nil, s.loadDay(actor.OrgID, k.Props, date, r),
		func(d DailyReport) ([]byte, error) { return encode(propertyID, d) })
}

// dailyKey checks a daily-report read (date, access, the token's wait)
// and names it.
func (s *Service) dailyKey(ctx context.Context, actor domain.Actor, propertyID domain.ID, date domain.Date, r Read) (cache.Key, error) {
	if err := domain.CheckReportDate(date, domain.DateOf(s.now())); err != nil {
		return cache.Key{}, domain.Invalid("query.date", err.Error(), date.String())
	}
	props, today, err := s.scope(ctx, actor, &propertyID, "query.propertyId")
	if err != nil {
		return cache.Key{}, err
	}
	if err := s.wait(ctx, actor.OrgID, r); err != nil {
		return cache.Key{}, err
	}
	s.sample(actor.OrgID, propertyID, date) // drift check, asynchronous (sample.go)
	return cacheKey("day", actor.OrgID, props, date, date, today, r.IncludePending), nil
}

// loadDay reads one day of the cash book from PostgreSQL.
func (s *Service) loadDay(org domain.ID, props []domain.ID, date domain.Date, r Read) func(ctx context.Context) (DailyReport, error) {
	return func(ctx context.Context) (DailyReport, error) {
		days, err := s.days(ctx, r.Token, org, props, date, date, r.IncludePending)
		if err != nil {
			return DailyReport{}, err
		}
		return days[0], nil
	}
}

// MaxRangeDays bounds a daily-reports range, both ends included.
const MaxRangeDays = 366

// DailyReports returns one property's cash book for every day of a range.
func (s *Service) DailyReports(ctx context.Context, actor domain.Actor, propertyID domain.ID, start, end domain.Date, r Read) ([]DailyReport, error) {
	v := &domain.ValidationError{}
	today := domain.DateOf(s.now())
	if err := domain.CheckReportDate(start, today); err != nil {
		v.Add("query.startDate", err.Error(), start.String())
	}
	if err := domain.CheckReportDate(end, today); err != nil {
		v.Add("query.endDate", err.Error(), end.String())
	}
	if end.Before(start) {
		v.Add("query.endDate", "must not be before startDate", end.String())
	} else if domain.DaysBetween(start, end)+1 > MaxRangeDays {
		v.Add("query.endDate", fmt.Sprintf("the range must span at most %d days", MaxRangeDays), end.String())
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	props, today, err := s.scope(ctx, actor, &propertyID, "query.propertyId")
	if err != nil {
		return nil, err
	}
	if err := s.wait(ctx, actor.OrgID, r); err != nil {
		return nil, err
	}
	k := cacheKey("days", actor.OrgID, props, start, end, today, r.IncludePending)
	return cache.Fetch(ctx, s.cache, k, r.Token != nil, func(ctx context.Context) ([]DailyReport, error) {
		return s.days(ctx, r.Token, actor.OrgID, props, start, end, r.IncludePending)
	})
}

// MonthlyReport is a month of a property's (or all the caller's
// properties') cash book.
type MonthlyReport struct {
	Year                                                                       int
	Month                                                                      time.Month
	PropertyID                                                                 *domain.ID
	Days                                                                       []DailyReport
	OpeningCents                                                               int64
	ClosingCents                                                               int64
	CashReceivedCents, BankReceivedCents, CashExpensesCents, BankExpensesCents int64
	TransactionCount                                                           int64
}

// NetCashFlowCents is everything received minus everything spent.
func (m MonthlyReport) NetCashFlowCents() int64 {
	return m.CashReceivedCents + m.BankReceivedCents - m.CashExpensesCents - m.BankExpensesCents
}

// MonthlyReport returns a month's report for one property, or summed per
// day over every property the actor may see when propertyID is nil.
func (s *Service) MonthlyReport(ctx context.Context, actor domain.Actor, propertyID *domain.ID, year int, month time.Month, r Read) (MonthlyReport, error) {
	if err := checkYear(year, s.now()); err != nil {
		return MonthlyReport{}, err
	}
	if month < 1 || month > 12 {
		return MonthlyReport{}, domain.Invalid("query.month", "must be between 1 and 12", int(month))
	}
	props, today, err := s.scope(ctx, actor, propertyID, "query.propertyId")
	if err != nil {
		return MonthlyReport{}, err
	}
	if err := s.wait(ctx, actor.OrgID, r); err != nil {
		return MonthlyReport{}, err
	}
	start := domain.Date{Year: year, Month: month, Day: 1}
	end := domain.Date{Year: year, Month: month, Day: domain.DaysInMonth(year, month)}
	k := cacheKey("month", actor.OrgID, props, start, end, today, r.IncludePending)
	return cache.Fetch(ctx, s.cache, k, r.Token != nil, func(ctx context.Context) (MonthlyReport, error) {
		return s.monthly(ctx, r.Token, actor.OrgID, props, propertyID, start, end, r.IncludePending)
	})
}

// monthly reads a month's report from PostgreSQL.
func (s *Service) monthly(ctx context.Context, tok *domain.Token, org domain.ID, props []domain.ID, propertyID *domain.ID, start, end domain.Date, includePending bool) (MonthlyReport, error) {
	year, month := start.Year, start.Month
	days, err := s.days(ctx, tok, org, props, start, end, includePending)
	if err != nil {
		return MonthlyReport{}, err
	}
	m := MonthlyReport{Year: year, Month: month, PropertyID: propertyID, Days: days,
		OpeningCents: days[0].OpeningCents, ClosingCents: days[len(days)-1].ClosingCents()}
	for _, d := range days {
		m.CashReceivedCents += d.CashReceivedCents
		m.BankReceivedCents += d.BankReceivedCents
		m.CashExpensesCents += d.CashExpensesCents
		m.BankExpensesCents += d.BankExpensesCents
		m.TransactionCount += d.TransactionCount
	}
	return m, nil
}

// MonthSummary is one month of a yearly summary.
type MonthSummary struct {
	Month                                                                      time.Month
	OpeningCents, ClosingCents                                                 int64
	CashReceivedCents, BankReceivedCents, CashExpensesCents, BankExpensesCents int64
	TransactionCount                                                           int64
}

// TotalReceivedCents is cash plus bank received.
func (m MonthSummary) TotalReceivedCents() int64 { return m.CashReceivedCents + m.BankReceivedCents }

// TotalExpensesCents is cash plus bank spent.
func (m MonthSummary) TotalExpensesCents() int64 { return m.CashExpensesCents + m.BankExpensesCents }

// YearlySummary returns the twelve months of a year from the monthly
// rollups, for one property or all the actor may see.
func (s *Service) YearlySummary(ctx context.Context, actor domain.Actor, propertyID *domain.ID, year int, r Read) ([]MonthSummary, error) {
	if err := checkYear(year, s.now()); err != nil {
		return nil, err
	}
	props, today, err := s.scope(ctx, actor, propertyID, "query.propertyId")
	if err != nil {
		return nil, err
	}
	if err := s.wait(ctx, actor.OrgID, r); err != nil {
		return nil, err
	}
	start, end := domain.Date{Year: year, Month: 1, Day: 1}, domain.Date{Year: year, Month: 12, Day: 31}
	k := cacheKey("year", actor.OrgID, props, start, end, today, r.IncludePending)
	return cache.Fetch(ctx, s.cache, k, r.Token != nil, func(ctx context.Context) ([]MonthSummary, error) {
		return s.yearly(ctx, r.Token, actor.OrgID, props, year, r.IncludePending)
	})
}

// yearly reads a year's summary from the monthly rollups in PostgreSQL.
func (s *Service) yearly(ctx context.Context, tok *domain.Token, org domain.ID, props []domain.ID, year int, includePending bool) ([]MonthSummary, error) {
	out := make([]MonthSummary, 12)
	for i := range out {
		out[i].Month = time.Month(i + 1)
	}
	if len(props) == 0 {
		return out, nil
	}
	start := domain.Date{Year: year, Month: 1, Day: 1}
	ids := uuids(props)
	var opening int64
	err := s.read(ctx, tok, func(db *pgxpool.Pool) error {
		for i := range out {
			out[i] = MonthSummary{Month: time.Month(i + 1)} // an earlier attempt's rows
		}
		b := &pgx.Batch{}
		b.Queue(openingSQL, org, ids, start.Time(), start.Time(), includePending).QueryRow(func(row pgx.Row) error {
			return row.Scan(&opening)
		})
		b.Queue(monthsSQL, org, ids, start.Time(), domain.Date{Year: year + 1, Month: 1, Day: 1}.Time()).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					m time.Time
					f Flows
				)
				if err := rows.Scan(&m, &f.CashReceived, &f.BankReceived, &f.CashExpenses, &f.BankExpenses,
					&f.PendingCashReceived, &f.PendingBankReceived, &f.PendingCashExpenses, &f.PendingBankExpenses,
					&f.ApprovedCount, &f.PendingCount); err != nil {
					return err
				}
				ms := &out[m.Month()-1]
				ms.CashReceivedCents, ms.BankReceivedCents, ms.CashExpensesCents, ms.BankExpensesCents, ms.TransactionCount = f.View(includePending)
			}
			return rows.Err()
		})
		return db.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("read yearly summary: %w", postgres.Translate(err))
	}
	balance := opening
	for i := range out {
		out[i].OpeningCents = balance
		balance += out[i].CashReceivedCents - out[i].CashExpensesCents
		out[i].ClosingCents = balance
	}
	return out, nil
}

func checkYear(year int, now time.Time) error {
	if year < 2000 || year > now.Year()+1 {
		return domain.Invalid("query.year", fmt.Sprintf("must be between 2000 and %d", now.Year()+1), year)
	}
	return nil
}
