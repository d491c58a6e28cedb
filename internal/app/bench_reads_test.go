package app_test

import (
	"bytes"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"hmp/internal/apptest"
)

// BenchmarkCachedDailyReport serves one cached GET
// /v1/reports/daily-report per op through the whole handler stack
// (request log and metrics, admission, authentication, huma, the access
// check, the cache), without a network, beside a bare net/http handler
// that writes the same JSON bytes through the same writer: ns/op, B/op
// and allocs/op side by side are what a cache hit costs above the
// machine's floor.
//
//	go test ./internal/app -run '^$' -bench CachedDailyReport -benchmem
func BenchmarkCachedDailyReport(b *testing.B) {
	env := apptest.StartLogging(b, cluster, slog.LevelInfo) // hmp serve's default level
	org := env.Signup("Bench Reads")
	prop := env.Property(org.AdminToken, "Bench", "")
	_, mgr := env.Manager(org.AdminToken, "mgr@bench-reads.test", prop)
	created := env.Must(201, "POST", "/v1/finance/revenues", org.AdminToken, apptest.Txn{PropertyID: prop, Source: "room", AmountCents: 12_345, PaymentMode: "cash", OccurredAt: time.Now().UTC().Format(time.RFC3339)})
	var row apptest.Row
	created.JSON(b, &row)
	path := "/v1/reports/daily-report?propertyId=" + prop + "&date=" + row.BusinessDate
	// A read with the write's token reflects it and stores it for the
	// tokenless reads below.
	body := env.Must(200, "GET", path, org.AdminToken, nil, "X-Consistency-Token", created.Header.Get("X-Consistency-Token")).Body

	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	for _, c := range []struct {
		name    string
		handler http.Handler
		token   string
	}{{"bare", bare, org.AdminToken}, {"hmp-admin", env.App.Handler, org.AdminToken}, {"hmp-manager", env.App.Handler, mgr}} {
		b.Run(c.name, func(b *testing.B) {
			tmpl := httptest.NewRequest(http.MethodGet, path, nil)
			tmpl.Header.Set("Authorization", "Bearer "+c.token)
			w := &discardWriter{h: http.Header{}}
			// The first read fills the cache (and the token's caches).
			serveOnce(c.handler, tmpl, w)
			if w.status != http.StatusOK || !bytes.Equal(w.body.Bytes(), body) {
				b.Fatalf("%s: %d %s, want 200 %s", c.name, w.status, w.body.Bytes(), body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				serveOnce(c.handler, tmpl, w)
			}
			b.StopTimer()
			if w.status != http.StatusOK {
				b.Fatalf("%s: %d %s", c.name, w.status, w.body.Bytes())
			}
			b.ReportMetric(float64(w.body.Len()), "body-bytes")
		})
	}
}

// serveOnce serves a fresh copy of tmpl (the server hands every request
// its own request and header map; both sides of the benchmark pay for
// this copy alike).
func serveOnce(h http.Handler, tmpl *http.Request, w *discardWriter) {
	r := *tmpl
	r.Header = maps.Clone(tmpl.Header)
	w.reset()
	h.ServeHTTP(w, &r)
}

// discardWriter is a reusable ResponseWriter that keeps the last body.
type discardWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status = 0
	w.body.Reset()
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}
