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
	faults := fs.String("faults", strings.Join(chaos.Faults, ","), "faults to inject, in order (HMP_CHAOS_FAULTS)")
	natsMode := fs.String("nats", "embedded", "bus: embedded (in hmp; its restart is a restart of hmp) or external (a nats-server child process) (HMP_CHAOS_NATS)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 5*time.Second, "each client attempt's deadline (HMP_CHAOS_REQUEST_TIMEOUT)")
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
bus; a stall of PostgreSQL longer than the request deadline. Then drain and
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
	cfg.Faults = []string{}
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
