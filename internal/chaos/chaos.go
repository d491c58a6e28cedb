// Package chaos runs writes at a steady rate against an `hmp serve` it
// starts as a child process, injects faults one after the other (kill -9 of
// hmp, fast and immediate restarts of PostgreSQL, a restart of the bus, a
// stall of PostgreSQL longer than a request's deadline), then drains and
// checks that nothing acknowledged was lost or doubled: the `hmp chaos`
// command and its short form in the test suite.
//
// Everything runs on loopback in a temporary folder that is removed at the
// end, with every child process stopped.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"hmp/internal/ha"
	"hmp/internal/postgres"
	"hmp/internal/proc"
)

// Fault names, in the default order.
const (
	FaultKill              = "hmp-kill"
	FaultPostgresFast      = "postgres-fast-restart"
	FaultPostgresImmediate = "postgres-immediate-restart"
	FaultBusRestart        = "bus-restart"
	FaultPostgresStall     = "postgres-stall"
	// FaultPrimaryLoss (HA runs) kills the Patroni leader's Patroni and
	// PostgreSQL (SIGKILL) and restarts the node once writes resumed.
	FaultPrimaryLoss = "primary-loss"
	// FaultPrimaryFreeze (HA runs) stops the leader's processes (SIGSTOP)
	// until writes resumed on the new leader (or Config.Freeze passed),
	// then resumes them.
	FaultPrimaryFreeze = "primary-freeze"
)

// Faults are every fault of the embedded topology, in the order a run
// injects them by default.
var Faults = []string{FaultKill, FaultPostgresFast, FaultPostgresImmediate, FaultBusRestart, FaultPostgresStall}

// HAFaults are the faults of the failover topology (Config.HA), in the
// order a run injects them by default.
var HAFaults = []string{FaultPrimaryLoss, FaultPrimaryFreeze}

// haOnly are the faults that need the failover topology; embeddedOnly the
// ones that drive the embedded cluster.
var (
	haOnly       = []string{FaultPrimaryLoss, FaultPrimaryFreeze}
	embeddedOnly = []string{FaultPostgresFast, FaultPostgresImmediate, FaultPostgresStall}
)

// Config sets a run up. The zero value of each field means its default.
type Config struct {
	// Binary is the hmp executable run as `hmp serve`, `hmp reconcile`.
	// Required.
	Binary string
	// Duration of the write phase; faults are spread over it. Default 60s.
	Duration time.Duration
	// Rate of creates offered per second. Default 200.
	Rate int
	// Orgs writing, each by its ADMIN on one property. Default 4.
	Orgs int
	// Writers are the concurrent clients; a write offered while every one
	// is busy (retrying through an outage) is skipped and counted. Default 64.
	Writers int
	// Faults to inject, in order (names from Faults). Nil: all of them.
	Faults []string
	// ExternalNATS runs the bus as a `nats-server -js` child process
	// (restarted by the bus fault) instead of hmp's embedded one.
	ExternalNATS bool
	// NATSServer is the nats-server executable. Default: "nats-server" on $PATH.
	NATSServer string
	// RequestTimeout is each attempt's deadline at the client. Default 5s;
	// 15s with HA.
	RequestTimeout time.Duration
	// Stall is how long the PostgreSQL stall lasts; longer than
	// RequestTimeout. Default 12s.
	Stall time.Duration
	// RetryFor is how long a client retries one write before giving up
	// (the write is then unacknowledged, which is no loss). Default 90s.
	RetryFor time.Duration
	// PostgresBinDir holds pg_ctl. Default: where the embedded cluster's
	// binaries are found.
	PostgresBinDir string
	// KeepDir keeps the run's folder (data, logs) instead of removing it.
	KeepDir bool
	// TempDir is where the run's folder is made; the postgres user must be
	// able to enter it when running as root. Default: os.TempDir().
	TempDir string
	// Log receives progress lines. Nil discards them.
	Log io.Writer

	// HA runs hmp on the failover topology (internal/ha: etcd, two
	// Patroni nodes) through its multi-host URL instead of the embedded
	// cluster; its faults are HAFaults.
	HA bool
	// Patroni sets the topology up (Async, TTL, LoopWait, RetryTimeout;
	// zero: synchronous, Patroni's defaults). Its TempDir and Log are the
	// run's.
	Patroni ha.Config
	// Instances of hmp serve on the one database (HA runs): 1 or 2.
	// With 2 they share an external bus (ExternalNATS) and token secret,
	// clients alternate between them, and the relay's leadership is
	// watched. Default 1.
	Instances int
	// Freeze bounds how long primary-freeze keeps the old leader stopped
	// when writes do not resume. Default: Patroni's ttl + loop_wait + 20 s
	// (60 s with its defaults), so that the failover happens while it is
	// frozen.
	Freeze time.Duration
	// CompareFor (HA runs), when positive, measures writes for this long
	// with synchronous and then asynchronous replication before the
	// faults (Report.Replication).
	CompareFor time.Duration
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.Duration == 0 {
		c.Duration = 60 * time.Second
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Orgs == 0 {
		c.Orgs = 4
	}
	if c.Writers == 0 {
		c.Writers = 64
	}
	if c.Faults == nil {
		c.Faults = Faults
		if c.HA {
			c.Faults = HAFaults
		}
	}
	if c.Instances == 0 {
		c.Instances = 1
	}
	if c.Instances > 1 {
		c.ExternalNATS = true
	}
	if c.Freeze == 0 {
		// Long enough for Patroni to fail over at its slowest: the
		// leader key's TTL, one loop, and margin for the promotion.
		p := c.Patroni.WithDefaults()
		c.Freeze = time.Duration(p.TTL+p.LoopWait+20) * time.Second
	}
	if c.NATSServer == "" {
		c.NATSServer = "nats-server"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
		if c.HA {
			// Past hmp's own request deadline (10 s): through a
			// failover the client hears hmp's 503, not its own timeout.
			c.RequestTimeout = 15 * time.Second
		}
	}
	if c.Stall == 0 {
		c.Stall = 12 * time.Second
	}
	if c.RetryFor == 0 {
		c.RetryFor = 90 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Validate reports every problem of a defaulted Config.
func (c Config) Validate() error {
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("chaos: Binary is required"))
	}
	if c.Duration < time.Second {
		errs = append(errs, fmt.Errorf("chaos: duration %s is under a second", c.Duration))
	}
	if c.Rate < 1 || c.Rate > 5000 {
		errs = append(errs, fmt.Errorf("chaos: rate %d is not within 1..5000 per second", c.Rate))
	}
	if c.Orgs < 1 || c.Writers < 1 {
		errs = append(errs, errors.New("chaos: orgs and writers must be at least 1"))
	}
	for _, f := range c.Faults {
		switch {
		case !slices.Contains(Faults, f) && !slices.Contains(HAFaults, f):
			errs = append(errs, fmt.Errorf("chaos: unknown fault %q (known: %s; with --ha: %s)", f, strings.Join(Faults, ", "), strings.Join(HAFaults, ", ")))
		case c.HA && slices.Contains(embeddedOnly, f):
			errs = append(errs, fmt.Errorf("chaos: fault %q drives the embedded cluster; with --ha use %s", f, strings.Join(HAFaults, ", ")))
		case !c.HA && slices.Contains(haOnly, f):
			errs = append(errs, fmt.Errorf("chaos: fault %q needs --ha", f))
		}
	}
	if c.Instances < 1 || c.Instances > 2 {
		errs = append(errs, fmt.Errorf("chaos: instances %d is not 1 or 2", c.Instances))
	}
	if c.Instances > 1 && !c.HA {
		errs = append(errs, errors.New("chaos: two instances need --ha (they share its database)"))
	}
	if c.CompareFor > 0 && !c.HA {
		errs = append(errs, errors.New("chaos: the replication comparison needs --ha"))
	}
	if slices.Contains(c.Faults, FaultPostgresStall) && c.Stall <= c.RequestTimeout {
		errs = append(errs, fmt.Errorf("chaos: the stall (%s) must outlast the request deadline (%s)", c.Stall, c.RequestTimeout))
	}
	return errors.Join(errs...)
}

// Report is what a run found. It is the JSON of `hmp chaos --json`.
type Report struct {
	DurationSeconds float64 `json:"durationSeconds"`
	Rate            int     `json:"rate"`
	// Offered writes; Skipped ones found every writer busy.
	Offered int `json:"offered"`
	Skipped int `json:"skipped"`
	// Acknowledged writes answered 201; Unacknowledged ones were given up
	// after RetryFor (present or not, neither is a loss).
	Acknowledged   int `json:"acknowledged"`
	Unacknowledged int `json:"unacknowledged"`
	// Replayed acknowledgements came from the idempotency record of an
	// attempt whose answer the client never saw.
	Replayed int `json:"replayed"`
	// Rows found in the API for the run's writes.
	Rows int `json:"rows"`
	// Lost: acknowledged and not found (or found with another id).
	Lost int `json:"lost"`
	// Duplicated: rows beyond the first for one Idempotency-Key.
	Duplicated int `json:"duplicated"`
	// Mismatches: a report figure that differs from its rows, a row whose
	// add event is missing or doubled, a row nobody wrote, and each
	// mismatch `hmp reconcile` found.
	Mismatches int `json:"mismatches"`
	// ReconcileMismatches is what `hmp reconcile` reported (in Mismatches too).
	ReconcileMismatches int `json:"reconcileMismatches"`
	// BusEvents are the outbox's events at the end (HA runs, where the
	// database outlives hmp); BusSkipped those not in the event stream,
	// BusDuplicated those in it more than once (both in Mismatches too).
	BusEvents     int `json:"busEvents"`
	BusSkipped    int `json:"busSkipped"`
	BusDuplicated int `json:"busDuplicated"`
	// DeadLetters in the HMP_DLQ stream at the end.
	DeadLetters int `json:"deadLetters"`
	// DeadLetteredMetric sums hmp_projector_events_total{result="dead_lettered"}
	// over the server's lives (read before each stop; a kill -9 loses the
	// last reading's increments, the stream count above does not).
	DeadLetteredMetric float64 `json:"deadLetteredMetric"`
	// ClientErrors before the first fault, by class.
	BaselineErrors map[string]int `json:"baselineErrors"`
	Faults         []FaultResult  `json:"faults"`
	// Topology is what the database ran on: "embedded", or
	// "patroni+etcd, 2 nodes, synchronous" (or asynchronous).
	Topology string `json:"topology"`
	// Instances of hmp serve that took writes.
	Instances int `json:"instances"`
	// RelayLeaders are the instances (0, 1) that held the relay's
	// advisory lock, in the order they took it, as their
	// hmp_relay_leader gauges said every 250 ms (two-instance runs);
	// RelayOverlaps counts the samples where both said 1.
	RelayLeaders  []int `json:"relayLeaders,omitempty"`
	RelayOverlaps int   `json:"relayOverlaps"`
	// Replication compares write throughput and latency with synchronous
	// and asynchronous replication (HA runs with CompareFor).
	Replication []ReplicationResult `json:"replication,omitempty"`
	// Problems explains every failed check in words.
	Problems []string `json:"problems"`
}

// FaultResult is one injected fault.
type FaultResult struct {
	Name string `json:"name"`
	// RecoverySeconds runs from the moment the faulted component was let
	// back (restart issued, SIGCONT sent) to the first acknowledged write;
	// for the HA faults, from the fault itself (the old primary stays
	// down or frozen while the new one takes over).
	RecoverySeconds float64 `json:"recoverySeconds"`
	// OutageSeconds runs from the injection to the first acknowledged write.
	OutageSeconds float64 `json:"outageSeconds"`
	// ClientErrors are the failed attempts clients saw from this fault's
	// injection until the next one (or the end), by class.
	ClientErrors map[string]int `json:"clientErrors"`
	Error        string         `json:"error,omitempty"`
}

// OK reports whether the run lost, doubled or broke nothing.
func (r *Report) OK() bool {
	return r.Lost == 0 && r.Duplicated == 0 && r.Mismatches == 0 && r.DeadLetters == 0 && len(r.Problems) == 0
}

// run is one chaos run's state.
type run struct {
	cfg        Config
	dir        string
	addr       string
	natsURL    string
	hmp        *proc.Process
	nats       *proc.Process
	pg         *cluster
	ha         *ha.Cluster
	dbURL      string        // the HA topology's multi-host URL
	peer       *proc.Process // the second hmp serve (Instances 2)
	peerAddr   string
	apis       []*api // one per instance; api is apis[0]
	secret     string
	api        *api
	tenants    []tenant
	occurredAt string
	date       string
	ledger     *ledger
	mu         sync.Mutex
	problems   []string
	restarts   int
	dlqMetric  float64
}

// readMetrics adds what the running server counted as dead-lettered, before
// it is stopped or killed.
func (r *run) readMetrics(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if v, err := r.metric(ctx, "hmp_projector_events_total", `result="dead_lettered"`); err == nil {
		r.dlqMetric += v
	}
}

// Print writes the report for a person.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "chaos: %.0fs at %d writes/s: offered %d, skipped %d (every writer busy), acknowledged %d (%d replayed), unacknowledged %d\n",
		r.DurationSeconds, r.Rate, r.Offered, r.Skipped, r.Acknowledged, r.Replayed, r.Unacknowledged)
	fmt.Fprintf(w, "  topology: %s; %d instance(s) of hmp serve\n", r.Topology, r.Instances)
	for _, m := range r.Replication {
		fmt.Fprintf(w, "  replication %-12s %7.1f writes/s  p50 %7.1f ms  p99 %7.1f ms  (%d writers, %d writes in %.0fs)\n",
			m.Mode, m.WritesPerSecond, m.P50Ms, m.P99Ms, m.Writers, m.Acknowledged, m.Seconds)
	}
	if r.Instances > 1 {
		fmt.Fprintf(w, "  relay leaders in turn: %v (instances; %d samples with two)\n", r.RelayLeaders, r.RelayOverlaps)
	}
	fmt.Fprintf(w, "  %-28s %10s %10s  %s\n", "fault", "recovery", "outage", "client errors")
	fmt.Fprintf(w, "  %-28s %10s %10s  %s\n", "(before faults)", "", "", errorsText(r.BaselineErrors))
	for _, f := range r.Faults {
		fmt.Fprintf(w, "  %-28s %9.2fs %9.2fs  %s\n", f.Name, f.RecoverySeconds, f.OutageSeconds, errorsText(f.ClientErrors))
		if f.Error != "" {
			fmt.Fprintf(w, "  %-28s error: %s\n", "", f.Error)
		}
	}
	if r.BusEvents > 0 {
		fmt.Fprintf(w, "  bus: %d outbox events, %d never published, %d published twice\n", r.BusEvents, r.BusSkipped, r.BusDuplicated)
	}
	fmt.Fprintf(w, "  rows %d, lost %d, duplicated %d, mismatches %d (reconcile %d), dead letters %d (metric %.0f)\n",
		r.Rows, r.Lost, r.Duplicated, r.Mismatches, r.ReconcileMismatches, r.DeadLetters, r.DeadLetteredMetric)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
	if r.OK() {
		fmt.Fprintln(w, "chaos: OK, nothing acknowledged was lost or doubled")
	} else {
		fmt.Fprintln(w, "chaos: FAILED")
	}
}

func errorsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func (r *run) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 100 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "chaos: "+format+"\n", args...)
}

// Run performs a chaos run. The error is for a run that could not be
// carried out (a process that does not start, a check that cannot be
// made); what the run found, losses included, is in the Report.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	binDir, err := postgres.FindBinDir(cfg.PostgresBinDir)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "hmp-chaos-")
	if err != nil {
		return nil, err
	}
	// The embedded cluster runs as the postgres user when we are root: it
	// must be able to enter the folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, dir: dir, ledger: newLedger(cfg.Orgs, len(cfg.Faults)+1)}
	defer func() {
		r.cleanup()
		if cfg.KeepDir || err != nil {
			r.logf("run folder kept: %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}()
	topology := "embedded"
	if cfg.HA {
		if topology, err = r.startHA(ctx); err != nil {
			return nil, err
		}
	} else if r.pg, err = newCluster(filepath.Join(dir, "hmp"), binDir); err != nil {
		return nil, err
	}
	for i := range cfg.Instances {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if i == 0 {
			r.addr = addr
		} else {
			r.peerAddr = addr
		}
		r.apis = append(r.apis, newAPI("http://"+addr, cfg.Writers+8, cfg.RequestTimeout))
	}
	r.api = r.apis[0]
	if cfg.ExternalNATS {
		if err := r.startNATS(ctx); err != nil {
			return nil, err
		}
	}
	if err := r.startHMP(ctx); err != nil {
		return nil, err
	}
	if err := r.startPeer(ctx); err != nil {
		return nil, err
	}
	if err := r.seed(ctx); err != nil {
		return nil, err
	}
	var replication []ReplicationResult
	if cfg.CompareFor > 0 {
		if replication, err = r.compare(ctx); err != nil {
			return nil, err
		}
	}
	stopWatch := r.watchRelay(ctx)
	started := time.Now()
	faults := r.load(ctx)
	rep = &Report{DurationSeconds: time.Since(started).Seconds(), Rate: cfg.Rate, Faults: faults,
		Topology: topology, Instances: cfg.Instances, Replication: replication}
	rep.RelayLeaders, rep.RelayOverlaps = stopWatch()
	if err := r.verify(ctx, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// cleanup stops every child, PostgreSQL included (a server pg_ctl
// restarted is no child of hmp), whatever state the run is in.
func (r *run) cleanup() {
	if r.pg != nil {
		// A stalled server must run again to stop.
		_ = r.pg.signal(r.pg.processes(), sigCont)
	}
	if r.ha != nil {
		for _, n := range r.ha.Nodes() {
			r.ha.Thaw(n)
		}
	}
	if r.peer != nil {
		r.peer.Stop(90 * time.Second)
	}
	if r.hmp != nil {
		r.hmp.Stop(90 * time.Second)
	}
	if r.ha != nil {
		r.ha.Stop()
	}
	if r.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := r.pg.stopIfRunning(ctx); err != nil {
			r.logf("stop postgres: %v", err)
		}
		cancel()
	}
	if r.nats != nil {
		r.nats.Stop(30 * time.Second)
	}
	for _, a := range r.apis {
		a.http.CloseIdleConnections()
	}
}
