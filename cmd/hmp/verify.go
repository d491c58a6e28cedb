package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"hmp/internal/domain"
	"hmp/internal/eventstore"
	"hmp/internal/finance"
	"hmp/internal/tools"
)

const verifyUsage = `Usage: hmp verify [flags]

Walk the hash chain of each organization's events (or of one, --org) and
recompute every link: each event's content hash from the stored row, its link
hash sha256(prev_hash || content_hash), the positions without a gap, and the
organization's chain head. Prints JSON with the first broken link of each
broken chain (organization, event seq and id, chain position, what differs).
Exits 1 when any chain is broken. Reads only; runs beside a serving hmp.

Flags:`

// foldResult is what verify --fold found.
type foldResult struct {
	// Checked is the number of revenues and expenses folded.
	Checked int `json:"checked"`
	// Orgs lists the organizations with a mismatch, each with its rows.
	Orgs []finance.OrgFold `json:"orgs"`
}

func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hmp verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	org := fs.String("org", "", "verify one organization (its id); empty: every organization (HMP_VERIFY_ORG)")
	heads := fs.Bool("heads", false, "print each chain's head hash, to record outside the database (HMP_VERIFY_HEADS)")
	fold := fs.Bool("fold", false, "also check that every transactions row is the fold of its events, the record (HMP_VERIFY_FOLD)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, verifyUsage)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	opts := eventstore.VerifyOptions{Heads: *heads}
	if *org != "" {
		id, err := domain.ParseID(*org)
		if err != nil {
			return usageError{fmt.Errorf("--org: %w", err)}
		}
		opts.OrgID = id
	}
	logger, err := c.logger(stderr)
	if err != nil {
		return usageError{err}
	}
	db, err := tools.OpenTool(ctx, c.cfg, logger, tools.ToolOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	pool := db.Pool
	opts.Progress = func(done int, events int64) {
		if done%10000 == 0 {
			logger.Info("verify_progress", "orgs", done, "events", events)
		}
	}
	v, err := eventstore.Verify(ctx, pool, opts)
	if err != nil {
		return err
	}
	if v.Breaks == nil {
		v.Breaks = []eventstore.Break{}
	}
	out := struct {
		eventstore.Verification
		Fold *foldResult `json:"fold,omitempty"`
	}{Verification: v}
	if *fold {
		// The events are the record: the table must be their fold.
		checked, bad, err := finance.New(pool, nil, time.Now).CheckFolds(ctx, opts.OrgID)
		if err != nil {
			return err
		}
		out.Fold = &foldResult{Checked: checked, Orgs: bad}
		if out.Fold.Orgs == nil {
			out.Fold.Orgs = []finance.OrgFold{}
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	return verifyFailures(v, out.Fold, stderr)
}

// verifyFailures names the broken chains and the first row that is not
// the fold of its events on stderr, and fails when there is any.
func verifyFailures(v eventstore.Verification, fold *foldResult, stderr io.Writer) error {
	for _, b := range v.Breaks {
		fmt.Fprintln(stderr, "broken:", b)
	}
	var failed []error
	if len(v.Breaks) > 0 {
		failed = append(failed, errors.New("hash chain broken"))
	}
	if fold != nil && len(fold.Orgs) > 0 {
		first := fold.Orgs[0]
		m := first.Mismatches[0]
		fmt.Fprintf(stderr, "not the fold of its events: org %s %s %s: %s\n", first.OrgID, m.Kind, m.ID, m.Detail)
		failed = append(failed, fmt.Errorf("%d organizations have transactions rows that are not the fold of their events", len(fold.Orgs)))
	}
	return errors.Join(failed...)
}
