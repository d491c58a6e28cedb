package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"hmp/internal/browsertest"
	"hmp/internal/loadtest"
)

// The histogram's quantiles of a synthetic distribution (log-normal, a
// million samples) match the exact order statistics within its 0.8 %.
func TestQuantilesOfSyntheticDistribution(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 7))
	samples := make([]time.Duration, 200_000)
	var h loadtest.Histogram
	for i := range samples {
		d := time.Duration(math.Exp(r.NormFloat64()*0.8+math.Log(5e6)) + 1) // median 5 ms
		samples[i] = d
		h.Record(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.95, 0.99, 0.999} {
		exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.008 {
			t.Errorf("q%.3f: got %s, exact %s (%.2f %% off)", q, got, exact, 100*rel)
		}
	}
	if h.Max() != samples[len(samples)-1] || h.CountAtMost(samples[len(samples)-1]) != uint64(len(samples)) {
		t.Errorf("max %s, count at max %d", h.Max(), h.CountAtMost(h.Max()))
	}
	if n := h.CountAtMost(samples[len(samples)/2]); math.Abs(float64(n)-float64(len(samples))/2) > float64(len(samples))*0.01 {
		t.Errorf("count at the median %d of %d", n, len(samples))
	}
}

// fakeTenants is one organization with made-up tokens: for runs against a
// stub server.
type fakeTenants struct{ t *loadtest.MixedTenant }

func (f fakeTenants) Len() int { return 1 }
func (f fakeTenants) Get(context.Context, int) (*loadtest.MixedTenant, error) {
	return f.t, nil
}

// An open loop keeps its schedule while the server answers nothing: every
// request due in the window reaches the stalled server before it answers
// the first one (a closed loop would stop at its client count), and each
// latency counts from when the request was due.
func TestMixedOpenLoopKeepsPaceWithStalledServer(t *testing.T) {
	t.Parallel()
	const rate, want = 200.0, 100 // half a second of requests
	var arrived atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			return // /metrics: empty
		}
		if arrived.Add(1) == want {
			once.Do(func() { close(release) })
		}
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(30 * time.Second): // a broken pacer fails below, not hangs
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	client, err := loadtest.NewClient(srv.URL, 256, 40*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	res, err := loadtest.Mixed(context.Background(), loadtest.MixedConfig{
		Client: client, Tenants: fakeTenants{&loadtest.MixedTenant{AdminToken: "a", ManagerToken: "m", Properties: []string{"p"}}},
		Rate: rate, Duration: time.Duration(want) * time.Second / time.Duration(rate), ReadShare: 1, ProbeRate: -1, MaxInFlight: 256,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-release:
	default:
		t.Fatalf("only %d of %d requests reached the stalled server", arrived.Load(), want)
	}
	if res.All.OK != want || res.All.Failed != 0 || res.Writes.OK != 0 {
		t.Fatalf("all %+v, writes %+v", res.All, res.Writes)
	}
	// The first request waited for the last to be due: its latency counts
	// from its own due time, so the slowest is at least the window.
	if res.All.MaxMs < float64(want-1)/rate*1000 {
		t.Fatalf("max latency %.1f ms is less than the stall", res.All.MaxMs)
	}
	if res.Mode != "open" || len(res.Timeline) == 0 {
		t.Fatalf("mode %s, timeline %d", res.Mode, len(res.Timeline))
	}
}

func syntheticReport() *loadtest.MixedReport {
	mk := func(profile string, scale float64) loadtest.MixedResult {
		var ops []loadtest.OpStats
		for i, n := range []string{loadtest.OpDailyReport, loadtest.OpMonthly, loadtest.OpRevenueCreate} {
			ops = append(ops, loadtest.OpStats{Name: n, Write: n == loadtest.OpRevenueCreate, OK: 100, Throughput: 10 * scale,
				Statuses: map[string]uint64{"200": 100}, P50Ms: 1 * scale, P95Ms: 2 * scale, P99Ms: float64(3+i) * scale, MaxMs: 9 * scale,
				Histogram: []loadtest.Bucket{{LeMs: 1, Count: 50}, {LeMs: 1.78, Count: 40}, {LeMs: 3.16, Count: 10}}})
		}
		var tl []loadtest.TimePoint
		for s := range 10 {
			tl = append(tl, loadtest.TimePoint{AtS: float64(s), Measured: true, TargetRate: 30, ReadOK: uint64(20 + s), WriteOK: 10,
				ReadP50Ms: 1, ReadP99Ms: float64(3+s%3) * scale, WriteP99Ms: 5 * scale})
		}
		f := loadtest.OpStats{Name: "freshness", OK: 10, P50Ms: 20, P99Ms: 40 * scale}
		return loadtest.MixedResult{Profile: profile, Scenario: "steady", Mode: "open", Rate: 30, Orgs: 10, DurationMs: 10000, ReadShare: 0.8,
			Ops: ops, All: loadtest.OpStats{Name: "all", OK: 300, Throughput: 30, P99Ms: 5 * scale}, Freshness: &f, Timeline: tl,
			Ramp: &loadtest.RampResult{BudgetMs: 250, Steps: []loadtest.RampStep{{Rate: 30, Throughput: 30, P99Ms: 5, Pass: true}}}}
	}
	return loadtest.NewMixedReport([]loadtest.MixedResult{mk("baseline", 2), mk("phase1", 1)})
}

// The JSON report keeps its schema: names the checks and dashboards rely
// on, per profile and per operation, and the comparison's ratios.
func TestMixedJSONSchema(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := syntheticReport().WriteJSON("-", &buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m any) []string {
		var out []string
		for k := range m.(map[string]any) {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if doc["schema"] != loadtest.MixedSchema {
		t.Fatalf("schema %v", doc["schema"])
	}
	for _, k := range []string{"startedAt", "host", "scenario", "orgs", "profiles", "comparison", "params"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("report lacks %q", k)
		}
	}
	prof := doc["profiles"].([]any)[0].(map[string]any)
	for _, k := range []string{"profile", "scenario", "mode", "rate", "orgs", "durationMs", "ops", "reads", "writes", "all",
		"freshness", "drainMs", "rssBytes", "peakRssBytes", "timeline", "ramp"} {
		if _, ok := prof[k]; !ok {
			t.Errorf("profile lacks %q", k)
		}
	}
	op := prof["ops"].([]any)[0]
	if got, want := strings.Join(keys(op), ","), "failed,histogram,maxMs,meanMs,name,ok,p50Ms,p95Ms,p99Ms,statuses,throughput,write"; got != want {
		t.Errorf("operation fields %s, want %s", got, want)
	}
	if got, want := strings.Join(keys(prof["timeline"].([]any)[0]), ","),
		"atS,errors,measured,readOk,readP50Ms,readP99Ms,targetRate,writeOk,writeP50Ms,writeP99Ms"; got != want {
		t.Errorf("timeline fields %s, want %s", got, want)
	}
	cmp := doc["comparison"].([]any)[0].(map[string]any)
	if got, want := strings.Join(keys(cmp), ","), "name,p99Ms,p99Ratio,throughput,throughputRatio"; got != want {
		t.Errorf("comparison fields %s, want %s", got, want)
	}
	if cmp["name"] != "all" || cmp["p99Ratio"].([]any)[1].(float64) != 0.5 {
		t.Errorf("comparison %v", cmp)
	}
	// It reads back into the same report.
	var back loadtest.MixedReport
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Profiles[1].Ops[2].P99Ms != 5 {
		t.Fatalf("read back: %v %+v", err, back.Profiles)
	}
}

// The HTML page draws its charts in a real browser, without a network:
// every chart has drawn paths, and the screenshot is not a blank page.
func TestMixedHTMLRendersCharts(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "report.html")
	if err := syntheticReport().WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t, 1000, 2400, 40*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+path), chromedp.WaitVisible("svg.chart")); err != nil {
		t.Fatal(err)
	}
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.chart").length`))
	if err != nil {
		t.Fatal(err)
	}
	drawn, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("svg.chart path.series")).filter(p => p.getAttribute("d").length > 10 && p.getBBox().width > 0).length`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	// 3 over time, 2 comparison bar charts, 3 histograms.
	if charts != 8 || drawn < 20 {
		t.Fatalf("%d charts, %d drawn series", charts, drawn)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	colored := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if max(r, g, bl)-min(r, g, bl) > 0x4000 { // a saturated (chart) colour, not text grey
				colored++
			}
		}
	}
	if colored < 500 {
		t.Fatalf("screenshot has %d coloured pixels: the charts did not draw", colored)
	}
	if os.Getenv("HMP_KEEP_SCREENSHOT") != "" {
		_ = os.WriteFile(os.Getenv("HMP_KEEP_SCREENSHOT"), shot, 0o644)
	}
}

// The ramp raises the rate step by step and stops at the first step whose
// p99 passes the budget: here a server that answers slower past a request
// rate (more than 1,000 a second over a 200 ms window), so the knee is the
// step below the one that broke (10, 40, 160, 640 pass; 2,560 breaks). A
// rate, not a concurrency, decides, so a busy machine does not move it.
func TestMixedRampFindsKnee(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var window time.Time
	var seen int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			return
		}
		mu.Lock()
		if now := time.Now(); now.Sub(window) > 200*time.Millisecond {
			window, seen = now, 0
		}
		seen++
		busy := seen > 200
		mu.Unlock()
		if busy {
			time.Sleep(300 * time.Millisecond) // the stub's service time, not a wait for the test
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	client, err := loadtest.NewClient(srv.URL, 256, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	res, err := loadtest.Mixed(context.Background(), loadtest.MixedConfig{
		Client: client, Tenants: fakeTenants{&loadtest.MixedTenant{AdminToken: "a", ManagerToken: "m", Properties: []string{"p"}}},
		Scenario: loadtest.ScenarioRamp, Rate: 10, RampStep: 300 * time.Millisecond, RampFactor: 4, RampBudget: 250 * time.Millisecond,
		Duration: 30 * time.Second, ReadShare: 1, ProbeRate: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Ramp
	if r == nil || len(r.Steps) < 2 || r.Broke != "p99 over budget" || r.Steps[len(r.Steps)-1].Pass {
		t.Fatalf("ramp %+v", r)
	}
	for i, s := range r.Steps[:len(r.Steps)-1] {
		if !s.Pass || s.Rate != 10*math.Pow(4, float64(i)) {
			t.Fatalf("step %d: %+v", i, s)
		}
	}
	if r.Knee == nil || *r.Knee != r.Steps[len(r.Steps)-2] || res.DurationMs >= 30000 {
		t.Fatalf("knee %+v of %+v, ran %.0f ms", r.Knee, r.Steps, res.DurationMs)
	}
}
