package loadtest

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"hmp/internal/measure"
)

// Metrics reads the API's GET /metrics.
func (c *Client) Metrics(ctx context.Context) (measure.Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return measure.Parse(resp.Body)
}

// bucketLatency summarises h: quantiles as bucket upper bounds, the exact
// mean; Min and Max are unknown and left 0. A quantile beyond the last
// finite bucket shows as the largest duration.
func bucketLatency(h measure.BucketHistogram) Latency {
	d := func(sec float64) time.Duration {
		if math.IsInf(sec, 1) || sec*1e9 >= math.MaxInt64 {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(sec * 1e9)
	}
	l := Latency{Count: uint64(h.Count), P50: d(h.Bound(0.50)), P90: d(h.Bound(0.90)), P99: d(h.Bound(0.99)), P999: d(h.Bound(0.999))}
	if h.Count > 0 {
		l.Mean = d(h.Sum / h.Count)
	}
	return l
}
