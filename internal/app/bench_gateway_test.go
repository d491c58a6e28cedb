package app_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/config"
	"hmp/internal/natstest"
)

// BenchmarkGatewayVsAll sends the same open-loop load (a fixed rate,
// HMP_BENCH_RATE per second, default 100) over loopback HTTP to role all
// and to a split deployment (one gateway, one finance, one reports, NATS
// between, all in this process), side by side in one run: a cached daily
// report and a revenue create. Each latency counts from the request's
// scheduled start (no coordinated omission); cpu-us/op is this process's
// CPU (user + system) per request, PostgreSQL's aside; shed-% the share
// answered 503 (shed or unavailable: counted, not failed, since a loaded
// machine sheds). The ratios
// gateway/all of p50, p99 and CPU per request are what issue 18 item 3
// bounds (1.5× p99, +1 ms p50, 1.3× CPU).
//
//	go test ./internal/app -run '^$' -bench GatewayVsAll -benchtime 3000x -count 3
func BenchmarkGatewayVsAll(b *testing.B) {
	rate := 100.0
	if v := os.Getenv("HMP_BENCH_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			b.Fatalf("HMP_BENCH_RATE=%q: want a positive number of requests per second", v)
		}
		rate = r
	}
	quiet := func(c *config.Config) { c.Reconcile.SampleRate, c.Reconcile.SweepEvery = -1, -1 }
	all := apptest.StartLogging(b, cluster, slog.LevelInfo, quiet)
	db, natsURL := cluster.NewDatabase(b), natstest.StartServer(b)
	role := func(r string) *apptest.Env {
		return apptest.StartLogging(b, cluster, slog.LevelInfo, quiet, func(c *config.Config) {
			c.Role, c.DatabaseURL, c.NATSURL, c.BusReplicas = r, db, natsURL, 1
		})
	}
	role(config.RoleFinance)
	role(config.RoleReports)
	gw := role(config.RoleGateway)

	type target struct {
		name        string
		env         *apptest.Env
		token, prop string
		daily       string
	}
	var targets []target
	for _, t := range []struct {
		name string
		env  *apptest.Env
	}{{"all", all}, {"gateway", gw}} {
		org := t.env.Signup("Bench Gateway " + t.name)
		prop := t.env.Property(org.AdminToken, "Bench", "UTC")
		created := t.env.Must(201, "POST", "/v1/finance/revenues", org.AdminToken, revenueBody(prop))
		var row apptest.Row
		created.JSON(b, &row)
		daily := "/v1/reports/daily-report?propertyId=" + prop + "&date=" + row.BusinessDate
		// The write's token makes the read wait for it, and fills the cache
		// for the tokenless reads measured.
		t.env.Must(200, "GET", daily, org.AdminToken, nil, "X-Consistency-Token", created.Header.Get("X-Consistency-Token"))
		targets = append(targets, target{t.name, t.env, org.AdminToken, prop, daily})
	}
	for _, kind := range []string{"daily", "create"} {
		for _, t := range targets {
			b.Run(kind+"/"+t.name, func(b *testing.B) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
				defer client.CloseIdleConnections()
				newReq := func() *http.Request {
					var r *http.Request
					if kind == "daily" {
						r, _ = http.NewRequest(http.MethodGet, t.env.BaseURL+t.daily, nil)
					} else {
						r, _ = http.NewRequest(http.MethodPost, t.env.BaseURL+"/v1/finance/revenues", bytes.NewReader(revenueJSON(t.prop)))
						r.Header.Set("Content-Type", "application/json")
					}
					r.Header.Set("Authorization", "Bearer "+t.token)
					return r
				}
				want := http.StatusOK
				if kind == "create" {
					want = http.StatusCreated
				}
				lat, cpu, shed, failed := openLoop(b, client, newReq, want, rate)
				if failed != "" {
					b.Fatal(failed)
				}
				slices.Sort(lat)
				q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
				b.ReportMetric(q(0.50), "p50-us")
				b.ReportMetric(q(0.99), "p99-us")
				b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-us/op")
				b.ReportMetric(100*float64(shed)/float64(len(lat)), "shed-%")
			})
		}
	}
}

// openLoop sends b.N requests at rate per second, each on its own
// goroutine at its scheduled time, and returns each one's latency from
// that time, the process's CPU over the run, how many were answered 503,
// and the first other unexpected answer ("" when none).
func openLoop(b *testing.B, client *http.Client, newReq func() *http.Request, want int, rate float64) ([]time.Duration, time.Duration, int, string) {
	// A few unmeasured requests open the connections.
	for range 8 {
		if resp, err := client.Do(newReq()); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	n := b.N
	lat := make([]time.Duration, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   string
		shed     int
		interval = time.Duration(float64(time.Second) / rate)
	)
	cpu0 := processCPU()
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d) // pacing the generator, not waiting for a result
		}
		req := newReq()
		wg.Go(func() {
			resp, err := client.Do(req)
			var status int
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			}
			lat[i] = time.Since(at)
			if err == nil && status == http.StatusServiceUnavailable {
				mu.Lock()
				shed++
				mu.Unlock()
			} else if err != nil || status != want {
				mu.Lock()
				if failed == "" {
					failed = fmt.Sprintf("request %d: status %d, error %v", i, status, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	return lat, processCPU() - cpu0, shed, failed
}

func revenueBody(prop string) apptest.Txn {
	return apptest.Txn{PropertyID: prop, Source: "room", AmountCents: 12_345, PaymentMode: "cash", OccurredAt: time.Now().UTC().Format(time.RFC3339)}
}

func revenueJSON(prop string) []byte {
	return fmt.Appendf(nil, `{"propertyId":%q,"source":"room","amountCents":12345,"paymentMode":"cash","occurredAt":%q}`,
		prop, time.Now().UTC().Format(time.RFC3339))
}
