package app_test

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"hmp/internal/apptest"
	"hmp/internal/browsertest"
	"hmp/internal/config"
	"hmp/internal/measure"
	"hmp/internal/telemetry"
)

// TestDashboard: the dashboard needs the operator token (header, or the
// login form's HttpOnly SameSite=Strict cookie); in headless Chromium the
// page loads, its charts draw and move under load, a firing alert appears,
// and a live settings change shows.
func TestDashboard(t *testing.T) {
	// The alert evaluator's own cache rule, with a threshold every read
	// load crosses (any miss puts the hit rate below 100 %), evaluated
	// often and firing at once.
	env := apptest.Start(t, cluster, admin, repPool, func(c *config.Config) {
		c.Profile = "phase1"
		c.Alerts = telemetry.Config{Interval: 200 * time.Millisecond, Window: 10 * time.Second, For: -1,
			Thresholds: telemetry.Thresholds{CacheHitRate: 1}}
	})

	t.Run("access", func(t *testing.T) {
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, path := range []string{"/dashboard", "/dashboard/events"} {
			resp, err := noRedirect.Get(env.BaseURL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("GET %s without a token: %d", path, resp.StatusCode)
			}
		}
		resp, err := noRedirect.PostForm(env.BaseURL+"/dashboard/login", url.Values{"token": {"not-the-token-at-all"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
			t.Fatalf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
		resp, err = noRedirect.PostForm(env.BaseURL+"/dashboard/login", url.Values{"token": {testAdminToken}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cs := resp.Cookies()
		if resp.StatusCode != 303 || len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode ||
			cs[0].Value == "" || strings.Contains(cs[0].Value, testAdminToken) {
			t.Fatalf("login: %d, cookies %+v", resp.StatusCode, cs)
		}
		req, _ := http.NewRequest("GET", env.BaseURL+"/dashboard", nil)
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		resp, err = noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /dashboard with the token header: %d", resp.StatusCode)
		}
	})

	ctx := browsertest.New(t, 1200, 1600, 90*time.Second)
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(45*time.Second))); err != nil {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(Array.from(document.querySelectorAll("figure.chart")).map(f => [f.id, f.dataset.last, f.dataset.points]).concat([document.body.dataset.samples, document.getElementById("status").textContent]))`))
			var series []string
			if resp, err := http.Get(env.BaseURL + "/metrics"); err == nil {
				m, _ := measure.Parse(resp.Body)
				resp.Body.Close()
				for k := range m {
					if strings.HasPrefix(k, "hmp_http_requests_total") {
						series = append(series, k)
					}
				}
			}
			t.Fatalf("%s: %v (page: %s; http series: %v)", what, err, state, series)
		}
	}
	// The login form, then the page.
	if err := chromedp.Do(ctx, chromedp.Navigate(env.BaseURL+"/dashboard"), chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", testAdminToken), chromedp.Submit("#login"), chromedp.WaitVisible("body.dashboard")); err != nil {
		t.Fatal(err)
	}
	poll("samples arrive", `Number(document.body.dataset.samples || 0) >= 2`)
	poll("settings shown", `(document.querySelector('#settings dd[data-key="settings.profile"]') || {}).textContent === "phase1"`)

	// Load: writes and reads until the test ends.
	org := env.Signup("Dashboard")
	prop := env.Property(org.AdminToken, "Harbour", "")
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	defer func() { stop.Store(true); wg.Wait() }()
	wg.Go(func() {
		for !stop.Load() {
			env.Do("POST", "/v1/finance/revenues", org.AdminToken, apptest.Txn{PropertyID: prop, Source: "room",
				AmountCents: 100, PaymentMode: "cash", OccurredAt: "2026-06-10T10:00:00Z"})
			env.Do("GET", "/v1/reports/daily-report?propertyId="+prop+"&date=2026-06-10", org.AdminToken, nil)
		}
	})
	throughput := `JSON.parse(document.getElementById("chart-throughput").dataset.last || "[null,null]")`
	poll("writes and reads charted", `(function(){ const l = `+throughput+`; return l[0] > 0 && l[1] > 0; })()`)
	poll("the throughput chart has a line", `Number(document.getElementById("chart-throughput").dataset.segments) >= 2`)
	// Moving: the newest point changes while the load runs.
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("chart-throughput").dataset.points`))
	if err != nil {
		t.Fatal(err)
	}
	poll("the chart moves", `document.getElementById("chart-throughput").dataset.points !== "`+first+`"`)
	poll("latency charted", `JSON.parse(document.getElementById("chart-latency").dataset.last)[1] > 0`)
	poll("pool charted", `JSON.parse(document.getElementById("chart-pool").dataset.last)[0] !== null`)
	poll("cache hit rate charted", `JSON.parse(document.getElementById("chart-cache").dataset.last)[0] !== null`)
	// The canvas really holds drawn pixels (not only data).
	painted, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(function(){
		const c = document.querySelector("#chart-throughput canvas"), g = c.getContext("2d");
		const d = g.getImageData(0, 0, c.width, c.height).data; let n = 0;
		for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
		return n; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if painted < 200 {
		t.Fatalf("the throughput canvas has %d painted pixels", painted)
	}
	poll("the firing alert shows", `!!document.querySelector('#alerts li.state-firing[data-name="HMPCacheHitRateLow"]')`)

	// A live settings change shows on the page.
	putSettings(t, env, "tester", map[string]any{"profile": "baseline"})
	poll("the new settings show", `(document.querySelector('#settings dd[data-key="settings.profile"]') || {}).textContent === "baseline"`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil && len(shot) > 0 {
		t.Logf("screenshot: %d bytes (set HMP_DASHBOARD_SHOT to keep it)", len(shot))
		if p := envPath("HMP_DASHBOARD_SHOT"); p != "" {
			writeFile(t, p, shot)
		}
	}
}

func envPath(name string) string { return strings.TrimSpace(os.Getenv(name)) }

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
