package app_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/knobs"
	"hmp/internal/settings"
)

const testAdminToken = "operator-token-for-tests-0123456789"

// liveState is GET /v1/admin/settings.
type liveState struct {
	Settings   settings.Settings `json:"settings"`
	Revision   uint64            `json:"revision"`
	ApplyError string            `json:"applyError"`
}

func admin(c *config.Config) { c.AdminToken = testAdminToken }

func putSettings(t testing.TB, env *apptest.Env, who string, body any) liveState {
	t.Helper()
	var st liveState
	env.Must(200, "PUT", "/v1/admin/settings", "", body, "Authorization", "Bearer "+testAdminToken, "X-HMP-Operator", who).JSON(t, &st)
	if st.ApplyError != "" {
		t.Fatalf("settings applied with an error: %s", st.ApplyError)
	}
	return st
}

func getSettings(t testing.TB, env *apptest.Env) liveState {
	t.Helper()
	var st liveState
	env.Must(200, "GET", "/v1/admin/settings", "", nil, "Authorization", "Bearer "+testAdminToken).JSON(t, &st)
	return st
}

// awaitRevision waits until env has applied revision rev (it learns of it
// over the bus).
func awaitRevision(t testing.TB, env *apptest.Env, rev uint64) liveState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st := getSettings(t, env)
		if st.Revision >= rev {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still at settings revision %d, want %d", env.BaseURL, st.Revision, rev)
		}
		<-tick.C
	}
}

// mustTuned checks that the instance's projector runs with s's knobs.
func mustTuned(t testing.TB, env *apptest.Env, s settings.Settings) {
	t.Helper()
	want := s.Projector
	if got := env.App.Projector.Tuning(); got != want {
		t.Fatalf("%s projector runs %+v, settings say %+v", env.BaseURL, got, want)
	}
}

// TestLiveSettings switches profiles back and forth on two instances that
// share a database and a bus while writes and reads run: no answer is a
// 5xx, no write is lost (the cash book sums every write), reconciliation
// finds nothing, both instances converge on the same settings, a third
// instance started later adopts them, bad changes answer 422 naming the
// field, and every change is in the audit trail.
func TestLiveSettings(t *testing.T) {
	natsURL := startNATS(t)
	db := cluster.NewDatabase(t)
	shared := func(c *config.Config) { c.DatabaseURL, c.NATSURL = db, natsURL; c.Profile = "phase1" }
	a := apptest.Start(t, cluster, admin, shared, repPool)
	b := apptest.Start(t, cluster, admin, shared, repPool)
	insts := []*apptest.Env{a, b}

	t.Run("operator token required", func(t *testing.T) {
		a.Must(401, "GET", "/v1/admin/settings", "", nil)
		a.Must(401, "PUT", "/v1/admin/settings", "", map[string]any{"profile": "baseline"}, "Authorization", "Bearer wrong-token-0123456789")
	})
	t.Run("bad changes name the field", func(t *testing.T) {
		before := getSettings(t, a)
		r := a.Do("PUT", "/v1/admin/settings", "", map[string]any{
			"profile": "phase9", "corrections": "fast", "projector": map[string]any{"maxConcurrency": 0},
			"rateLimits": map[string]any{"writesPerUser": map[string]any{"count": 5, "periodSeconds": 0}},
		}, "Authorization", "Bearer "+testAdminToken)
		mustLocations(t, mustProblem(t, r, 422), "body.corrections", "body.profile", "body.projector.maxConcurrency",
			"body.rateLimits.writesPerUser.periodSeconds")
		if after := getSettings(t, a); after.Revision != before.Revision {
			t.Fatalf("a rejected change moved the revision from %d to %d", before.Revision, after.Revision)
		}
	})

	org := a.Signup("Live Settings")
	prop := a.Property(org.AdminToken, "Harbour", "")
	var (
		wg                 sync.WaitGroup
		stop               atomic.Bool
		sum, writes, reads atomic.Int64
		mu                 sync.Mutex
		failures           []string
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
	}
	for w := range 3 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				env := insts[(w+i)%2]
				amount := int64(100 + w*10 + i%7)
				r := env.Do("POST", "/v1/finance/revenues", org.AdminToken, apptest.Txn{PropertyID: prop, Source: "room",
					AmountCents: amount, PaymentMode: "cash", OccurredAt: "2026-06-10T10:00:00Z"})
				if r.Status != 201 {
					fail("write: " + r.String())
					continue
				}
				sum.Add(amount)
				writes.Add(1)
			}
		})
	}
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			r := insts[i%2].Do("GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-06-10&includePending=true", org.AdminToken, nil)
			if r.Status != 200 {
				fail("read: " + r.String())
				continue
			}
			reads.Add(1)
		}
	})
	profiles := []string{"baseline", "phase1", "baseline", "phase3", "baseline", "phase2"}
	var (
		last    liveState
		slowest time.Duration
	)
	for i, p := range profiles {
		env := insts[i%2]
		began := time.Now()
		last = putSettings(t, env, "tester", map[string]any{"profile": p, "reason": "switch " + fmt.Sprint(i)})
		slowest = max(slowest, time.Since(began))
		if last.Settings.Profile != p || len(last.Settings.Modified) != 0 {
			t.Fatalf("after switching to %s: %+v", p, last.Settings)
		}
		mustTuned(t, env, last.Settings)
	}
	// Single knobs: the gradual rollback's last step, batching off.
	last = putSettings(t, a, "tester", map[string]any{"projector": map[string]any{"maxConcurrency": 50, "batchSize": 1}, "corrections": "row"})
	if got := strings.Join(last.Settings.Modified, ","); got != "projector.maxConcurrency,projector.batchSize,corrections" {
		t.Fatalf("modified knobs: %q", got)
	}
	mustTuned(t, a, last.Settings)
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("answers during the switches: %s", strings.Join(failures, "\n"))
	}
	if writes.Load() == 0 || reads.Load() == 0 {
		t.Fatalf("no load ran: %d writes, %d reads", writes.Load(), reads.Load())
	}
	t.Logf("%d writes and %d reads during %d switches; slowest switch applied in %s (measured on a loaded machine)",
		writes.Load(), reads.Load(), len(profiles)+1, slowest.Round(time.Millisecond))

	// Both converge, and a late instance adopts what is in force.
	c := apptest.Start(t, cluster, admin, shared, repPool)
	for _, env := range []*apptest.Env{a, b, c} {
		st := awaitRevision(t, env, last.Revision)
		if st.Revision != last.Revision || !settings.Equal(st.Settings, last.Settings) {
			t.Fatalf("%s has %+v (revision %d), want %+v (revision %d)", env.BaseURL, st.Settings, st.Revision, last.Settings, last.Revision)
		}
		mustTuned(t, env, last.Settings)
	}

	// Nothing lost: a read with the last write's token sums every write.
	r := b.Must(201, "POST", "/v1/finance/revenues", org.AdminToken, apptest.Txn{PropertyID: prop, Source: "room",
		AmountCents: 1, PaymentMode: "cash", OccurredAt: "2026-06-10T10:00:00Z"})
	var day repDay
	a.Must(200, "GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-06-10&includePending=true", org.AdminToken, nil,
		"X-Consistency-Token", r.Header.Get("X-Consistency-Token")).JSON(t, &day)
	if want := sum.Load() + 1; day.TotalReceivedCents != want || day.TransactionCount != writes.Load()+1 {
		t.Fatalf("cash book: received %d in %d transactions, want %d in %d", day.TotalReceivedCents, day.TransactionCount, want, writes.Load()+1)
	}
	if job := reconcileJob(t, a, org.AdminToken, map[string]any{}); job.MismatchCount != 0 {
		t.Fatalf("reconciliation found %d mismatches: %+v", job.MismatchCount, job.Mismatches)
	}

	// The audit trail: who, from where, before and after.
	var hist struct {
		Changes []struct {
			Revision uint64             `json:"revision"`
			Who      settings.Who       `json:"who"`
			Reason   string             `json:"reason"`
			Before   *settings.Settings `json:"before"`
			After    settings.Settings  `json:"after"`
		} `json:"changes"`
	}
	a.Must(200, "GET", "/v1/admin/settings/history", "", nil, "Authorization", "Bearer "+testAdminToken).JSON(t, &hist)
	if len(hist.Changes) < len(profiles)+1 {
		t.Fatalf("history has %d changes, want at least %d", len(hist.Changes), len(profiles)+1)
	}
	newest := hist.Changes[0]
	if newest.Revision != last.Revision || newest.Who.Operator != "tester" || newest.Who.Addr != "127.0.0.1" ||
		newest.Before == nil || newest.Before.Profile != "phase2" || newest.Before.Projector.MaxConcurrency != 500 ||
		newest.After.Projector.MaxConcurrency != 50 {
		t.Fatalf("newest audit record: %+v", newest)
	}
	if hist.Changes[1].Reason != "switch 5" || hist.Changes[1].After.Profile != "phase2" {
		t.Fatalf("second newest audit record: %+v", hist.Changes[1])
	}
}

// TestRollback runs both rollback plans against a running instance under
// writes: the gradual one steps concurrency 200, 100, 50, 20 (500 is in
// force) and turns batching off, judging each step stable; the emergency
// one switches to baseline in one change.
func TestRollback(t *testing.T) {
	env := apptest.Start(t, cluster, admin, repPool, func(c *config.Config) { c.Profile = "phase1" })
	org := env.Signup("Rollback")
	prop := env.Property(org.AdminToken, "Harbour", "")
	var log strings.Builder
	rb := settings.Rollback{URL: env.BaseURL, Token: testAdminToken, Operator: "on-call", StepWait: 100 * time.Millisecond, Log: &log}
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		bad  atomic.Int64
	)
	wg.Go(func() {
		for !stop.Load() {
			if r := env.Do("POST", "/v1/finance/revenues", org.AdminToken, apptest.Txn{PropertyID: prop, Source: "room",
				AmountCents: 100, PaymentMode: "cash", OccurredAt: "2026-06-10T10:00:00Z"}); r.Status != 201 {
				bad.Add(1)
			}
		}
	})
	st, err := rb.Gradual(t.Context())
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("gradual rollback: %v\n%s", err, log.String())
	}
	if bad.Load() > 0 {
		t.Fatalf("%d writes failed during the rollback", bad.Load())
	}
	p := st.Settings.Projector
	if p.MaxConcurrency != 20 || p.BatchSize != 1 || p.LingerMs != 0 || st.Settings.Corrections != "row" || st.Settings.Profile != "phase1" {
		t.Fatalf("after the gradual rollback: %+v", st.Settings)
	}
	mustTuned(t, env, st.Settings)
	var hist struct {
		Changes []settings.Record `json:"changes"`
	}
	env.Must(200, "GET", "/v1/admin/settings/history", "", nil, "Authorization", "Bearer "+testAdminToken).JSON(t, &hist)
	var steps []int
	for _, c := range hist.Changes {
		if c.Who.Operator == "on-call" && c.Before != nil && c.Before.Projector.MaxConcurrency != c.After.Projector.MaxConcurrency {
			steps = append(steps, c.After.Projector.MaxConcurrency)
		}
	}
	if fmt.Sprint(steps) != "[20 50 100 200]" {
		t.Fatalf("concurrency steps, newest first: %v\n%s", steps, log.String())
	}

	st, err = rb.Emergency(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	base, _ := config.LookupProfile("baseline")
	if st.Settings.Profile != "baseline" || len(st.Settings.Modified) != 0 || st.Settings.Projector.MaxConcurrency != base.Projector.MaxConcurrency ||
		st.Settings.Corrections != base.Corrections || st.Settings.Cache.Invalidation != base.Cache.Invalidation {
		t.Fatalf("after the emergency rollback: %+v", st.Settings)
	}
	mustTuned(t, env, st.Settings)
}

// TestLiveKnobs: single knobs take effect live in their components: a
// write budget starts refusing at once and lifts again, and the cache
// resizes.
func TestLiveKnobs(t *testing.T) {
	env := apptest.Start(t, cluster, admin, repPool, func(c *config.Config) { c.Profile = "phase1" })
	org := env.Signup("Knobs")
	prop := env.Property(org.AdminToken, "Harbour", "")
	write := func() int {
		return env.Do("POST", "/v1/finance/revenues", org.AdminToken, apptest.Txn{PropertyID: prop, Source: "room",
			AmountCents: 100, PaymentMode: "cash", OccurredAt: "2026-06-10T10:00:00Z"}).Status
	}
	if s := write(); s != 201 {
		t.Fatalf("write before any limit: %d", s)
	}
	st := putSettings(t, env, "tester", map[string]any{"rateLimits": map[string]any{"writesPerUser": map[string]any{"count": 2, "periodSeconds": 3600}},
		"cache": map[string]any{"entries": 5, "invalidation": "sync"}})
	if st.Settings.RateLimits.WritesPerUser != (knobs.Limit{Count: 2, PeriodSeconds: 3600}) {
		t.Fatalf("settings: %+v", st.Settings.RateLimits)
	}
	got := []int{write(), write(), write()}
	if fmt.Sprint(got) != "[201 201 429]" {
		t.Fatalf("writes under a budget of 2: %v", got)
	}
	if n := env.App.Cache.Entries(); n != 5 {
		t.Fatalf("cache holds up to %d entries, want 5", n)
	}
	putSettings(t, env, "tester", map[string]any{"rateLimits": map[string]any{"writesPerUser": map[string]any{"count": 0}}})
	if s := write(); s != 201 {
		t.Fatalf("write after the budget was lifted: %d", s)
	}
}

// TestRollbackStopsWhenUnstable: a gradual rollback stops at the first step
// after which the instance is unstable (here, overloaded: it sheds reads
// with 503) and leaves the settings there.
func TestRollbackStopsWhenUnstable(t *testing.T) {
	env := apptest.Start(t, cluster, admin, repPool, func(c *config.Config) {
		c.Profile = "phase1"
		c.MaxInFlight, c.MaxQueueWait = 1, time.Millisecond
	})
	org := env.Signup("Overloaded")
	prop := env.Property(org.AdminToken, "Harbour", "")
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		shed atomic.Int64
	)
	for range 6 {
		wg.Go(func() {
			for !stop.Load() {
				if r := env.Do("GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-06-10", org.AdminToken, nil); r.Status == 503 {
					shed.Add(1)
				}
			}
		})
	}
	var log strings.Builder
	rb := settings.Rollback{URL: env.BaseURL, Token: testAdminToken, StepWait: 300 * time.Millisecond, MaxErrorRate: 0.001, Log: &log}
	st, err := rb.Gradual(t.Context())
	stop.Store(true)
	wg.Wait()
	if shed.Load() == 0 {
		t.Fatal("the load never overloaded the instance: nothing to judge")
	}
	if !errors.Is(err, settings.ErrUnstable) {
		t.Fatalf("gradual rollback under overload: %v\n%s", err, log.String())
	}
	if st.Settings.Projector.MaxConcurrency != 200 || st.Settings.Projector.BatchSize != 250 {
		t.Fatalf("stopped with %+v, want the first step's settings\n%s", st.Settings.Projector, log.String())
	}
	if cur := getSettings(t, env); cur.Revision != st.Revision {
		t.Fatalf("settings moved on after the stop: revision %d, stopped at %d", cur.Revision, st.Revision)
	}
}
