// Package reports owns the cash book projection: the per-day and per-month
// flow rows, the projector that keeps them from the events stream, the
// daily, monthly and yearly reports computed from them, cash counts, the
// consistency wait behind read-your-writes, and reconciliation against the
// approved transactions.
package reports

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/cache"
	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/tenancy"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the tables this package owns. It
// references tenancy's properties, so it runs after tenancy's set. It
// also created cash_counts (00001, partitioned by 00100), which finance
// now writes: applied migrations stay where they ran, so the table's
// history stays here while its SQL is finance's (finance.RecordCashCount).
func Migrations() postgres.MigrationSet {
	return postgres.EmbeddedSet("reports", migrationFiles, partitionMigration())
}

// Properties is what reports needs of tenancy.
type Properties interface {
	Property(ctx context.Context, actor domain.Actor, id domain.ID) (tenancy.Property, error)
	Properties(ctx context.Context, actor domain.Actor) ([]tenancy.Property, error)
}

// Service answers report queries.
type Service struct {
	pool   *pgxpool.Pool
	props  Properties
	waiter *Waiter
	now    func() time.Time
	// sampler is offered served daily reads for a drift check (sample.go).
	sampler Sampler
	cache   *cache.Cache
	// router sends report reads to a replica or the primary (nil: the
	// primary; see WithRouter).
	router Router
	// snapshotEvery is the point-in-time snapshot interval (asof.go).
	snapshotEvery int
}

// NewService returns a Service; waiter serves reads that carry a
// consistency token (nil: such reads are refused as unavailable); now is
// the clock.
func NewService(pool *pgxpool.Pool, props Properties, waiter *Waiter, now func() time.Time) *Service {
	return &Service{pool: pool, props: props, waiter: waiter, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }}
}

// Router runs a report read where it may be served: a replica within the
// maximum lag, one that has replayed past the write for a read with a
// token, else the primary (package replicas). fn may run twice (on a
// replica, then on the primary).
type Router interface {
	// Read runs fn and returns how old its data may be: the time before
	// which every commit is in it, or zero when it was read as of now.
	Read(ctx context.Context, token *domain.Token, fn func(db *pgxpool.Pool) error) (time.Time, error)
}

// WithRouter makes s run its report queries where r sends them (nil: on
// the primary) and returns s. Call it before serving. Cash counts and the
// consistency wait stay on the primary.
func (s *Service) WithRouter(r Router) *Service {
	s.router = r
	return s
}

// read runs a report query through the router, if any. When a lagging
// replica answered, the report cache learns how old the answer may be.
func (s *Service) read(ctx context.Context, token *domain.Token, fn func(db *pgxpool.Pool) error) error {
	if s.router == nil {
		return fn(s.pool)
	}
	asOf, err := s.router.Read(ctx, token, fn)
	if err == nil && !asOf.IsZero() {
		cache.AsOf(ctx, asOf) // a replica's answer: the cache must not take it for current
	}
	return err
}

// Read qualifies a report query.
type Read struct {
	// IncludePending counts pending rows as well as approved ones.
	IncludePending bool
	// Token, when set, makes the read reflect the write it was handed out
	// for, and every write committed before it: the read waits (bounded)
	// for the pipeline, after its input and access were checked.
	Token *domain.Token
}

// wait holds a read of org until its token's writes (and every write of
// org committed before the read) are reflected.
func (s *Service) wait(ctx context.Context, org domain.ID, r Read) error {
	if r.Token == nil {
		return nil
	}
	if s.waiter == nil {
		return fmt.Errorf("%w: consistent reads are not served here", domain.ErrUnavailable)
	}
	return s.waiter.Wait(ctx, org)
}

// DailyReport is one property's (or several properties') cash book day.
type DailyReport struct {
	Date                                 domain.Date
	OpeningCents                         int64
	CashReceivedCents, BankReceivedCents int64
	CashExpensesCents, BankExpensesCents int64
	TransactionCount                     int64
	CountedClosingCents                  *int64
}

// TotalReceivedCents is cash plus bank received.
func (d DailyReport) TotalReceivedCents() int64 { return d.CashReceivedCents + d.BankReceivedCents }

// TotalExpensesCents is cash plus bank spent.
func (d DailyReport) TotalExpensesCents() int64 { return d.CashExpensesCents + d.BankExpensesCents }

// ClosingCents is the cash at day end: bank money never changes it.
func (d DailyReport) ClosingCents() int64 {
	return d.OpeningCents + d.CashReceivedCents - d.CashExpensesCents
}

// NetCashFlowCents is everything received minus everything spent.
func (d DailyReport) NetCashFlowCents() int64 { return d.TotalReceivedCents() - d.TotalExpensesCents() }

// DiscrepancyCents is counted minus computed closing cash, when counted.
func (d DailyReport) DiscrepancyCents() *int64 {
	if d.CountedClosingCents == nil {
		return nil
	}
	v := *d.CountedClosingCents - d.ClosingCents()
	return &v
}

// ProfitMargin is net cash flow over total received, in percent rounded to
// two decimals (halves away from zero); 0 when nothing was received. The
// rounding is done on the exact quotient: net × 10,000 may not fit an
// int64, and a float quotient misrounds halves (23/160 = 14.375 % must be
// 14.38, not 14.37).
func ProfitMargin(net, received int64) float64 {
	if received == 0 {
		return 0
	}
	num := new(big.Int).Mul(big.NewInt(net), big.NewInt(10000))
	den := big.NewInt(received)
	if den.Sign() < 0 {
		num.Neg(num)
		den.Neg(den)
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int)) // truncated towards zero
	if r.Abs(r).Lsh(r, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(int64(num.Sign())))
	}
	hundredths, _ := new(big.Rat).SetFrac(q, big.NewInt(100)).Float64()
	return hundredths
}

// scope resolves which properties a report covers: the one asked for
// (ErrNotFound naming field when the actor may not see it), or all the
// actor may see; and today in their zone (the earliest when several).
func (s *Service) scope(ctx context.Context, actor domain.Actor, propertyID *domain.ID, field string) ([]domain.ID, domain.Date, error) {
	now := s.now()
	if propertyID != nil {
		p, err := s.props.Property(ctx, actor, *propertyID)
		if err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				return nil, domain.Date{}, &domain.NotFoundError{Field: field, Value: propertyID.String(), What: "property"}
			}
			return nil, domain.Date{}, err
		}
		return []domain.ID{*propertyID}, today(p, now), nil
	}
	props, err := s.props.Properties(ctx, actor)
	if err != nil {
		return nil, domain.Date{}, err
	}
	ids := make([]domain.ID, len(props))
	earliest := domain.DateOf(now)
	for i, p := range props {
		ids[i] = p.ID
		if t := today(p, now); t.Before(earliest) {
			earliest = t
		}
	}
	return ids, earliest, nil
}

// today is today in p's zone (UTC when it has none loaded).
func today(p tenancy.Property, now time.Time) domain.Date {
	if p.Location == nil {
		return domain.DateOf(now)
	}
	return p.Today(now)
}
