package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/loadtest"
	"hmp/internal/postgres/pgtest"
	"hmp/internal/tools"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { pgtest.Main(m, &cluster, tools.Migrations()...) }

// TestWrites runs the whole scenario briefly against a real HMP and a real
// pgbench. It checks what was measured and reported, never how fast.
func TestWrites(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster)
	client, err := loadtest.NewClient(env.BaseURL, 16, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	rep, err := loadtest.Writes(context.Background(), loadtest.WritesConfig{
		Client: client, Orgs: 2, Properties: 2, Clients: 4, Warmup: 100 * time.Millisecond, Duration: 400 * time.Millisecond,
		Rate: 50, DatabaseURL: env.App.DatabaseURL, Phases: loadtest.Phases{MaxSettle: -1},
		Pgbench: &loadtest.Pgbench{BinDir: cluster.Local.BinDir(), Dir: t.TempDir(), Clients: 2, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]loadtest.Result{}
	for _, r := range rep.Results {
		modes[r.Mode] = r
		if r.OK == 0 || r.Failed != 0 || r.Latency.Count == 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	if len(modes) != 3 || len(rep.Totals) != 3 {
		t.Fatalf("results %+v, totals %+v", rep.Results, rep.Totals)
	}
	if modes["open"].Rate != 50 || modes["open"].SendLag == nil || modes["closed"].Clients != 4 {
		t.Errorf("open %+v closed %+v", modes["open"], modes["closed"])
	}
	if rep.Durable || rep.Server["fsync"] != "off" {
		t.Errorf("the test cluster runs with fsync off; report says durable=%v, %v", rep.Durable, rep.Server)
	}
	names := map[string]bool{}
	for _, c := range rep.Checks {
		names[c.Name] = true
	}
	if !names["API writes/s ÷ pgbench tps"] || len(rep.Checks) != 4 {
		t.Errorf("checks %+v", rep.Checks)
	}

	var table bytes.Buffer
	if err := rep.Print(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hmp loadtest writes", "pgbench", "api closed-loop", "api open-loop", "checks:", "NOT durable"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back loadtest.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != len(rep.Results) || back.Results[0].Latency != rep.Results[0].Latency.Rounded() {
		t.Errorf("JSON round trip: %+v", back.Results)
	}
}

func TestNewClientRefusesRemoteTargets(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://example.com", "http://10.0.0.1:8080", "ftp://127.0.0.1", "127.0.0.1:8080"} {
		if _, err := loadtest.NewClient(u, 1, time.Second); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80/"} {
		if _, err := loadtest.NewClient(u, 1, time.Second); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
}
