package telemetry

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// hookSink is a Slack-compatible webhook receiver on loopback: it answers
// the first fail requests with 503, then records each JSON body.
type hookSink struct {
	srv      *httptest.Server
	fail     atomic.Int32
	status   int // the failing answer; default 503
	attempts atomic.Int32
	got      chan map[string]any
}

func newHookSink(t *testing.T, fail int32) *hookSink {
	s := &hookSink{got: make(chan map[string]any, 16), status: http.StatusServiceUnavailable}
	s.fail.Store(fail)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.attempts.Add(1)
		if s.fail.Add(-1) >= 0 {
			http.Error(w, "try later", s.status)
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		s.got <- body
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// mail is one message an smtpSink received.
type mail struct {
	auth     string // the decoded AUTH PLAIN credentials
	from, to string
	data     string
}

// smtpSink is a minimal SMTP server on loopback (EHLO, AUTH PLAIN, MAIL,
// RCPT, DATA, QUIT): enough for net/smtp, recording each message.
type smtpSink struct {
	ln  net.Listener
	got chan mail
	wg  sync.WaitGroup
}

func newSMTPSink(t *testing.T) *smtpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln, got: make(chan mail, 16)}
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(conn) })
		}
	})
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *smtpSink) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	say := func(line string) { _, _ = io.WriteString(conn, line+"\r\n") }
	say("220 sink ESMTP")
	var m mail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO":
			say("250-sink")
			say("250-AUTH PLAIN")
			say("250 8BITMIME")
		case "HELO", "RSET", "NOOP":
			say("250 ok")
		case "AUTH":
			parts := strings.Fields(line)
			if len(parts) == 3 {
				b, _ := base64.StdEncoding.DecodeString(parts[2])
				m.auth = string(b)
			}
			say("235 2.7.0 authenticated")
		case "MAIL":
			m.from = line
			say("250 ok")
		case "RCPT":
			m.to += line + "\n"
			say("250 ok")
		case "DATA":
			say("354 end with .")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			m.data = b.String()
			s.got <- m
			m = mail{}
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 unknown")
		}
	}
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s received", what)
	}
	panic("unreachable")
}

// eventually waits for cond, checking often.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A crossed threshold reaches the webhook (after a failed first attempt,
// retried) and the mailbox as FIRING, and the recovery as RESOLVED; the
// test logs how long each took from the crossing.
func TestNotifyFiringAndResolved(t *testing.T) {
	t.Parallel()
	hook, smtpd := newHookSink(t, 1), newSMTPSink(t)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	webhook, err := NewWebhook(hook.srv.URL+"/services/T000/B000/secret", client)
	if err != nil {
		t.Fatal(err)
	}
	email, err := NewEmail("smtp://alerts:s3cret-pass@"+smtpd.ln.Addr().String(), "hmp@test.example", "ops@test.example, oncall@test.example")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld()
	reg := prometheus.NewRegistry()
	cfg := Config{Interval: 20 * time.Millisecond, Window: time.Second, For: -1}
	e := NewEvaluator(cfg, Rules(cfg), w.reg, slog.New(slog.DiscardHandler), reg)
	d := NewDispatcher([]Notifier{webhook, email}, DispatchConfig{InitialBackoff: 10 * time.Millisecond}, nil, reg)
	changes, cancel := e.Subscribe(16)
	defer cancel()
	if err := d.Start(context.Background(), changes); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop()

	crossed := time.Now()
	w.pending.Set(1500)
	fire := receive(t, hook.got, "firing webhook")
	hookLatency := time.Since(crossed)
	fireMail := receive(t, smtpd.got, "firing email")
	mailLatency := time.Since(crossed)
	t.Logf("threshold crossed -> notification received (evaluation every %s, for 0; loaded machine): webhook %s (one 503 retried), email %s",
		cfg.Interval, hookLatency.Round(time.Millisecond), mailLatency.Round(time.Millisecond))

	text, _ := fire["text"].(string)
	if !strings.HasPrefix(text, "[FIRING] HMPBusBacklogHigh (warning)") || !strings.Contains(text, "value 1500 (threshold > 1000)") {
		t.Errorf("webhook text %q", text)
	}
	if blocks, _ := fire["blocks"].([]any); len(blocks) != 2 {
		t.Errorf("webhook blocks %v", fire["blocks"])
	}
	if att, _ := fire["attachments"].([]any); len(att) != 1 || att[0].(map[string]any)["color"] != "#f0ad4e" {
		t.Errorf("webhook attachments %v", fire["attachments"])
	}
	if hook.attempts.Load() != 2 {
		t.Errorf("webhook attempts %d, want 2 (one 503, one retry)", hook.attempts.Load())
	}
	if fireMail.auth != "\x00alerts\x00s3cret-pass" || !strings.Contains(fireMail.from, "<hmp@test.example>") ||
		!strings.Contains(fireMail.to, "<ops@test.example>") || !strings.Contains(fireMail.to, "<oncall@test.example>") {
		t.Errorf("mail envelope %+v", fireMail)
	}
	if !strings.Contains(fireMail.data, "Subject: [FIRING] HMPBusBacklogHigh (warning)\r\n") || !strings.Contains(fireMail.data, "value 1500") {
		t.Errorf("mail data %q", fireMail.data)
	}

	recovered := time.Now()
	w.pending.Set(10)
	res := receive(t, hook.got, "resolved webhook")
	resMail := receive(t, smtpd.got, "resolved email")
	t.Logf("recovery -> resolved notification received: %s (both)", time.Since(recovered).Round(time.Millisecond))
	if text, _ := res["text"].(string); !strings.HasPrefix(text, "[RESOLVED] HMPBusBacklogHigh") {
		t.Errorf("resolved webhook text %q", text)
	}
	if !strings.Contains(resMail.data, "Subject: [RESOLVED] HMPBusBacklogHigh") {
		t.Errorf("resolved mail %q", resMail.data)
	}
	for _, n := range []string{"webhook", "email"} {
		eventually(t, n+" counted sent twice", func() bool { // counted once the sender has its answer
			return testutil.ToFloat64(d.sent.WithLabelValues(n, "sent")) == 2
		})
	}
}

// The same change delivered twice is sent once; a 4xx answer is not
// retried; failures past the breaker's limit open it.
func TestDispatcherDedupPermanentBreaker(t *testing.T) {
	t.Parallel()
	alert := func(id string) Change {
		return Change{From: StatePending, Alert: Alert{ID: id, Rule: "HMPDBPoolSaturated", Severity: SeverityWarning,
			State: StateFiring, Value: 0.9, Threshold: 0.8, ActiveAt: time.Now()}}
	}
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)

	t.Run("dedup", func(t *testing.T) {
		hook := newHookSink(t, 0)
		wh, _ := NewWebhook(hook.srv.URL, client)
		d := NewDispatcher([]Notifier{wh}, DispatchConfig{}, nil, prometheus.NewRegistry())
		changes := make(chan Change, 4)
		if err := d.Start(context.Background(), changes); err != nil {
			t.Fatal(err)
		}
		defer d.Stop()
		changes <- alert("a-1")
		changes <- alert("a-1")
		changes <- alert("a-2")
		first, second := receive(t, hook.got, "first"), receive(t, hook.got, "second")
		if !strings.Contains(fmt.Sprint(first["text"]), "a-1") || !strings.Contains(fmt.Sprint(second["text"]), "a-2") {
			t.Fatalf("delivered %v then %v", first["text"], second["text"])
		}
		eventually(t, "the duplicate counted", func() bool {
			return testutil.ToFloat64(d.sent.WithLabelValues("webhook", "deduplicated")) == 1
		})
		if n := hook.attempts.Load(); n != 2 {
			t.Fatalf("%d posts, want 2", n)
		}
	})

	t.Run("permanent and breaker", func(t *testing.T) {
		hook := newHookSink(t, 1000)
		hook.status = http.StatusNotFound
		wh, _ := NewWebhook(hook.srv.URL, client)
		reg := prometheus.NewRegistry()
		d := NewDispatcher([]Notifier{wh}, DispatchConfig{InitialBackoff: time.Millisecond, MaxElapsed: 200 * time.Millisecond,
			BreakerFailures: 2, BreakerOpen: time.Hour}, nil, reg)
		changes := make(chan Change, 4)
		if err := d.Start(context.Background(), changes); err != nil {
			t.Fatal(err)
		}
		defer d.Stop()
		changes <- alert("p-1")
		eventually(t, "the 404 counted as failed", func() bool {
			return testutil.ToFloat64(d.sent.WithLabelValues("webhook", "failed")) == 1
		})
		if n := hook.attempts.Load(); n != 1 {
			t.Fatalf("a 404 was tried %d times, want once", n)
		}
		hook.status = http.StatusBadGateway // retried, until the breaker opens
		changes <- alert("p-2")
		eventually(t, "the second failure", func() bool {
			return testutil.ToFloat64(d.sent.WithLabelValues("webhook", "failed")) == 2
		})
		if n := hook.attempts.Load(); n != 3 { // 1 + 2 before the breaker opened
			t.Errorf("%d attempts, want 3: the open breaker stops calls", n)
		}
		state, err := testutil.GatherAndCount(reg, "hmp_breaker_state")
		if err != nil || state != 1 {
			t.Fatalf("breaker gauge: %d series, %v", state, err)
		}
		if v := testutil.ToFloat64(breakerGauge(t, reg)); v != 2 {
			t.Errorf("notify_webhook breaker state %v, want 2 (open)", v)
		}
	})
}

func breakerGauge(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "hmp_breaker_state" {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetValue() == "notify_webhook" {
						g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
						g.Set(m.GetGauge().GetValue())
						return g
					}
				}
			}
		}
	}
	t.Fatal("no notify_webhook breaker state")
	return nil
}
