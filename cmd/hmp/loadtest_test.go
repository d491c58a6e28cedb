package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"hmp/internal/loadtest"
)

// TestLoadtestWrites runs `hmp loadtest writes` end to end, briefly: its
// own durable cluster, the API in process, pgbench, the JSON report.
func TestLoadtestWrites(t *testing.T) {
	t.Setenv("HMP_LOADTEST_ORGS", "2") // the environment sets flags too
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "writes", "--properties=2", "--clients=4", "--rounds=1", "--warmup=100ms",
		"--duration=300ms", "--rate=40", "--pgbench-clients=2", "--max-settle=2s", "--json=-"}, &out, &errs)
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, errs.String())
	}
	var rep loadtest.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	if !rep.Embedded || !rep.Durable || rep.Server["fsync"] != "on" {
		t.Errorf("want an embedded durable cluster: embedded=%v durable=%v %v", rep.Embedded, rep.Durable, rep.Server)
	}
	params := map[string]string{}
	for _, p := range rep.Params {
		params[p.Name] = p.Value
	}
	if params["orgs"] != "2" || params["clients"] != "4" {
		t.Errorf("params %v", params)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("results %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.OK == 0 || r.Failed != 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
}

// TestLoadtestProjection runs `hmp loadtest projection` end to end on a
// tiny backlog: its own durable cluster and bus, both profiles, the
// exactness checks, the JSON report.
func TestLoadtestProjection(t *testing.T) {
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "projection", "--events=2000", "--properties=20", "--orgs=2",
		"--max-settle=-1s", "--log-level=warn", "--json=-"}, &out, &errs)
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, errs.String())
	}
	var rep loadtest.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	if !rep.Embedded || !rep.Durable || rep.Server["fsync"] != "on" {
		t.Errorf("want an embedded durable cluster: embedded=%v durable=%v %v", rep.Embedded, rep.Durable, rep.Server)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("results %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.OK != 2000 || r.Failed != 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	exact := 0
	for _, c := range rep.Checks {
		if strings.Contains(c.Name, "projection exact") && c.Pass {
			exact++
		}
	}
	if exact != 2 {
		t.Errorf("checks %+v", rep.Checks)
	}
}

// TestLoadtestFreshness runs `hmp loadtest freshness` end to end, briefly.
func TestLoadtestFreshness(t *testing.T) {
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "freshness", "--orgs=2", "--properties=2", "--rate=50", "--warmup=200ms",
		"--duration=1s", "--probe-properties=2", "--max-settle=2s", "--json=-"}, &out, &errs)
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, errs.String())
	}
	var rep loadtest.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	if !rep.Embedded || !rep.Durable || len(rep.Results) != 3 || len(rep.Checks) != 5 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if r.OK == 0 || r.Failed != 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
}

func TestLoadtestUsage(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"loadtest", "nope"}, &out, &errs); err == nil || !strings.Contains(errs.String(), "writes") {
		t.Fatalf("unknown scenario: %v, %q", err, errs.String())
	}
	if err := run(context.Background(), []string{"loadtest", "writes", "--url=http://example.com"}, &out, &errs); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("remote target: %v", err)
	}
}
