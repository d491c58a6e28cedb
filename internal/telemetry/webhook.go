package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Webhook posts notifications to a Slack-compatible incoming webhook:
// {"text": ...} for any receiver that reads only that, plus Slack's blocks
// and a colored attachment.
type Webhook struct {
	url    string
	client *http.Client
}

// NewWebhook returns a notifier posting to rawURL (http or https).
func NewWebhook(rawURL string, client *http.Client) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alert webhook url must be an http(s) URL")
	}
	if client == nil {
		client = &http.Client{}
	}
	return &Webhook{url: rawURL, client: client}, nil
}

// Name implements Notifier.
func (w *Webhook) Name() string { return "webhook" }

// Payload returns the JSON body posted for n.
func (w *Webhook) Payload(n Notification) map[string]any {
	a := n.Alert
	color := "#d9534f" // firing critical
	switch {
	case n.Event == StateResolved:
		color = "#2eb886"
	case a.Severity == SeverityWarning:
		color = "#f0ad4e"
	}
	op := ">"
	if a.Below {
		op = "<"
	}
	fields := []map[string]any{
		{"title": "Value", "value": formatValue(a.Value), "short": true},
		{"title": "Threshold", "value": op + " " + formatValue(a.Threshold), "short": true},
		{"title": "Severity", "value": a.Severity, "short": true},
		{"title": "Alert", "value": a.ID, "short": true},
	}
	if len(a.Labels) > 0 {
		fields = append(fields, map[string]any{"title": "Labels", "value": formatLabels(a.Labels), "short": false})
	}
	return map[string]any{
		"text": n.Text(),
		"blocks": []map[string]any{
			{"type": "header", "text": map[string]any{"type": "plain_text", "text": n.Title()}},
			{"type": "section", "text": map[string]any{"type": "mrkdwn",
				"text": fmt.Sprintf("*%s*\nvalue `%s` (threshold %s %s)", a.Summary, formatValue(a.Value), op, formatValue(a.Threshold))}},
		},
		"attachments": []map[string]any{{"color": color, "fallback": n.Title(), "fields": fields}},
	}
}

// Notify implements Notifier. A 4xx answer other than 408 and 429 is a
// permanent failure (no retry); others are retried.
func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	body, err := json.Marshal(w.Payload(n))
	if err != nil {
		return fmt.Errorf("encode webhook payload: %w: %w", errPermanent, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w: %w", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", redactURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429:
		return fmt.Errorf("webhook answered %d: %w", resp.StatusCode, errPermanent)
	}
	return fmt.Errorf("webhook answered %d", resp.StatusCode)
}

// redactURL drops the URL from a client error: a Slack webhook URL is a
// secret and must not reach the logs.
func redactURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
