package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"hmp/internal/settings"
)

const rollbackUsage = `Usage:
  hmp rollback emergency [flags]   switch every instance to the baseline profile at once
  hmp rollback gradual [flags]     step consumer concurrency down (500, 200, 100, 50, 20),
                                   then turn batching off, watching stability between steps

Both talk to one instance's HTTP API with the operator token; the bus carries
each change to every other instance, live, without a restart. The gradual
rollback judges each step after --step-wait: it stops (exit 1) on a firing
alert (GET /v1/admin/alerts, when the instance has them), a projector error
rate or HTTP 5xx rate above --max-error-rate, an outbox lag above --max-lag,
or a pipeline backlog above --max-backlog, and leaves the settings there.
It prints the settings in force at the end as JSON.

Flags:`

func rollbackCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand("hmp rollback", rollbackUsage, args, stderr, "emergency", "gradual")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("hmp rollback "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var rb settings.Rollback
	fs.StringVar(&rb.URL, "url", "http://127.0.0.1:8080", "base URL of any running instance (HMP_URL)")
	fs.StringVar(&rb.Token, "admin-token", "", "the operator token the instances run with (HMP_ADMIN_TOKEN)")
	fs.StringVar(&rb.Operator, "operator", "hmp rollback", "who rolls back, for the audit trail (HMP_OPERATOR)")
	fs.DurationVar(&rb.StepWait, "step-wait", 30*time.Second, "gradual: how long each step runs before its stability is judged (HMP_ROLLBACK_STEP_WAIT)")
	fs.Float64Var(&rb.MaxErrorRate, "max-error-rate", 0.05, "gradual: most projector failures per batch and HTTP 5xx per request in a step (HMP_ROLLBACK_MAX_ERROR_RATE)")
	fs.DurationVar(&rb.MaxLag, "max-lag", 2*time.Second, "gradual: most the oldest unpublished event may wait after a step (HMP_ROLLBACK_MAX_LAG)")
	fs.Float64Var(&rb.MaxBacklog, "max-backlog", 1000, "gradual: most pipeline backlog after a step (HMP_ROLLBACK_MAX_BACKLOG)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, rollbackUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if rb.Token == "" {
		return usageError{errors.New("hmp rollback: --admin-token (HMP_ADMIN_TOKEN) is required")}
	}
	rb.Log = stderr
	var st settings.State
	if sub == "emergency" {
		st, err = rb.Emergency(ctx)
	} else {
		st, err = rb.Gradual(ctx)
	}
	if st.Revision > 0 {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	}
	if err != nil {
		return fmt.Errorf("hmp rollback %s: %w", sub, err)
	}
	return nil
}
