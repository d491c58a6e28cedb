package telemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"
)

// Email sends notifications over SMTP (STARTTLS when the server offers
// it, PLAIN authentication when the URL has a user).
type Email struct {
	addr, host string
	auth       smtp.Auth
	from       string
	to         []string
}

// NewEmail returns a notifier sending through smtpURL
// (smtp://user:pass@host:port, port default 25) from from (default
// hmp@<hostname>) to the comma-separated addresses of to.
func NewEmail(smtpURL, from, to string) (*Email, error) {
	u, err := url.Parse(smtpURL)
	if err != nil || u.Scheme != "smtp" || u.Hostname() == "" {
		return nil, errors.New("alert smtp url must look like smtp://user:pass@host:port")
	}
	e := &Email{host: u.Hostname(), addr: u.Host, from: from}
	if u.Port() == "" {
		e.addr = net.JoinHostPort(u.Hostname(), "25")
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		e.auth = smtp.PlainAuth("", u.User.Username(), pass, e.host)
	}
	for _, a := range strings.Split(to, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if strings.ContainsAny(a, "\r\n<>") || !strings.Contains(a, "@") {
				return nil, fmt.Errorf("alert email recipient %q is not an address", a)
			}
			e.to = append(e.to, a)
		}
	}
	if len(e.to) == 0 {
		return nil, errors.New("alert email needs at least one recipient (HMP_ALERT_EMAIL_TO)")
	}
	if e.from == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		e.from = "hmp@" + host
	}
	return e, nil
}

// Name implements Notifier.
func (e *Email) Name() string { return "email" }

// Message returns the RFC 5322 message sent for n.
func (e *Email) Message(n Notification, now time.Time) []byte {
	var b strings.Builder
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", e.from)
	h("To", strings.Join(e.to, ", "))
	h("Subject", n.Title())
	h("Date", now.Format(time.RFC1123Z))
	h("Message-Id", "<"+n.Alert.ID+"."+n.Event+"@hmp>")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(n.Text(), "\n", "\r\n"))
	b.WriteString("\r\n")
	return []byte(b.String())
}

// Notify implements Notifier. A 5xx answer to the envelope (rejected
// sender or recipient) is permanent; connection failures and 4xx are
// retried. ctx bounds the whole conversation.
func (e *Email) Notify(ctx context.Context, n Notification) error {
	err := e.send(ctx, e.Message(n, time.Now()))
	if err == nil {
		return nil
	}
	var perr *textproto.Error
	if errors.As(err, &perr) && perr.Code >= 500 {
		return fmt.Errorf("send alert email: %w: %w", errPermanent, err)
	}
	return fmt.Errorf("send alert email: %w", err)
}

// send is smtp.SendMail with a context: the deadline bounds the dial and
// every exchange.
func (e *Email) send(ctx context.Context, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		_ = conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: e.host}); err != nil {
			return err
		}
	}
	if e.auth != nil {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the smtp server offers no authentication, but the url has a user")
		}
		if err := c.Auth(e.auth); err != nil {
			return err
		}
	}
	if err := c.Mail(e.from); err != nil {
		return err
	}
	for _, to := range e.to {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
