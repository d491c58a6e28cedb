package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"hmp/internal/advisor"
	"hmp/internal/config"
	"hmp/internal/tools"
)

// registerAdvice adds the query tracer's settings to hmp serve.
func registerAdvice(fs *flag.FlagSet, cfg *config.Config) {
	fs.DurationVar(&cfg.SlowQuery, "slow-query", 0, "database statements this slow are logged (label and text, once a minute each) and kept for the index advisor; 0: 200ms; negative: none (HMP_SLOW_QUERY)")
}

func adviseIndexes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp advise-indexes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON (HMP_ADVISE_JSON)")
	top := fs.Int("top", 20, "statements taken from pg_stat_statements, by total and by mean time each (HMP_ADVISE_TOP)")
	reset := fs.Bool("reset", false, "empty pg_stat_statements and exit: run this before the workload to advise on (HMP_ADVISE_RESET)")
	apply := fs.Int("apply", 0, "create the first N advised indexes (CREATE INDEX CONCURRENTLY, one at a time) after printing them; 0: none (HMP_ADVISE_APPLY)")
	minGain := fs.Float64("min-gain", 5, "smallest estimated saving of a statement's cost to advise an index, percent (HMP_ADVISE_MIN_GAIN)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `Usage: hmp advise-indexes [flags]

Propose the indexes the slowest statements need. Reads the top statements of
pg_stat_statements (the embedded PostgreSQL loads it; start this beside a
running hmp serve, or point --database-url at the database), explains each,
derives candidate indexes from the plan's filters and sorts, and keeps only
those whose hypothetical index (the hypopg extension) lowers the estimated
cost. A running server's GET /v1/admin/index-advice also sees its tracer's
slow statements with their arguments.

Flags:`)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *top < 1 || *top > 1000 {
		return usageError{fmt.Errorf("--top must be 1..1000, got %d", *top)}
	}
	if *minGain < 0 || *minGain >= 100 {
		return usageError{fmt.Errorf("--min-gain must be 0..100 percent, got %v", *minGain)}
	}
	logger, err := c.logger(stderr)
	if err != nil {
		return err
	}
	if *apply < 0 {
		return usageError{fmt.Errorf("--apply must not be negative, got %d", *apply)}
	}
	if *reset {
		if err := tools.ResetQueryStats(ctx, c.cfg, logger); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "pg_stat_statements emptied")
		return nil
	}
	rep, applied, err := tools.AdviseIndexes(ctx, c.cfg, logger, advisor.Config{Top: *top, MinGain: *minGain / 100}, *apply)
	if errors.Is(err, advisor.ErrNoHypoPG) {
		return err // the message says what to install
	}
	if rep == nil {
		return fmt.Errorf("advise indexes: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			*advisor.Report
			Applied []string `json:"applied,omitempty"`
		}{rep, applied}); err != nil {
			return err
		}
	} else {
		printAdvice(stdout, rep)
		for _, ddl := range applied {
			fmt.Fprintf(stdout, "applied: %s\n", ddl)
		}
	}
	if err != nil {
		return fmt.Errorf("advise indexes: %w", err)
	}
	return nil
}

// printAdvice writes the report for a terminal.
func printAdvice(w io.Writer, rep *advisor.Report) {
	fmt.Fprintf(w, "examined %d statements, tried %d candidate indexes (pg_stat_statements: %v)\n",
		rep.Statements, rep.Candidates, rep.StatStatements)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(rep.Advice) == 0 {
		fmt.Fprintln(w, "no index would lower the cost of the examined statements")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tgain\tcost before → after\tcalls\tstatement\tindex")
	for i, a := range rep.Advice {
		fmt.Fprintf(tw, "%d\t%.1f%%\t%.0f → %.0f\t%d\t%s\t%s (%s)\n", i+1, a.GainPercent, a.CostBefore, a.CostAfter,
			a.Calls, a.Label, a.Table, strings.Join(a.Columns, ", "))
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, a := range rep.Advice {
		fmt.Fprintf(w, "%s;  -- %s\n", a.DDL, strings.Join(a.Labels, ", "))
	}
}
