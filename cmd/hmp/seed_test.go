package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hmp/internal/loadtest"
)

// TestSeedThenMixed seeds a tiny data set into an embedded cluster under a
// data folder and writes the accounts; hmp reconcile then finds nothing;
// and `hmp loadtest mixed --data` reuses the data set for a brief run of
// both profiles in turn, with the JSON and HTML reports.
func TestSeedThenMixed(t *testing.T) {
	dir := dataDir(t)
	accounts := filepath.Join(dir, "accounts.json")
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"seed", "--orgs=3", "--days=5", "--data-dir=" + dir, "--accounts=" + accounts,
		"--log-level=warn", "--progress=lines"}, &out, &errs)
	if err != nil {
		t.Fatalf("seed: %v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "seeded 3 orgs x 5 days") || !strings.Contains(errs.String(), "seed: 3/3 orgs") {
		t.Fatalf("output:\n%s\n%s", out.String(), errs.String())
	}
	var acc struct {
		Password string
		Accounts []struct{ AdminEmail string }
	}
	b, err := os.ReadFile(accounts)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &acc); err != nil || acc.Password == "" || len(acc.Accounts) != 3 || acc.Accounts[2].AdminEmail != "admin-2@seed.hmp.test" {
		t.Fatalf("accounts %v: %s", err, b)
	}
	out.Reset()
	if err := run(context.Background(), []string{"reconcile", "--data-dir=" + dir, "--log-level=warn"}, &out, &errs); err != nil {
		t.Fatalf("reconcile: %v\n%s", err, out.String())
	}
	var rec struct{ Mismatches, DaysChecked int }
	if err := json.Unmarshal(out.Bytes(), &rec); err != nil || rec.Mismatches != 0 || rec.DaysChecked == 0 {
		t.Fatalf("reconcile %v: %s", err, out.String())
	}

	jsonPath, htmlPath := filepath.Join(dir, "mixed.json"), filepath.Join(dir, "mixed.html")
	out.Reset()
	err = run(context.Background(), []string{"loadtest", "mixed", "--orgs=3", "--data=" + dir, "--duration=1s", "--rate=40",
		"--compare=baseline,phase1", "--probe-rate=4", "--json=" + jsonPath, "--html=" + htmlPath}, &out, &errs)
	if err != nil {
		t.Fatalf("mixed: %v\n%s", err, errs.String())
	}
	var rep loadtest.MixedReport
	if b, err = os.ReadFile(jsonPath); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Schema != loadtest.MixedSchema || len(rep.Profiles) != 2 || rep.Profiles[0].Profile != "baseline" || rep.Profiles[1].Profile != "phase1" ||
		len(rep.Comparison) == 0 || rep.Data == nil || rep.Data.Orgs != 3 || !rep.Data.Reused {
		t.Fatalf("report: %s", b)
	}
	for _, p := range rep.Profiles {
		if p.All.OK == 0 || p.Reads.OK == 0 || p.Writes.OK == 0 || p.All.Failed != 0 || p.Freshness == nil || p.Freshness.OK == 0 {
			t.Errorf("profile %s: all %+v reads %d writes %d freshness %+v", p.Profile, p.All, p.Reads.OK, p.Writes.OK, p.Freshness)
		}
	}
	if !strings.Contains(out.String(), "comparison (ratio = profile / baseline)") {
		t.Errorf("summary:\n%s", out.String())
	}
	if h, err := os.ReadFile(htmlPath); err != nil || !bytes.Contains(h, []byte("<svg")) {
		t.Errorf("html: %v", err)
	}
}

// Bad flags are usage errors (hmp exits 2), each with a clear message.
func TestSeedAndMixedBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"seed"}, "--orgs must be at least 1"},
		{[]string{"seed", "--orgs=2", "--days=0"}, "--days must be at least 1"},
		{[]string{"seed", "--orgs=x"}, "invalid value"},
		{[]string{"seed", "--orgs=2", "--progress=fancy"}, "--progress must be"},
		{[]string{"loadtest", "mixed", "--rate=10", "--clients=2"}, "not both"},
		{[]string{"loadtest", "mixed", "--scenario=spiky"}, "--scenario must be one of"},
		{[]string{"loadtest", "mixed", "--compare=baseline,phase9"}, `unknown profile "phase9"`},
		{[]string{"loadtest", "mixed", "--read-share=1.5"}, "--read-share must be between"},
		{[]string{"loadtest", "mixed", "--duration=0s"}, "--duration must be positive"},
		{[]string{"loadtest", "mixed", "--scenario=ramp", "--clients=4"}, "use --rate"},
		{[]string{"loadtest", "mixed", "--compare=baseline,phase1", "--url=http://127.0.0.1:1"}, "cannot drive --url"},
		{[]string{"loadtest", "mixed", "--bogus"}, "flag provided but not defined"},
	} {
		var out, errs bytes.Buffer
		err := run(context.Background(), c.args, &out, &errs)
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error()+errs.String(), c.want) {
			t.Errorf("%v: got %v, want a usage error saying %q", c.args, err, c.want)
		}
	}
}
