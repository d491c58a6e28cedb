package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"hmp/internal/chaos"
)

func chaosCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg chaos.Config
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long writes are offered; the faults are spread over it (HMP_CHAOS_DURATION)")
	fs.IntVar(&cfg.Rate, "rate", 200, "creates offered per second (HMP_CHAOS_RATE)")
	fs.IntVar(&cfg.Orgs, "orgs", 4, "organizations writing, by their ADMIN, one property each (HMP_CHAOS_ORGS)")
	faults := fs.String("faults", "", "faults to inject, in order; empty: "+strings.Join(chaos.Faults, ",")+" (with --ha: "+strings.Join(chaos.HAFaults, ",")+") (HMP_CHAOS_FAULTS)")
	fs.BoolVar(&cfg.HA, "ha", false, "run on the failover topology: etcd and two Patroni nodes on loopback, hmp on their multi-host URL (HMP_CHAOS_HA)")
	synchronous := fs.Bool("sync", true, "with --ha: synchronous replication (Patroni synchronous_mode); false: asynchronous (HMP_CHAOS_SYNC)")
	fs.IntVar(&cfg.Patroni.TTL, "patroni-ttl", 0, "with --ha: Patroni's leader key TTL in seconds; 0: Patroni's default 30 (HMP_CHAOS_PATRONI_TTL)")
	fs.IntVar(&cfg.Patroni.LoopWait, "patroni-loop-wait", 0, "with --ha: Patroni's loop_wait in seconds; 0: its default 10 (HMP_CHAOS_PATRONI_LOOP_WAIT)")
	fs.IntVar(&cfg.Patroni.RetryTimeout, "patroni-retry-timeout", 0, "with --ha: Patroni's retry_timeout in seconds; 0: its default 10 (HMP_CHAOS_PATRONI_RETRY_TIMEOUT)")
	fs.IntVar(&cfg.Instances, "instances", 1, "with --ha: instances of hmp serve on the database, 1 or 2 (2 share an external nats-server and token secret) (HMP_CHAOS_INSTANCES)")
	fs.DurationVar(&cfg.CompareFor, "compare-sync", 0, "with --ha: before the faults, measure writes this long with synchronous and then asynchronous replication; 0: no comparison (HMP_CHAOS_COMPARE_SYNC)")
	fs.DurationVar(&cfg.Freeze, "freeze", 0, "with --ha: longest the primary-freeze fault keeps the old leader stopped when writes do not resume; 0: Patroni's ttl + loop_wait + 20s (HMP_CHAOS_FREEZE)")
	natsMode := fs.String("nats", "embedded", "bus: embedded (in hmp; its restart is a restart of hmp) or external (a nats-server child process) (HMP_CHAOS_NATS)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 0, "each client attempt's deadline; 0: 5s (with --ha 15s, past hmp's own 10s deadline) (HMP_CHAOS_REQUEST_TIMEOUT)")
	fs.DurationVar(&cfg.Stall, "stall", 12*time.Second, "how long PostgreSQL is stopped (SIGSTOP) by the stall fault; longer than --request-timeout (HMP_CHAOS_STALL)")
	fs.StringVar(&cfg.PostgresBinDir, "postgres-bin", "", "folder of pg_ctl; empty searches as the embedded cluster does (HMP_POSTGRES_BIN)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file (HMP_CHAOS_JSON)")
	fs.BoolVar(&cfg.KeepDir, "keep", false, "keep the run's folder (data and logs) (HMP_CHAOS_KEEP)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp chaos [flags]

Start 'hmp serve' (this binary) as a child process on a loopback port with
its own data dir (embedded PostgreSQL and NATS), offer revenue creates at a
steady rate with clients that retry a failed create with the same
Idempotency-Key, and inject, one after the other: kill -9 of hmp and a
restart; a fast and an immediate restart of PostgreSQL; a restart of the
bus; a stall of PostgreSQL longer than the request deadline. With --ha the
database is the failover topology instead (etcd and two Patroni-managed
PostgreSQL 15 nodes on loopback, hmp on their multi-host URL) and the
faults are the loss (SIGKILL) and the freeze (SIGSTOP) of the primary;
--compare-sync measures synchronous against asynchronous replication
first; --instances 2 runs two hmp on the one database. Then drain and
check that every acknowledged write is present exactly once, every event
applied once, 'hmp reconcile' finds nothing and the dead-letter stream is
empty. Prints per fault the recovery time and the errors clients saw; exits
1 on any loss. Removes everything it made.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	switch *natsMode {
	case "embedded":
	case "external":
		cfg.ExternalNATS = true
	default:
		return usageError{fmt.Errorf("--nats must be embedded or external, got %q", *natsMode)}
	}
	cfg.Patroni.Async = !*synchronous
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.Faults = append(cfg.Faults, f)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the hmp binary: %w", err)
	}
	cfg.Binary = bin
	cfg.Log = stderr
	rep, err := chaos.Run(ctx, cfg)
	if rep != nil {
		rep.Print(stdout)
		if *jsonPath != "" {
			b, jerr := json.MarshalIndent(rep, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(*jsonPath, append(b, '\n'), 0o644)
			}
			if jerr != nil {
				return errors.Join(err, fmt.Errorf("write %s: %w", *jsonPath, jerr))
			}
		}
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("chaos: %d lost, %d duplicated, %d mismatches, %d dead letters", rep.Lost, rep.Duplicated, rep.Mismatches, rep.DeadLetters)
	}
	return nil
}
