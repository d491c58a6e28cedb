package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPartitionsCommands seeds the unpartitioned layout (--partitions -1),
// which 'hmp partitions' reports as pending; 'hmp partitions migrate'
// moves it; then 'hmp partitions --org' names each table's partition of an
// organization, holding its rows.
func TestPartitionsCommands(t *testing.T) {
	dir := dataDir(t)
	ctx := context.Background()
	accounts := filepath.Join(dir, "accounts.json")
	var out, errs bytes.Buffer
	if err := run(ctx, []string{"seed", "--orgs=3", "--days=5", "--partitions=-1", "--data-dir=" + dir, "--accounts=" + accounts, "--log-level=warn", "--progress=none"}, &out, &errs); err != nil {
		t.Fatalf("seed: %v\n%s", err, errs.String())
	}
	out.Reset()
	if err := run(ctx, []string{"partitions", "--data-dir=" + dir, "--log-level=warn"}, &out, &errs); err != nil {
		t.Fatalf("partitions: %v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "transactions: pending") || strings.Count(out.String(), ": pending") != 7 {
		t.Fatalf("partitions before the move:\n%s", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"partitions", "migrate", "--batch=25", "--partitions=8", "--data-dir=" + dir, "--log-level=warn"}, &out, &errs); err != nil {
		t.Fatalf("partitions migrate: %v\n%s\n%s", err, out.String(), errs.String())
	}
	var moved []struct {
		Table string
		Rows  int64
	}
	if err := json.Unmarshal(out.Bytes(), &moved); err != nil || len(moved) != 7 || moved[0].Rows == 0 {
		t.Fatalf("migrate output %v: %s", err, out.String())
	}
	var acc struct{ Accounts []struct{ OrgID string } }
	b, err := os.ReadFile(accounts)
	if err != nil || json.Unmarshal(b, &acc) != nil || len(acc.Accounts) == 0 {
		t.Fatalf("accounts %v: %s", err, b)
	}
	out.Reset()
	if err := run(ctx, []string{"partitions", "--org=" + acc.Accounts[0].OrgID, "--json", "--data-dir=" + dir, "--log-level=warn"}, &out, &errs); err != nil {
		t.Fatalf("partitions --org: %v\n%s", err, errs.String())
	}
	var res struct {
		Tables []struct{ Table, State string }
		Spread []struct {
			Table      string
			Partitions int
		}
		Org []struct {
			Table, Partition string
			Rows             int64
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Spread) != 7 || res.Spread[0].Partitions != 8 || len(res.Org) != 7 {
		t.Fatalf("partitions --org: %s", out.String())
	}
	for _, st := range res.Tables {
		if st.State != "partitioned" {
			t.Errorf("%s: %s after the move", st.Table, st.State)
		}
	}
	for _, h := range res.Org {
		if h.Table == "transactions" && (h.Rows == 0 || !strings.HasPrefix(h.Partition, "transactions_p")) {
			t.Errorf("organization's transactions: %+v", h)
		}
	}
	if err := run(ctx, []string{"partitions", "--org=nope", "--data-dir=" + dir}, &out, &errs); err == nil {
		t.Error("--org=nope accepted")
	}
}
