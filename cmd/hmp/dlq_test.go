package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"hmp/internal/bus"
)

// TestDLQ drives `hmp dlq list` and `hmp dlq replay` on an embedded bus: a
// message a consumer dead-lettered as poison is listed with its reason,
// replayed onto its original subject, and gone from the dead-letter stream.
// While another process (here: a Bus) holds the embedded store, the command
// refuses instead of opening it twice.
func TestDLQ(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *bus.Bus {
		t.Helper()
		b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(dir, "nats")}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open()
	const subject = "hmp.events.org.prop"
	for i := range 3 {
		if _, err := b.PublishRaw(ctx, subject, fmt.Appendf(nil, `{"n":%d}`, i), ""); err != nil {
			t.Fatal(err)
		}
	}
	dead := make(chan struct{}, 3)
	c := bus.NewConsumer(b, bus.ConsumerConfig{Durable: "dlq-test"}, func(_ context.Context, batch []*bus.Message) []error {
		errs := make([]error, len(batch))
		for i, m := range batch {
			if string(m.Data) == `{"n":1}` {
				errs[i] = fmt.Errorf("%w: cannot apply %s", bus.ErrPoison, m.Data)
			}
			dead <- struct{}{}
		}
		return errs
	}, slog.New(slog.DiscardHandler), nil)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-dead
	}
	c.Stop()
	var out, errs bytes.Buffer
	if err := run(ctx, []string{"dlq", "list", "--data-dir", dir}, &out, &errs); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("dlq list beside a running bus: %v, want a refusal", err)
	}
	b.Close()

	out.Reset()
	if err := run(ctx, []string{"dlq", "list", "--json", "--data-dir", dir}, &out, &errs); err != nil {
		t.Fatalf("dlq list: %v\n%s", err, errs.String())
	}
	var letters []struct {
		Seq        uint64
		Consumer   string
		Reason     string
		Deliveries uint64
		Subject    string
		StreamSeq  uint64
		Event      json.RawMessage
	}
	if err := json.Unmarshal(out.Bytes(), &letters); err != nil {
		t.Fatalf("decode %s: %v", out.String(), err)
	}
	if len(letters) != 1 || letters[0].Consumer != "dlq-test" || !strings.Contains(letters[0].Reason, "cannot apply") ||
		letters[0].Subject != subject || letters[0].StreamSeq != 2 || letters[0].Deliveries != 1 || !strings.Contains(string(letters[0].Event), `"n": 1`) {
		t.Fatalf("dlq list: %s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"dlq", "list", "--data-dir", dir}, &out, &errs); err != nil || !strings.Contains(out.String(), "cannot apply") ||
		!strings.Contains(out.String(), "1 dead letters") {
		t.Fatalf("dlq list (table): %v\n%s", err, out.String())
	}
	if err := run(ctx, []string{"dlq", "replay", "--data-dir", dir}, &out, &errs); err == nil {
		t.Fatal("dlq replay without --id or --all succeeded")
	}
	out.Reset()
	if err := run(ctx, []string{"dlq", "replay", "--id", fmt.Sprint(letters[0].Seq), "--data-dir", dir}, &out, &errs); err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "1 dead letters replayed") {
		t.Fatalf("dlq replay: %s", out.String())
	}

	b = open()
	defer b.Close()
	if letters, err := b.DeadLetters(ctx); err != nil || len(letters) != 0 {
		t.Fatalf("after the replay: dead letters %+v (%v)", letters, err)
	}
	info, err := b.StreamInfo(ctx, bus.EventsStream)
	if err != nil || info.State.LastSeq != 4 {
		t.Fatalf("events stream last sequence %d (%v), want the replay as 4", info.State.LastSeq, err)
	}
	m, err := b.StreamMsg(ctx, bus.EventsStream, 4)
	if err != nil || m.Subject != subject || string(m.Data) != `{"n":1}` || m.Header.Get(bus.HeaderReplayOf) != fmt.Sprint(letters[0].Seq) {
		t.Fatalf("replayed message %+v (%v)", m, err)
	}
}
