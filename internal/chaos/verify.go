package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"hmp/internal/measure"
)

// deadLetterStream is the bus's dead-letter stream (bus.DeadLetterStream).
const deadLetterStream = "HMP_DLQ"

// verify drains the pipeline and checks the run's writes end to end: in
// the rows, in the events, in the cash book, by `hmp reconcile`, and in
// the dead-letter stream.
func (r *run) verify(ctx context.Context, rep *Report) error {
	l := r.ledger
	l.mu.Lock()
	rep.Offered, rep.Skipped, rep.Replayed = l.offered, l.skipped, l.replayed
	rep.Acknowledged, rep.Unacknowledged = len(l.acked), len(l.gaveUp)
	rep.BaselineErrors = l.errs[0]
	for i := range rep.Faults {
		rep.Faults[i].ClientErrors = l.errs[i+1]
	}
	tokens := append([]string(nil), l.tokens...)
	for class, n := range l.rejected {
		r.problem("%d creates answered %s, which a client cannot retry", n, class)
	}
	l.mu.Unlock()

	if !r.hmp.Running() {
		// A fault left it down: bring it back for the checks.
		if err := r.startHMP(ctx); err != nil {
			return fmt.Errorf("restart hmp for the checks: %w", err)
		}
	}
	if r.peer != nil && !r.peer.Running() {
		if err := r.startPeer(ctx); err != nil {
			return fmt.Errorf("restart the second hmp for the checks: %w", err)
		}
	}
	seen := map[string]int{} // key -> rows
	for org, t := range r.tenants {
		rows, err := r.listRows(ctx, t)
		if err != nil {
			return err
		}
		events, err := r.addEvents(ctx, t)
		if err != nil {
			return err
		}
		var sum int64
		for _, row := range rows {
			rep.Rows++
			sum += row.AmountCents
			seen[row.Description]++
			if seen[row.Description] > 1 {
				rep.Duplicated++
				r.problem("key %s has %d rows", row.Description, seen[row.Description])
			}
			a, acked := l.acked[row.Description]
			_, gaveUp := l.gaveUp[row.Description]
			switch {
			case acked && a.id != row.ID && seen[row.Description] == 1:
				r.problem("key %s acknowledged as row %s, found as row %s", row.Description, a.id, row.ID)
			case !acked && !gaveUp:
				rep.Mismatches++
				r.problem("row %s (%q) was never written by a client", row.ID, row.Description)
			}
			if n := events[row.ID]; n != 1 {
				rep.Mismatches++
				r.problem("row %s has %d revenue_added events, want 1", row.ID, n)
			}
			if row.Status != "approved" || row.PaymentMode != "cash" {
				rep.Mismatches++
				r.problem("row %s is %s/%s, want approved/cash", row.ID, row.Status, row.PaymentMode)
			}
		}
		if len(events) != len(rows) {
			rep.Mismatches++
			r.problem("org %d: %d rows but add events for %d entities", org, len(rows), len(events))
		}
		// Each instance honours the last token, whichever issued it.
		for i, a := range r.apis {
			got, err := r.cashReceived(ctx, a, t, tokens[org])
			if err != nil {
				return err
			}
			if got != sum {
				rep.Mismatches++
				r.problem("org %d: instance %d's daily report says %d cents received in cash, its rows sum to %d", org, i, got, sum)
			}
		}
	}
	for key, a := range l.acked {
		if seen[key] == 0 {
			rep.Lost++
			r.problem("acknowledged write %s (row %s, org %d, %d cents) is missing", key, a.id, a.org, a.amount)
		}
	}
	n, err := r.reconcile(ctx)
	if err != nil {
		return err
	}
	rep.ReconcileMismatches = n
	rep.Mismatches += n
	if n > 0 {
		r.problem("hmp reconcile found %d mismatches", n)
	}
	if r.peer != nil {
		// After the drain one relay leads, on one of the instances.
		leaders := 0
		for _, addr := range []string{r.addr, r.peerAddr} {
			if v, err := r.metricAt(ctx, addr, "hmp_relay_leader", ""); err == nil && v == 1 {
				leaders++
			}
		}
		if leaders != 1 {
			r.problem("%d instances lead the relay at the end, want 1", leaders)
		}
	}
	// The embedded bus's storage can be read only once hmp has let go of it.
	r.readMetrics(ctx)
	rep.DeadLetteredMetric = r.dlqMetric
	if r.peer != nil {
		r.peer.Stop(90 * time.Second)
	}
	r.hmp.Stop(90 * time.Second)
	dl, err := r.deadLetters(ctx, rep)
	if err != nil {
		return err
	}
	rep.DeadLetters = dl
	if dl > 0 {
		r.problem("%d messages in %s", dl, deadLetterStream)
	}
	r.mu.Lock()
	rep.Problems = append([]string(nil), r.problems...)
	r.mu.Unlock()
	return nil
}

type row struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	AmountCents int64  `json:"amountCents"`
	Status      string `json:"status"`
	PaymentMode string `json:"paymentMode"`
}

// listRows pages through a tenant's revenues.
func (r *run) listRows(ctx context.Context, t tenant) ([]row, error) {
	var rows []row
	cursor := ""
	for {
		q := url.Values{"propertyId": {t.property}, "limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []row   `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		if err := r.api.call(ctx, http.MethodGet, "/v1/finance/revenues?"+q.Encode(), t.token, nil, nil, http.StatusOK, &page, time.Minute); err != nil {
			return nil, fmt.Errorf("list rows: %w", err)
		}
		rows = append(rows, page.Items...)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return rows, nil
		}
		cursor = *page.NextCursor
	}
}

// addEvents counts the revenue_added events of a tenant's property by
// entity.
func (r *run) addEvents(ctx context.Context, t tenant) (map[string]int, error) {
	counts := map[string]int{}
	cursor := ""
	for {
		q := url.Values{"propertyId": {t.property}, "entityType": {"revenue"}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items []struct {
				EventType string `json:"eventType"`
				EntityID  string `json:"entityId"`
			} `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		if err := r.api.call(ctx, http.MethodGet, "/v1/finance/events?"+q.Encode(), t.token, nil, nil, http.StatusOK, &page, time.Minute); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		for _, e := range page.Items {
			if e.EventType == "revenue_added" {
				counts[e.EntityID]++
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			return counts, nil
		}
		cursor = *page.NextCursor
	}
}

// cashReceived reads the day's cash receipts of a tenant's property with
// the tenant's last consistency token: the drain. The read waits for the
// projector (503 until then, retried for two minutes).
func (r *run) cashReceived(ctx context.Context, a *api, t tenant, token string) (int64, error) {
	q := url.Values{"propertyId": {t.property}, "date": {r.date}}
	hdr := map[string]string{}
	if token != "" {
		hdr["X-Consistency-Token"] = token
	}
	var rep struct {
		CashReceivedCents int64 `json:"cashReceivedCents"`
	}
	if err := a.call(ctx, http.MethodGet, "/v1/reports/daily-report?"+q.Encode(), t.token, nil, hdr, http.StatusOK, &rep, 2*time.Minute); err != nil {
		return 0, fmt.Errorf("consistent daily report: %w", err)
	}
	return rep.CashReceivedCents, nil
}

// reconcile runs `hmp reconcile` beside the running server and returns
// the mismatches it reports.
func (r *run) reconcile(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := []string{"reconcile", "--data-dir", r.hmpDir(), "--log-format", "text"}
	if r.dbURL != "" {
		args = append(args, "--database-url", r.dbURL)
	}
	cmd := exec.CommandContext(ctx, r.cfg.Binary, args...)
	out, err := cmd.Output()
	var res struct {
		Mismatches *int `json:"mismatches"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil || res.Mismatches == nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return 0, fmt.Errorf("hmp reconcile: %v: %s %s", err, strings.TrimSpace(string(out)), stderr)
	}
	return *res.Mismatches, nil
}

// deadLetters counts the messages of the dead-letter stream: on the
// external server, or in the embedded server's storage, read with a
// server of this process once hmp has stopped.
func (r *run) deadLetters(ctx context.Context, rep *Report) (int, error) {
	var opts []nats.Option
	natsURL := r.natsURL
	if natsURL == "" {
		ns, err := server.NewServer(&server.Options{
			ServerName: "hmp-chaos-check", JetStream: true, StoreDir: filepath.Join(r.hmpDir(), "nats"),
			DontListen: true, NoSigs: true, NoLog: true,
		})
		if err != nil {
			return 0, fmt.Errorf("open the embedded bus storage: %w", err)
		}
		go ns.Start()
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		if !ns.ReadyForConnections(30 * time.Second) {
			return 0, errors.New("open the embedded bus storage: not ready in 30s")
		}
		opts = append(opts, nats.InProcessServer(ns))
	}
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return 0, fmt.Errorf("connect to the bus: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if r.dbURL != "" {
		if err := r.checkBus(ctx, js, rep); err != nil {
			return 0, err
		}
	}
	s, err := js.Stream(ctx, deadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream: %w", err)
	}
	return int(info.State.Msgs), nil
}

// metric returns the sum of a counter's samples whose labels contain
// match, from the server's /metrics.
func (r *run) metric(ctx context.Context, name, match string) (float64, error) {
	return r.metricAt(ctx, r.addr, name, match)
}

// metricAt is metric from the instance at addr.
func (r *run) metricAt(ctx context.Context, addr, name, match string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := r.api.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	m, err := measure.Parse(resp.Body)
	if err != nil {
		return 0, err
	}
	sum, _ := m.Sum(name, match)
	return sum, nil
}

// eventsStream is the bus's event stream (bus.EventsStream).
const eventsStream = "HMP_EVENTS"

// checkBus compares the event stream with the outbox (the events table,
// read on the HA topology's primary): every event published once, none
// skipped, across the failovers and the relay's moves.
func (r *run) checkBus(ctx context.Context, js jetstream.JetStream, rep *Report) error {
	conn, err := pgx.Connect(ctx, r.dbURL)
	if err != nil {
		return fmt.Errorf("connect to the outbox: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT id::text FROM events`)
	if err != nil {
		return fmt.Errorf("read the outbox: %w", err)
	}
	outbox, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("read the outbox: %w", err)
	}
	s, err := js.Stream(ctx, eventsStream)
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	published := map[string]int{}
	if info.State.Msgs > 0 {
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
		if err != nil {
			return fmt.Errorf("read the event stream: %w", err)
		}
		for n := uint64(0); n < info.State.Msgs; {
			batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				return fmt.Errorf("read the event stream: %w", err)
			}
			got := 0
			for m := range batch.Messages() {
				published[m.Headers().Get(jetstream.MsgIDHeader)]++
				got++
			}
			if err := batch.Error(); err != nil {
				return fmt.Errorf("read the event stream: %w", err)
			}
			if got == 0 {
				return fmt.Errorf("read the event stream: %d of %d messages, then nothing", n, info.State.Msgs)
			}
			n += uint64(got)
		}
	}
	rep.BusEvents = len(outbox)
	for _, id := range outbox {
		switch n := published[id]; {
		case n == 0:
			rep.BusSkipped++
			r.problem("event %s is in the outbox but was never published", id)
		case n > 1:
			rep.BusDuplicated++
			r.problem("event %s was published %d times", id, n)
		}
	}
	rep.Mismatches += rep.BusSkipped + rep.BusDuplicated
	return nil
}
