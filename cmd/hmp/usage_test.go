package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestUsageErrorsExitTwo runs every command with a command line it cannot
// run (an unknown flag, a bad value, a missing or unexpected argument, a
// value its config rejects) and checks exit 2 and a message naming the
// culprit. None of them may start anything: each fails before it would.
func TestUsageErrorsExitTwo(t *testing.T) {
	commands := [][]string{
		{"serve"}, {"migrate"}, {"reconcile"}, {"chaos"}, {"seed"}, {"verify"}, {"rebuild"},
		{"advise-indexes"}, {"partitions"}, {"partitions", "migrate"}, {"dlq", "list"}, {"dlq", "replay"},
		{"alerts", "rules"}, {"rollback", "emergency"}, {"rollback", "gradual"},
		{"loadtest", "writes"}, {"loadtest", "projection"}, {"loadtest", "freshness"},
		{"loadtest", "mixed"}, {"loadtest", "reads"}, {"loadtest", "guide"},
	}
	type bad struct {
		name string
		args []string
		want string // in the error
	}
	var cases []bad
	for _, cmd := range commands {
		name := strings.Join(cmd, " ")
		with := func(extra ...string) []string { return append(append([]string{}, cmd...), extra...) }
		cases = append(cases,
			bad{name + " unknown flag", with("--no-such-flag"), "no-such-flag"},
			bad{name + " unexpected argument", with("stray"), "stray"},
		)
	}
	// A bad value of a typed flag, per command family.
	cases = append(cases, []bad{
		{"serve bad int", []string{"serve", "--bcrypt-cost=many"}, "bcrypt-cost"},
		{"serve bad config", []string{"serve", "--profile=nope"}, "nope"},
		{"serve bad log level", []string{"serve", "--log-level=loud"}, "log-level"},
		{"migrate bad format", []string{"migrate", "--log-format=xml"}, "log-format"},
		{"reconcile bad org", []string{"reconcile", "--org=x"}, "--org"},
		{"reconcile property alone", []string{"reconcile", "--property=x"}, "--property"},
		{"chaos bad nats", []string{"chaos", "--nats=moon"}, "--nats"},
		{"chaos bad duration", []string{"chaos", "--duration=soon"}, "duration"},
		{"seed no orgs", []string{"seed"}, "--orgs"},
		{"dlq replay neither", []string{"dlq", "replay"}, "--id"},
		{"writes zero duration", []string{"loadtest", "writes", "--duration=0"}, "duration"},
		{"writes bad level", []string{"loadtest", "writes", "--log-level=loud"}, "log-level"},
		{"projection orgs over properties", []string{"loadtest", "projection", "--orgs=5", "--properties=2"}, "orgs"},
		{"projection bad profile", []string{"loadtest", "projection", "--profiles=nope"}, "--profiles"},
		{"freshness zero rate", []string{"loadtest", "freshness", "--rate=0"}, "rate"},
		{"mixed bad zipf", []string{"loadtest", "mixed", "--zipf=1"}, "zipf"},
		{"mixed bad scenario", []string{"loadtest", "mixed", "--scenario=storm"}, "scenario"},
		{"reads zero clients", []string{"loadtest", "reads", "--clients=0"}, "clients"},
		{"guide zero rate", []string{"loadtest", "guide", "--rate=0"}, "rate"},
		{"env bad value", []string{"loadtest", "reads"}, "HMP_LOADTEST_ORGS"},
	}...)
	for _, missing := range [][]string{{}, {"nope"}, {"loadtest"}, {"loadtest", "nope"}, {"dlq"}, {"alerts"}, {"rollback"}} {
		cases = append(cases, bad{"missing " + strings.Join(missing, " "), missing, ""})
	}
	// A cancelled context: a command that got past its checks fails at
	// once (exit 1) instead of running.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "env bad value" {
				t.Setenv("HMP_LOADTEST_ORGS", "many")
			}
			var out, errs bytes.Buffer
			err := run(ctx, c.args, &out, &errs)
			if code := exitCode(err); code != 2 {
				t.Fatalf("hmp %q: exit %d (%v), want 2\n%s", c.args, code, err, errs.String())
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("hmp %q: %v, want it to name %q", c.args, err, c.want)
			}
		})
	}
}
