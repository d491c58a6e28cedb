package app_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/ratelimit"
)

// cpuSeconds is the process's user+system CPU time so far (the app and
// the load generator share the process: compare runs side by side).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// rssMiB is the process's resident set size.
func rssMiB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkLoginFlood floods POST /v1/auth/login for one email (wrong
// passwords, 8 clients, 400 attempts, bcrypt cost 10 as in production)
// with the default limits and with limits off, side by side, and reports
// the attempts until the first 429 and the CPU seconds the flood cost.
//
//	go test ./internal/app -run '^$' -bench LoginFlood -benchtime 1x
func BenchmarkLoginFlood(b *testing.B) {
	for _, c := range []struct {
		name string
		opt  func(*config.Config)
	}{
		{"default-limits", func(*config.Config) {}},
		{"no-limits", func(c *config.Config) {
			off := ratelimit.Limit{Count: -1}
			c.RateLimits.LoginPerEmail, c.RateLimits.LoginPerAddr = off, off
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			env := apptest.Start(b, cluster, smallPool, c.opt, func(c *config.Config) { c.BcryptCost = 10 })
			org := env.Signup("Target")
			for range b.N {
				const attempts, clients = 400, 8
				var next, first, bcrypts, refused atomic.Int64
				var mu sync.Mutex
				statuses := map[int]int{}
				first.Store(-1)
				cpu0, t0 := cpuSeconds(), time.Now()
				var wg sync.WaitGroup
				for range clients {
					wg.Go(func() {
						for {
							i := next.Add(1)
							if i > attempts {
								return
							}
							r, err := env.Send("POST", "/v1/auth/login", "", map[string]any{"email": org.AdminEmail, "password": "guess"})
							if err != nil {
								b.Error(err)
								return
							}
							mu.Lock()
							if r.Status == 200 && statuses[200] == 0 {
								b.Logf("200: %s %v", r.Body, r.Header)
							}
							statuses[r.Status]++
							mu.Unlock()
							switch r.Status {
							case 401:
								bcrypts.Add(1)
							case 429:
								refused.Add(1)
								first.CompareAndSwap(-1, i)
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(first.Load()), "first429_at")
				b.ReportMetric(float64(bcrypts.Load()), "bcrypts")
				b.ReportMetric(float64(refused.Load()), "refused")
				b.ReportMetric(cpuSeconds()-cpu0, "cpu_s")
				b.ReportMetric(time.Since(t0).Seconds(), "wall_s")
				b.Logf("statuses: %v", statuses)
				b.Logf("%s", grepLines(env.Logs.String(), "client_gone"))
			}
		})
	}
}

// BenchmarkOverload measures the API at about twice its capacity, open
// loop: first the capacity of creates (closed loop, 32 clients, 3 s), then
// 10 s of arrivals at twice that rate whatever the answers. It reports
// the goodput (201/s), the share of 503s, the p99 of the accepted
// requests and the RSS at the start and the end.
//
//	go test ./internal/app -run '^$' -bench Overload -benchtime 1x
func BenchmarkOverload(b *testing.B) {
	env := apptest.Start(b, cluster, func(c *config.Config) { c.Pool.MaxConns, c.Pool.MinConns = 40, 4 })
	org := env.Signup("Overload Org")
	prop := env.Property(org.AdminToken, "Hot", "")
	body, _ := json.Marshal(apptest.Txn{PropertyID: prop, Source: "room", AmountCents: 100, PaymentMode: "cash", OccurredAt: time.Now().UTC().Format(time.RFC3339)})
	tr := &http.Transport{MaxIdleConnsPerHost: 2048, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	send := func() (int, time.Duration) {
		req, _ := http.NewRequest("POST", env.BaseURL+"/v1/finance/revenues", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+org.AdminToken)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return -1, time.Since(t0)
		}
		_, _ = drain(resp)
		return resp.StatusCode, time.Since(t0)
	}
	for range b.N {
		// Capacity: closed loop.
		var done atomic.Int64
		stop := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if s, _ := send(); s == 201 {
						done.Add(1)
					}
				}
			})
		}
		wg.Wait()
		capacity := float64(done.Load()) / 3
		rate := 2 * capacity
		rss0 := rssMiB()

		var (
			mu       sync.Mutex
			accepted []time.Duration
			counts   = map[int]int{}
		)
		// Arrivals on an absolute schedule: a generator that falls behind
		// catches up in a burst instead of silently offering less.
		interval := time.Duration(float64(time.Second) / rate)
		start := time.Now()
		total := int(rate * 10)
		var open sync.WaitGroup
		sent := 0
		for i := range total {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			sent++
			open.Go(func() {
				s, d := send()
				mu.Lock()
				counts[s]++
				if s == 201 {
					accepted = append(accepted, d)
				}
				mu.Unlock()
			})
		}
		elapsed := time.Since(start).Seconds()
		open.Wait()
		slices.Sort(accepted)
		p99 := time.Duration(0)
		if len(accepted) > 0 {
			p99 = accepted[len(accepted)*99/100]
		}
		b.ReportMetric(capacity, "capacity/s")
		b.ReportMetric(float64(sent)/elapsed, "offered/s")
		b.ReportMetric(float64(counts[201])/elapsed, "goodput/s")
		b.ReportMetric(float64(counts[503])/float64(max(sent, 1)), "share503")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99_accepted_ms")
		b.ReportMetric(rss0, "rss_start_MiB")
		b.ReportMetric(rssMiB(), "rss_end_MiB")
		b.Logf("statuses: %v", counts)
	}
}

func drain(resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	var buf [4096]byte
	var n int64
	for {
		k, err := resp.Body.Read(buf[:])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}
