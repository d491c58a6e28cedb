package app_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
)

// failApplies makes every projector apply of an event of org fail, as a
// database error would that hits only that organization's rows.
func failApplies(t testing.TB, env *apptest.Env, org string) {
	t.Helper()
	_, err := env.App.Pool.Exec(context.Background(), fmt.Sprintf(`
		CREATE FUNCTION test_fail_org() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN RAISE EXCEPTION 'organization %% fails on purpose', NEW.org_id; END $$;
		%s
		CREATE TRIGGER test_fail_org BEFORE INSERT ON projector_applied
			FOR EACH ROW WHEN (NEW.org_id = '%s') EXECUTE FUNCTION test_fail_org();`, lockFirst("projector_applied"), org))
	if err != nil {
		t.Fatalf("install the failing trigger: %v", err)
	}
}

func healApplies(t testing.TB, env *apptest.Env) {
	t.Helper()
	if _, err := env.App.Pool.Exec(context.Background(), lockFirst("projector_applied")+` DROP TRIGGER test_fail_org ON projector_applied`); err != nil {
		t.Fatalf("drop the failing trigger: %v", err)
	}
}

// second signs up another organization on f's HMP.
func (f *repFixture) second(name string) *repFixture {
	org := f.env.Signup(name)
	return &repFixture{t: f.t, env: f.env, clock: f.clock, org: org, admin: org.AdminToken}
}

// An organization whose events keep failing to apply delays the
// consistent reads of nobody else: another organization's reads answer
// at once with its writes in them, while the failing organization's own
// reads answer 503, never stale data, until its events apply.
func TestConsistencyOneOrganizationFailing(t *testing.T) {
	t.Parallel()
	f := repStart(t, "Failing Org", func(c *config.Config) {
		c.Projector.MaxDeliver = 1_000_000 // keep retrying: the floor would stay behind it
		c.ConsistencyTimeout = 2 * time.Second
	})
	g := f.second("Healthy Org")
	fp, gp := f.property("Failing", "UTC"), g.property("Healthy", "UTC")
	f.create(f.admin, "revenue", fp, 1000, "cash", "2026-06-15T09:00:00Z")
	if d := f.daily(f.admin, fp, "2026-06-15", false); d.CashReceivedCents != 1000 {
		t.Fatalf("before the failure = %+v", d)
	}
	failApplies(t, f.env, f.org.ID)
	f.create(f.admin, "revenue", fp, 250, "cash", "2026-06-15T10:00:00Z")
	for i := range 5 {
		g.create(g.admin, "revenue", gp, 100, "cash", "2026-06-15T10:00:00Z")
		if d := g.daily(g.admin, gp, "2026-06-15", false); d.CashReceivedCents != int64(100*(i+1)) {
			t.Fatalf("healthy organization's read %d = %+v, want %d received", i, d, 100*(i+1))
		}
	}
	path := repQuery("/v1/reports/daily-report", "propertyId", fp, "date", "2026-06-15")
	repMustProblem(t, f.env.Do("GET", path, f.admin, nil, "X-Consistency-Token", f.last), 503)

	healApplies(t, f.env)
	for range 100 {
		r := f.env.Do("GET", path, f.admin, nil, "X-Consistency-Token", f.last)
		if r.Status == 503 {
			continue // the event waits for its next delivery
		}
		var d repDay
		r.JSON(t, &d)
		if r.Status != 200 || d.CashReceivedCents != 1250 {
			t.Fatalf("after healing: %s", r)
		}
		return
	}
	t.Fatal("the failing organization's reads still answer 503 after healing")
}

// BenchmarkConsistentReadsOneOrgFailing measures consistent reads (a
// write, then a daily report read with its token) of healthy organizations
// while one organization's events fail to apply (a trigger raising for its
// org_id; the projector retries and dead-letters them at its defaults).
// It runs the stream-wide wait (the behaviour before) and the
// per-organization wait side by side on one machine, and the
// per-organization wait with no failing organization as the reference, and
// reports each one's p50/p99 read latency and the share of reads that gave
// up (503).
//
//	go test ./internal/app -run '^$' -bench ConsistentReadsOneOrgFailing -benchtime 1x
//
// HMP_BENCH_SECONDS sets how long each side runs (default 10).
func BenchmarkConsistentReadsOneOrgFailing(b *testing.B) {
	seconds := 10
	if s := envInt("HMP_BENCH_SECONDS"); s > 0 {
		seconds = s
	}
	results := map[string]readStats{}
	for _, mode := range []struct {
		name             string
		streamWide, fail bool
	}{{"stream-wide", true, true}, {"per-org", false, true}, {"no-failure", false, false}} {
		b.Run(mode.name, func(b *testing.B) {
			st := runFailingOrgReads(b, mode.streamWide, mode.fail, time.Duration(seconds)*time.Second)
			results[mode.name] = st
			b.ReportMetric(st.pct(50).Seconds()*1000, "p50_ms")
			b.ReportMetric(st.pct(99).Seconds()*1000, "p99_ms")
			b.ReportMetric(float64(st.unavailable)/float64(max(st.n(), 1))*100, "503_pct")
		})
	}
	before, after, ref := results["stream-wide"], results["per-org"], results["no-failure"]
	if before.n() > 0 && after.n() > 0 {
		b.Logf("healthy orgs' consistent reads while one org fails: stream-wide p50 %s p99 %s 503 %d/%d; per-org p50 %s p99 %s 503 %d/%d; p99 ratio %.1fx; with no failing org p50 %s p99 %s",
			before.pct(50), before.pct(99), before.unavailable, before.n(), after.pct(50), after.pct(99), after.unavailable, after.n(),
			float64(before.pct(99))/float64(max(after.pct(99), 1)), ref.pct(50), ref.pct(99))
	}
}

type readStats struct {
	latencies   []time.Duration
	unavailable int
}

func (s readStats) n() int { return len(s.latencies) }

func (s readStats) pct(p int) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	return l[min(len(l)-1, len(l)*p/100)]
}

func runFailingOrgReads(b *testing.B, streamWide, fail bool, d time.Duration) readStats {
	f := repStart(b, "Bench Failing", repPool, func(c *config.Config) { c.ConsistencyStreamWide = streamWide })
	fp := f.property("Failing", "UTC")
	const healthy = 3
	var orgs []*repFixture
	var props []string
	for i := range healthy {
		g := f.second(fmt.Sprintf("Bench Healthy %d", i))
		orgs, props = append(orgs, g), append(props, g.property("Healthy", "UTC"))
	}
	if fail {
		failApplies(b, f.env, f.org.ID)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The failing organization keeps writing: each of its events holds the
	// stream-wide floor while it is retried.
	wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			_, _ = f.env.Send("POST", "/v1/finance/revenues", f.admin, apptest.Txn{PropertyID: fp, Source: "room",
				AmountCents: 100, PaymentMode: "cash", OccurredAt: "2026-06-15T10:00:00Z"})
		}
	})
	var mu sync.Mutex
	var st readStats
	for i, g := range orgs {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				w, err := g.env.Send("POST", "/v1/finance/revenues", g.admin, apptest.Txn{PropertyID: props[i], Source: "room",
					AmountCents: 100, PaymentMode: "cash", OccurredAt: "2026-06-15T10:00:00Z"})
				if err != nil || w.Status != 201 {
					continue
				}
				start := time.Now()
				r, err := g.env.Send("GET", repQuery("/v1/reports/daily-report", "propertyId", props[i], "date", "2026-06-15"),
					g.admin, nil, "X-Consistency-Token", w.Header.Get("X-Consistency-Token"))
				if err != nil {
					continue
				}
				took := time.Since(start)
				mu.Lock()
				st.latencies = append(st.latencies, took)
				if r.Status == 503 {
					st.unavailable++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(d) // the measurement period, not a wait for an event
	close(stop)
	wg.Wait()
	return st
}

// envInt reads a positive integer setting of a benchmark (0: unset).
func envInt(name string) int {
	n, err := strconv.Atoi(os.Getenv(name))
	if err != nil {
		return 0
	}
	return n
}
