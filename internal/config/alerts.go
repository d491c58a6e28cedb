package config

import (
	"errors"
	"fmt"

	"hmp/internal/telemetry"
)

// AlertNotifiers returns the notifiers c configures (webhook, email).
func (cfg Config) AlertNotifiers() ([]telemetry.Notifier, error) {
	var out []telemetry.Notifier
	if cfg.AlertWebhookURL != "" {
		w, err := telemetry.NewWebhook(cfg.AlertWebhookURL, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	if cfg.AlertSMTPURL != "" {
		e, err := telemetry.NewEmail(cfg.AlertSMTPURL, cfg.AlertEmailFrom, cfg.AlertEmailTo)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// validateAlerts reports the alert settings' problems.
func (c Config) validateAlerts() error {
	var errs []error
	if err := c.Alerts.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.AlertNotifiers(); err != nil {
		errs = append(errs, err)
	}
	if c.AlertSMTPURL == "" && c.AlertEmailTo != "" {
		errs = append(errs, fmt.Errorf("alert email recipients need an smtp url (HMP_ALERT_SMTP_URL)"))
	}
	return errors.Join(errs...)
}
