package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hmp/internal/loadtest"
)

// TestLoadtestGuide runs `hmp loadtest guide` end to end at a tiny size:
// its own durable cluster, a seeded template cloned per profile, the JSON
// report on stdout and the HTML page. It checks what was reported, never
// how fast (internal/loadtest's TestGuide checks every figure).
func TestLoadtestGuide(t *testing.T) {
	page := filepath.Join(t.TempDir(), "guide.html")
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "guide", "--orgs=5", "--days=3", "--profiles=baseline,phase1",
		"--rate=50", "--warmup=200ms", "--duration=800ms", "--events=1000", "--corrections=20", "--write-clients=2",
		"--http-clients=2", "--max-settle=-1s", "--json=-", "--html=" + page}, &out, &errs)
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, errs.String())
	}
	var rep loadtest.GuideReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	if rep.Schema != loadtest.GuideSchema || !rep.Durable || rep.Server["fsync"] != "on" {
		t.Errorf("want schema %s on a durable cluster: %q durable=%v %v", loadtest.GuideSchema, rep.Schema, rep.Durable, rep.Server)
	}
	if len(rep.Order) != 2 || rep.Order[0] != "baseline" || rep.Limits.PgbenchTps <= 0 || rep.Limits.BareHTTPRps <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, name := range rep.Order {
		if p := rep.Profiles[name]; p == nil || p.EventsPerSecond <= 0 || p.CorrectionsPerSecond <= 0 || p.WritesPerSecond <= 0 {
			t.Errorf("%s: %+v", name, p)
		}
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(html), "<svg") || !strings.Contains(string(html), "event processing capacity") {
		t.Errorf("page:\n%s", html)
	}

	var usage bytes.Buffer
	if err := run(context.Background(), []string{"loadtest", "guide", "--profiles=baseline,nope"}, &usage, &usage); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown profile: %v", err)
	}
}
