package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"hmp/internal/loadtest"
)

// TestLoadtestReads runs `hmp loadtest reads` end to end, briefly: its own
// durable cluster, a cached and an uncached API in turn, a trickle of
// writes, the JSON report. The figures must be those of real runs: reads
// answered by both, hits on the cached one only, invalidations applied
// (the trickle's days go stale) with a lag measured.
func TestLoadtestReads(t *testing.T) {
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "reads", "--orgs=3", "--properties=2", "--days=10", "--clients=4",
		"--warmup=200ms", "--duration=1s", "--write-rate=20", "--json=-"}, &out, &errs)
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, errs.String())
	}
	var rep loadtest.ReadsReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	if len(rep.Results) != 2 || rep.Results[0].Name != "cached" || rep.Results[1].Name != "uncached" {
		t.Fatalf("results %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Reads.OK == 0 || r.Reads.Failed != 0 || r.Reads.Throughput <= 0 || r.Reads.Latency.P50 <= 0 || r.Reads.Latency.P99 < r.Reads.Latency.P50 {
			t.Errorf("%s reads: %+v", r.Name, r.Reads)
		}
		if r.Writes == 0 {
			t.Errorf("%s: no writes beside the reads", r.Name)
		}
	}
	if want := rep.Results[0].Reads.Throughput / rep.Results[1].Reads.Throughput; rep.Ratio <= 0 || rep.Ratio < want-0.01 || rep.Ratio > want+0.01 {
		t.Errorf("ratio %v, want %v", rep.Ratio, want)
	}
	if rep.Results[1].Cache != nil {
		t.Errorf("uncached run has cache figures: %+v", rep.Results[1].Cache)
	}
	c := rep.Results[0].Cache
	if c == nil || c.HitRate == nil {
		t.Fatalf("cached run has no cache figures: %+v", c)
	}
	if *c.HitRate <= 0 || *c.HitRate > 1 || c.Lookups < float64(rep.Results[0].Reads.OK) {
		t.Errorf("hit rate %v over %v lookups (%d reads)", *c.HitRate, c.Lookups, rep.Results[0].Reads.OK)
	}
	for name, v := range map[string]*float64{"active": c.HitRateActive, "historical": c.HitRateHistorical} {
		if v == nil || *v < 0 || *v > 1 {
			t.Errorf("%s hit rate %v", name, v)
		}
	}
	if c.Invalidations == 0 || c.InvalidationLag.Count == 0 || c.InvalidationLag.P99 <= 0 {
		t.Errorf("invalidations %v, lag %+v", c.Invalidations, c.InvalidationLag)
	}
	t.Logf("\n%s", out.String())
}
