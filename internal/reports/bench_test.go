package reports

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"hmp/internal/domain"
)

// BenchmarkDailyReportDB measures a daily report straight from PostgreSQL
// (no cache) for a property with three years of history, among 200 such
// properties: the opening balance from the monthly rollups plus the days
// of the month, then the day's row, in one round trip. It reports the
// p50 and p99 of the per-call latency next to ns/op.
//
//	go test -run '^$' -bench DailyReportDB -benchtime 5000x ./internal/reports/
func BenchmarkDailyReportDB(b *testing.B) {
	ctx := context.Background()
	pool := cluster.NewPool(b)
	org := domain.NewID(time.Now())
	props := make([]domain.ID, 200)
	for i := range props {
		props[i] = domain.NewID(time.Now())
	}
	first := domain.Date{Year: 2023, Month: 12, Day: 1}
	last := domain.Date{Year: 2026, Month: 11, Day: 30}
	// Three years of days per property, every flow filled, and the monthly
	// rollups that match them.
	_, err := pool.Exec(ctx, `
		INSERT INTO daily_cash_balances (org_id, property_id, business_date, cash_received, bank_received,
			cash_expenses, bank_expenses, approved_count, updated_at)
		SELECT $1, p, d, 1000 + (random() * 100000)::bigint, (random() * 50000)::bigint,
			(random() * 60000)::bigint, (random() * 20000)::bigint, 4, now()
		FROM unnest($2::uuid[]) AS p, generate_series($3::date, $4::date, interval '1 day') AS d`,
		org, props, first.Time(), last.Time())
	if err != nil {
		b.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
		INSERT INTO monthly_cash_balances (org_id, property_id, month, cash_received, bank_received,
			cash_expenses, bank_expenses, approved_count, updated_at)
		SELECT org_id, property_id, date_trunc('month', business_date)::date, sum(cash_received), sum(bank_received),
			sum(cash_expenses), sum(bank_expenses), sum(approved_count), now()
		FROM daily_cash_balances GROUP BY 1, 2, 3`)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE daily_cash_balances; ANALYZE monthly_cash_balances`); err != nil {
		b.Fatal(err)
	}
	s := &Service{pool: pool, now: time.Now}
	rng := rand.New(rand.NewPCG(7, 7))
	span := domain.DaysBetween(first, last)
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		p := props[rng.IntN(len(props))]
		d := first.AddDays(span - rng.IntN(365)) // a day of the last year: up to 35 months before it
		start := time.Now()
		days, err := s.days(ctx, nil, org, []domain.ID{p}, d, d, false)
		samples = append(samples, time.Since(start))
		if err != nil || len(days) != 1 {
			b.Fatalf("daily report: %v", err)
		}
	}
	b.StopTimer()
	slices.Sort(samples)
	q := func(f float64) float64 { return float64(samples[int(f*float64(len(samples)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
