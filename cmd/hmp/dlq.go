package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"text/tabwriter"
	"time"

	"hmp/internal/bus"
)

const dlqUsage = `Usage:
  hmp dlq list [--json]              list the dead letters with their reasons
  hmp dlq replay (--id SEQ | --all)  re-drive dead letters into the events stream

A dead letter is a message a consumer gave up on: wrong in itself (undecodable,
impossible, its sums would overflow) or failing for a reason other than a
database fault after its deliveries ran out. After fixing the cause, replay it:
it is published again on its original subject, the reports projector applies it
exactly once (an event that had taken effect changes nothing), and it leaves the
dead-letter stream.

With HMP_NATS_URL the command works beside running instances. On the embedded
default the bus lives inside 'hmp serve': stop it first (the command opens the
bus's data folder itself, and refuses while another process holds it).

Flags:`

func dlq(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, err := subcommand("hmp dlq", dlqUsage, args, stderr, "list", "replay")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("hmp dlq "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", ".hmp", "folder of the embedded NATS data (HMP_DATA_DIR)")
	natsURL := fs.String("nats-url", "", "NATS JetStream URL; empty opens the embedded bus under the data dir (HMP_NATS_URL)")
	asJSON := fs.Bool("json", false, "list: print JSON instead of a table")
	id := fs.Uint64("id", 0, "replay: the dead letter's sequence (the SEQ column of list)")
	all := fs.Bool("all", false, "replay: every dead letter")
	fs.Usage = func() {
		fmt.Fprintln(stderr, dlqUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if sub == "replay" && (*id == 0) == !*all {
		return usageError{errors.New("hmp dlq replay: give either --id SEQ or --all")}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := bus.Open(ctx, bus.Config{URL: *natsURL, StoreDir: filepath.Join(*dataDir, "nats"), Tool: *natsURL != ""}, logger)
	if err != nil {
		return err
	}
	defer b.Close()
	switch sub {
	case "list":
		letters, err := b.DeadLetters(ctx)
		if err != nil {
			return err
		}
		return printDeadLetters(stdout, letters, *asJSON)
	default:
		var replayed []bus.DeadLetterInfo
		if *all {
			replayed, err = b.ReplayDeadLetters(ctx)
		} else {
			var d bus.DeadLetterInfo
			if d, err = b.ReplayDeadLetter(ctx, *id); err == nil {
				replayed = append(replayed, d)
			}
		}
		for _, d := range replayed {
			fmt.Fprintf(stdout, "replayed %d to %s (was stream sequence %d)\n", d.Seq, d.Subject, d.StreamSeq)
		}
		if err == nil {
			fmt.Fprintf(stdout, "%d dead letters replayed\n", len(replayed))
		}
		return err
	}
}

// deadLetterView is a dead letter as `hmp dlq list --json` prints it: the
// body as JSON when it is JSON, else as a string.
type deadLetterView struct {
	Seq        uint64          `json:"seq"`
	Time       time.Time       `json:"time"`
	Consumer   string          `json:"consumer"`
	Reason     string          `json:"reason"`
	Deliveries uint64          `json:"deliveries"`
	Subject    string          `json:"subject"`
	StreamSeq  uint64          `json:"streamSeq"`
	Event      json.RawMessage `json:"event,omitempty"`
	Body       string          `json:"body,omitempty"`
}

func printDeadLetters(w io.Writer, letters []bus.DeadLetterInfo, asJSON bool) error {
	if asJSON {
		views := make([]deadLetterView, len(letters))
		for i, d := range letters {
			views[i] = deadLetterView{Seq: d.Seq, Time: d.Time.UTC(), Consumer: d.Consumer, Reason: d.Reason,
				Deliveries: d.Deliveries, Subject: d.Subject, StreamSeq: d.StreamSeq}
			if json.Valid(d.Data) {
				views[i].Event = d.Data
			} else {
				views[i].Body = string(d.Data)
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCONSUMER\tDELIVERIES\tSTREAM SEQ\tREASON")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Consumer, d.Deliveries, d.StreamSeq, d.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d dead letters\n", len(letters))
	return nil
}
