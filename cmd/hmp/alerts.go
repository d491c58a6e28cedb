package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"hmp/internal/config"
	"hmp/internal/telemetry"
)

// registerAlertRules adds the flags of the alert rules (thresholds,
// interval, window, for) to fs: hmp serve and hmp alerts rules share them,
// so the printed rules are the ones the server evaluates.
func registerAlertRules(fs *flag.FlagSet, cfg *telemetry.Config) {
	t, g := &cfg.Thresholds, telemetry.GuideThresholds
	th := func(v *float64, name, what string, def float64, env string) {
		fs.Float64Var(v, name, 0, fmt.Sprintf("alert threshold: %s; 0: the guide's %g; negative: rule off (%s)", what, def, env))
	}
	th(&t.BusBacklog, "alert-bus-backlog", "events waiting (consumer pending plus unpublished)", g.BusBacklog, "HMP_ALERT_BUS_BACKLOG")
	th(&t.BusErrorRate, "alert-bus-error-rate", "share of consumed messages retried or dead-lettered", g.BusErrorRate, "HMP_ALERT_BUS_ERROR_RATE")
	th(&t.BusProcessingTime, "alert-bus-processing-time", "p95 seconds per projector batch", g.BusProcessingTime, "HMP_ALERT_BUS_PROCESSING_TIME")
	th(&t.DBPoolUsage, "alert-db-pool-usage", "share of the pool's connections in use", g.DBPoolUsage, "HMP_ALERT_DB_POOL_USAGE")
	th(&t.DBQueryTime, "alert-db-query-time", "p95 seconds of a statement label", g.DBQueryTime, "HMP_ALERT_DB_QUERY_TIME")
	th(&t.DBLockContention, "alert-db-lock-contention", "share of active sessions waiting on a lock", g.DBLockContention, "HMP_ALERT_DB_LOCK_CONTENTION")
	th(&t.CacheHitRate, "alert-cache-hit-rate", "a cache tier's hit rate, alerting below", g.CacheHitRate, "HMP_ALERT_CACHE_HIT_RATE")
	th(&t.CorrectionBatchSize, "alert-correction-batch-size", "mean corrections per correction write", g.CorrectionBatchSize, "HMP_ALERT_CORRECTION_BATCH_SIZE")
	th(&t.CorrectionTime, "alert-correction-time", "p95 seconds per correction write", g.CorrectionTime, "HMP_ALERT_CORRECTION_TIME")
	th(&t.CorrectionErrorRate, "alert-correction-error-rate", "failed correction writes per batch", g.CorrectionErrorRate, "HMP_ALERT_CORRECTION_ERROR_RATE")
	fs.DurationVar(&cfg.Interval, "alert-interval", 0, "time between alert evaluations; 0: 15s; negative: no evaluation (HMP_ALERT_INTERVAL)")
	fs.DurationVar(&cfg.Window, "alert-window", 0, "window of the alert rates and percentiles; 0: 5m (HMP_ALERT_WINDOW)")
	fs.DurationVar(&cfg.For, "alert-for", 0, "how long a condition holds before its alert fires; 0: 1m; negative: at once (HMP_ALERT_FOR)")
}

// registerAlerts adds the alert flags (rules and notifiers) to hmp serve.
func registerAlerts(fs *flag.FlagSet, cfg *config.Config) {
	registerAlertRules(fs, &cfg.Alerts)
	fs.StringVar(&cfg.AlertWebhookURL, "alert-webhook-url", "", "Slack-compatible incoming webhook for firing and resolved alerts; empty: none (HMP_ALERT_WEBHOOK_URL)")
	fs.StringVar(&cfg.AlertSMTPURL, "alert-smtp-url", "", "mail server for alert emails, smtp://user:pass@host:port; empty: no email (HMP_ALERT_SMTP_URL)")
	fs.StringVar(&cfg.AlertEmailTo, "alert-email-to", "", "comma-separated recipients of alert emails (HMP_ALERT_EMAIL_TO)")
	fs.StringVar(&cfg.AlertEmailFrom, "alert-email-from", "", "sender of alert emails; empty: hmp@<hostname> (HMP_ALERT_EMAIL_FROM)")
}

// alertsCmd is hmp alerts: the alert rules for Prometheus.
func alertsCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rules" {
		fmt.Fprintln(stderr, "Usage: hmp alerts rules [flags]\n\nPrint the alert rules hmp evaluates as a Prometheus rules file.")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return flag.ErrHelp
		}
		return usageError{fmt.Errorf("hmp alerts: want the subcommand rules")}
	}
	fs := flag.NewFlagSet("hmp alerts rules", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg telemetry.Config
	registerAlertRules(fs, &cfg)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hmp alerts rules [flags]\n\nPrint the alert rules hmp evaluates (the scaling guide's thresholds, or those set\nby the same flags and HMP_ALERT_* variables as hmp serve) as a Prometheus rules file,\nfor operators who run Prometheus and Alertmanager: same expressions, thresholds and for.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	_, err := io.WriteString(stdout, telemetry.PrometheusRules(telemetry.Rules(cfg), cfg.Interval))
	return err
}
