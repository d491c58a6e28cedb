package app_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/cache"
	"hmp/internal/config"
	"hmp/internal/natstest"
	"hmp/internal/redistest"
)

// startNATS runs a JetStream server on a free loopback port for several
// instances to share, and returns its URL.
func startNATS(t *testing.T) string {
	t.Helper()
	return natstest.StartServer(t)
}

// TestCacheConsistencyAcrossInstances is the cache's consistency property:
// three instances share one PostgreSQL, one bus and one Redis; random
// writes land on random instances, and every read carrying the newest
// consistency token, on any instance, equals the test's own ledger, while
// reads without a token keep every tier of every instance warm with what
// the writes then make stale. Last, every instance's token-less reads
// converge on the ledger well inside the (here one hour) TTL: the
// invalidations reached them. Two instances apply invalidations half a
// second late, so that their tiers are stale when token reads come (with
// token reads served from the tiers, this test fails). Run in both
// invalidation modes.
func TestCacheConsistencyAcrossInstances(t *testing.T) {
	for _, mode := range []string{cache.ModeAsync, cache.ModeSync} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			seed := uint64(time.Now().UnixNano())
			if s := os.Getenv("HMP_CACHE_SEED"); s != "" {
				seed, _ = strconv.ParseUint(s, 10, 64)
			}
			ops := 40
			if testing.Short() {
				ops = 15
			}
			t.Logf("seed %d (HMP_CACHE_SEED), %d writes", seed, ops)
			rng := rand.New(rand.NewPCG(seed, seed))

			natsURL, redis, db := startNATS(t), redistest.Start(t), cluster.NewDatabase(t)
			shared := func(c *config.Config) {
				c.DatabaseURL, c.NATSURL = db, natsURL
				c.Cache = cache.Config{RedisURL: redis.URL, ActiveTTL: time.Hour, HistoricalTTL: time.Hour, Invalidation: mode}
			}
			first := repStart(t, "Cache "+mode, shared)
			insts := []*repFixture{first}
			// The other two learn of every change late (fault injection):
			// their tiers hold stale entries while token reads arrive.
			slow := func(c *config.Config) { c.Cache.ApplyDelay = 500 * time.Millisecond }
			for range 2 {
				env := apptest.Start(t, cluster, apptest.WithClock(first.clock), repPool, shared, slow)
				insts = append(insts, &repFixture{t: t, env: env, clock: first.clock, org: first.org, admin: first.admin})
			}
			prop := first.property("Harbour", "Asia/Kolkata")
			ledger := newRepLedger()
			ledger.zones[prop] = repZone(t, "Asia/Kolkata")
			start, end := repParse(t, "2026-06-09"), repParse(t, "2026-06-15")
			day := func() repDate { return start.AddDate(0, 0, rng.IntN(7)) }
			var ids []string
			last := ""

			// warm reads, without a token, on a random instance.
			warm := func() {
				f := insts[rng.IntN(len(insts))]
				f.last = ""
				d := day().Format(time.DateOnly)
				switch rng.IntN(3) {
				case 0:
					f.daily(f.admin, prop, d, false)
				case 1:
					f.dailies(f.admin, prop, start.Format(time.DateOnly), end.Format(time.DateOnly), false)
				default:
					f.monthly(f.admin, prop, 2026, 6, false)
				}
			}
			// check reads with the newest token on a random instance and
			// compares with the ledger.
			check := func(i int) {
				f := insts[rng.IntN(len(insts))]
				f.last = last
				what := fmt.Sprintf("op %d on instance %d", i, slicesIndex(insts, f))
				switch rng.IntN(3) {
				case 0:
					d := day()
					got := f.daily(f.admin, prop, d.Format(time.DateOnly), false)
					repSameDays(t, what+" daily", []repDay{got}, ledger.days([]string{prop}, d, d, false))
				case 1:
					got := f.dailies(f.admin, prop, start.Format(time.DateOnly), end.Format(time.DateOnly), false)
					repSameDays(t, what+" range", got.Reports, ledger.days([]string{prop}, start, end, false))
				default:
					got := f.monthly(f.admin, prop, 2026, 6, false)
					repSameDays(t, what+" month", got.DailyReports, ledger.days([]string{prop}, repParse(t, "2026-06-01"), repParse(t, "2026-06-30"), false))
				}
			}
			for i := range ops {
				warm()
				warm()
				f := insts[rng.IntN(len(insts))]
				if len(ids) > 0 && rng.IntN(4) == 0 {
					j := rng.IntN(len(ids))
					id := ids[j]
					ids = append(ids[:j], ids[j+1:]...)
					f.write(204, "DELETE", "/v1/finance/"+ledger.rows[id].kind+"s/"+id, f.admin, nil)
					delete(ledger.rows, id)
				} else {
					kind, mode := []string{"revenue", "expense"}[rng.IntN(2)], []string{"cash", "bank"}[rng.IntN(2)]
					at := day().Add(time.Duration(6+rng.IntN(12)) * time.Hour) // inside the day in Kolkata
					amount := int64(1 + rng.IntN(100_000))
					row := f.create(f.admin, kind, prop, amount, mode, at.Format(time.RFC3339))
					ledger.rows[row.ID] = &repRow{kind: kind, prop: prop, amount: amount, mode: mode, at: at, status: "approved"}
					ids = append(ids, row.ID)
				}
				last = f.last
				check(i)
			}
			// Without a token, every instance converges long before the TTL.
			want := ledger.days([]string{prop}, start, end, false)
			for i, f := range insts {
				f.last = ""
				deadline := time.Now().Add(15 * time.Second)
				for {
					got := f.dailies(f.admin, prop, start.Format(time.DateOnly), end.Format(time.DateOnly), false)
					if fmt.Sprint(got.Reports) == fmt.Sprint(want) {
						break
					}
					if time.Now().After(deadline) {
						repSameDays(t, fmt.Sprintf("instance %d without a token", i), got.Reports, want)
						t.Fatalf("instance %d did not converge", i)
					}
					time.Sleep(20 * time.Millisecond) // polling with a deadline
				}
			}
		})
	}
}

func slicesIndex(s []*repFixture, f *repFixture) int {
	for i, x := range s {
		if x == f {
			return i
		}
	}
	return -1
}
