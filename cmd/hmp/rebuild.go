package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"hmp/internal/domain"
	"hmp/internal/rebuild"
	"hmp/internal/tools"
)

const rebuildUsage = `Usage: hmp rebuild [flags]

Rebuild the report projections (daily and monthly cash balances) from the event
store, one organization at a time: fold its events with the projector's rules
into shadow tables, compare them with the live rows, and swap the differences
in, in one transaction under a short lock (readers see the old rows or the new,
never a mix; the projector waits for the lock). Runs beside serving instances.
Each finished organization is recorded under the run's name (a new name per
invocation unless --run gives one): interrupt it (SIGINT) and run it again
with the --run it printed to resume. Prints the totals as
JSON (events folded, rows changed, events/s, lock time).

Flags:`

func rebuildCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	org := fs.String("org", "", "rebuild one organization (its id); empty: every organization (HMP_REBUILD_ORG)")
	property := fs.String("property", "", "rebuild one property (its id; needs --org) (HMP_REBUILD_PROPERTY)")
	run := fs.String("run", "", "name of the run to resume: running a name again skips the organizations it finished; empty: a new run, named by its start time (HMP_REBUILD_RUN)")
	retention := fs.Duration("retention", 8*24*time.Hour, "the projector's applied-record retention: older events count as applied (HMP_REBUILD_RETENTION)")
	every := fs.Int("progress-every", 1000, "log progress every this many organizations (HMP_REBUILD_PROGRESS_EVERY)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, rebuildUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	// A new run by default: a fixed default name made every later
	// rebuild a silent no-op that skipped every organization.
	if *run == "" {
		*run = "run-" + time.Now().UTC().Format("20060102T150405.000000")
	}
	cfg := rebuild.Config{Run: *run, Retention: *retention}
	if *org != "" {
		id, err := domain.ParseID(*org)
		if err != nil {
			return usageError{fmt.Errorf("--org: %w", err)}
		}
		cfg.OrgID = id
	}
	if *property != "" {
		if cfg.OrgID.IsZero() {
			return usageError{fmt.Errorf("--property needs --org")}
		}
		id, err := domain.ParseID(*property)
		if err != nil {
			return usageError{fmt.Errorf("--property: %w", err)}
		}
		cfg.PropertyID = id
	}
	logger, err := c.logger(stderr)
	if err != nil {
		return usageError{err}
	}
	db, err := tools.OpenTool(ctx, c.cfg, logger, tools.ToolOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	cfg.Progress = func(p rebuild.Progress) {
		if *every > 0 && p.Orgs%*every == 0 {
			logger.Info("rebuild_progress", "orgs", p.Orgs, "skipped", p.Skipped, "events", p.Events, "changed_rows", p.ChangedRows,
				"events_per_second", int64(p.EventsPerSecond()), "lock_max_ms", p.LockMax.Milliseconds())
		}
	}
	p, runErr := rebuild.Run(ctx, db.Pool, cfg)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	out := map[string]any{"run": cfg.Run, "orgs": p.Orgs, "skipped": p.Skipped, "events": p.Events, "changedRows": p.ChangedRows,
		"eventsPerSecond": p.EventsPerSecond(), "lockTotalMs": float64(p.LockTotal.Microseconds()) / 1000,
		"lockMaxMs": float64(p.LockMax.Microseconds()) / 1000, "elapsedMs": p.Elapsed.Milliseconds(), "complete": runErr == nil}
	if err := enc.Encode(out); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("rebuild stopped (run it again with --run %s to resume): %w", cfg.Run, runErr)
	}
	return nil
}
