package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"hmp/internal/loadtest"
)

// TestToolsKeepThePartitionCount: the operator command that creates the
// schema gives it the partition count asked for (hmp rebuild created 16
// whatever --partitions said), and every later command on that database,
// each asking for the default (16), keeps the count recorded then.
func TestToolsKeepThePartitionCount(t *testing.T) {
	dir := dataDir(t)
	ctx := context.Background()
	var out, errs bytes.Buffer
	hmp := func(args ...string) {
		t.Helper()
		out.Reset()
		if err := run(ctx, append(args, "--data-dir="+dir, "--log-level=warn"), &out, &errs); err != nil {
			t.Fatalf("hmp %v: %v\n%s", args, err, errs.String())
		}
	}
	hmp("rebuild", "--partitions=4")
	hmp("seed", "--orgs=1", "--days=2", "--progress=none")
	hmp("reconcile")
	hmp("verify")
	hmp("migrate")
	hmp("rebuild")
	hmp("partitions", "--json")
	var res struct {
		Tables []struct{ Table, State string }
		Spread []struct {
			Table      string
			Partitions int
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("partitions --json: %v: %s", err, out.String())
	}
	if len(res.Spread) != 7 {
		t.Fatalf("partitions --json: %d tables partitioned, want 7: %s", len(res.Spread), out.String())
	}
	for _, s := range res.Spread {
		if s.Partitions != 4 {
			t.Errorf("%s: %d partitions, want the 4 the schema was created with", s.Table, s.Partitions)
		}
	}
	for _, st := range res.Tables {
		if st.State != "partitioned" {
			t.Errorf("%s: %s", st.Table, st.State)
		}
	}
}

// dataDir is an empty data folder, removed at cleanup, that the embedded
// cluster's user can reach (t.TempDir's parent is private, which would
// move the cluster under /var/lib/hmp).
func dataDir(t *testing.T) string {
	t.Helper()
	dir, err := loadtest.TempDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
