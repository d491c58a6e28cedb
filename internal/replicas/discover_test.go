package replicas_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hmp/internal/postgres"
	"hmp/internal/replicas"
)

// multiHost names the primary's database and then the replica's host.
func multiHost(t *testing.T, primaryURL, replicaURL string) string {
	t.Helper()
	pu, err := url.Parse(primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	ru, err := url.Parse(replicaURL)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s,%s%s?sslmode=disable", pu.User.String(), pu.Host, ru.Host, pu.Path)
}

type discoverBundle struct {
	bundle
	hosts *postgres.Hosts
}

// setupDiscover is setup with no replica URL: the router finds the
// replica among the hosts of a multi-host URL (or through cfg's Patroni).
func setupDiscover(t *testing.T, cfg replicas.Config) discoverBundle {
	t.Helper()
	dbURL, b := startPair(t)
	hosts, err := postgres.NewHosts(multiHost(t, dbURL, b.replica.DatabaseURL(dbURL)), postgres.HostsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hosts.Stop) // the test probes by itself
	cfg.Hosts = hosts
	cfg.CheckInterval = time.Hour
	b.startRouter(t, cfg)
	return discoverBundle{b, hosts}
}

// healthyDiscovered checks until the one discovered replica is healthy.
func (b discoverBundle) healthyDiscovered(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.waitReplayed(t)
		b.router.Check(context.Background())
		if st := b.router.Statuses(); len(st) == 1 && st[0].State == replicas.Healthy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("discovered replica never healthy: %+v", b.router.Statuses())
		}
	}
}

// A standby among the hosts of the primary's URL is read from; once
// promoted, reads stop going to it as a replica: at once by the check
// (not in recovery), and it leaves the members once the hosts are probed
// again.
func TestDiscoveredReplicaFollowsPromotion(t *testing.T) {
	t.Parallel()
	b := setupDiscover(t, replicas.Config{})
	ctx := context.Background()
	if got := b.router.Reads(); got != replicas.ReadsReplicas {
		t.Fatalf("reads go to %q with discovery configured", got)
	}
	b.router.Check(ctx)
	if st := b.router.Statuses(); len(st) != 0 {
		t.Fatalf("members before any probe: %+v", st)
	}
	b.hosts.Probe(ctx)
	if m := b.hosts.Members(); m[0].Role != postgres.RolePrimary || m[1].Role != postgres.RoleStandby {
		t.Fatalf("probed members = %+v", m)
	}
	b.healthyDiscovered(t)
	if st := b.router.Statuses(); st[0].Name != "discovered-1" {
		t.Errorf("discovered replica named %q", st[0].Name)
	}
	if n, where := b.read(t, nil); where != "replica" || n != 0 {
		t.Fatalf("tokenless read: n=%d on %s, want 0 on the replica", n, where)
	}
	// The lag rules hold for it: a token read is never older than its write.
	for range 5 {
		want, tok := b.write(t)
		if n, _ := b.read(t, &tok); n < want {
			t.Fatalf("token read saw %d, before its write %d", n, want)
		}
	}

	if _, err := b.direct.Exec(ctx, `SELECT pg_promote(true, 60)`); err != nil {
		t.Fatal(err)
	}
	want, _ := b.write(t) // on the old primary: the promoted node never sees it
	// The hosts have not seen it yet: the check itself finds it promoted.
	b.router.Check(ctx)
	if st := b.router.Statuses(); len(st) != 1 || st[0].State != replicas.Down {
		t.Fatalf("promoted member before a probe: %+v, want down", st)
	}
	replicaReads := testutil.ToFloat64(b.router.Metrics().Reads("replica"))
	for range 3 {
		if n, _ := b.read(t, nil); n != want {
			t.Fatalf("read after the promotion saw %d, want the primary's %d", n, want)
		}
	}
	if got := testutil.ToFloat64(b.router.Metrics().Reads("replica")); got != replicaReads {
		t.Errorf("%v reads went to the promoted node as a replica", got-replicaReads)
	}
	b.hosts.Probe(ctx)
	if m := b.hosts.Members(); m[1].Role != postgres.RolePrimary {
		t.Fatalf("promoted host probed as %v", m[1].Role)
	}
	b.router.Check(ctx)
	if st := b.router.Statuses(); len(st) != 0 {
		t.Fatalf("members after the promoted host was probed: %+v, want none", st)
	}
	if n, _ := b.read(t, nil); n != want {
		t.Fatalf("read after the promotion saw %d, want %d", n, want)
	}
}

// Patroni's GET /cluster names the replicas (the documented shape,
// served by a small HTTP server): only streaming replicas and sync
// standbys without noloadbalance are read from.
func TestPatroniDiscovery(t *testing.T) {
	t.Parallel()
	const body = `{"members": [
		{"name": "pg1", "role": "leader", "state": "running", "api_url": "http://10.0.0.1:8008/patroni", "host": "10.0.0.1", "port": 5432, "timeline": 3},
		{"name": "pg2", "role": "sync_standby", "state": "streaming", "api_url": "http://10.0.0.2:8008/patroni", "host": "10.0.0.2", "port": 5432, "timeline": 3, "lag": 0},
		{"name": "pg3", "role": "replica", "state": "streaming", "host": "10.0.0.3", "port": 5433, "timeline": 3, "lag": 1024},
		{"name": "pg4", "role": "replica", "state": "starting", "host": "10.0.0.4", "port": 5432, "lag": "unknown"},
		{"name": "pg5", "role": "replica", "state": "streaming", "host": "10.0.0.5", "port": 5432, "tags": {"noloadbalance": true}},
		{"name": "pg6", "role": "replica", "state": "stopped", "host": "10.0.0.6", "port": 5432}
	], "scope": "hmp"}`
	got, err := replicas.ParsePatroniCluster([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.2:5432", "10.0.0.3:5433"}; !slices.Equal(got, want) {
		t.Errorf("members read from = %q, want %q", got, want)
	}
	if _, err := replicas.ParsePatroniCluster([]byte(`{"members": 3}`)); err == nil {
		t.Error("a malformed answer was accepted")
	}
	if err := (replicas.Config{PatroniURL: "10.0.0.1:8008"}).WithDefaults().Validate(); err == nil {
		t.Error("a patroni url without scheme (and without hosts) was accepted")
	}
}

// The router reads from what Patroni lists, with the primary URL's
// credentials, and drops it once Patroni no longer lists it.
func TestPatroniMembersAreReadFrom(t *testing.T) {
	t.Parallel()
	var listed = make(chan string, 1)
	ctx := context.Background()
	dbURL := cluster.NewDatabase(t)
	rep := cluster.NewReplica(t)
	addr := rep.Local.Addr()
	listed <- addr
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cluster" {
			http.NotFound(w, r)
			return
		}
		a := <-listed
		listed <- a
		host, port, _ := net.SplitHostPort(a)
		members := ""
		if a != "" {
			members = fmt.Sprintf(`{"name": "pg2", "role": "replica", "state": "streaming", "host": %q, "port": %s, "lag": 0}`, host, port)
		}
		fmt.Fprintf(w, `{"members": [%s]}`, members)
	}))
	t.Cleanup(srv.Close)
	primary, err := postgres.Open(ctx, dbURL, postgres.PoolConfig{MaxConns: 4, MinConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(primary.Close)
	hosts, err := postgres.NewHosts(dbURL, postgres.HostsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := replicas.New(ctx, primary, replicas.Config{Hosts: hosts, PatroniURL: srv.URL, CheckInterval: time.Hour}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.Check(ctx)
		if st := r.Statuses(); len(st) == 1 && st[0].State == replicas.Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("patroni member never healthy: %+v", r.Statuses())
		}
		<-time.After(50 * time.Millisecond) // lag is bounded by wall time between checks
	}
	var inRecovery bool
	if _, err := r.Read(ctx, nil, func(db *pgxpool.Pool) error {
		return db.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery)
	}); err != nil || !inRecovery {
		t.Fatalf("read on the patroni member: in recovery %v (%v)", inRecovery, err)
	}
	<-listed
	listed <- ""
	r.Check(ctx)
	if st := r.Statuses(); len(st) != 0 {
		t.Fatalf("members once patroni no longer lists it: %+v", st)
	}
}
