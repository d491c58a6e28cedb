package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"hmp/internal/loadtest"
)

// TestRebuildRunsAgain: a second `hmp rebuild` without --run is a new run
// that folds every organization again (it used to resume the fixed
// default run and skip them all, exiting 0); with the first run's name it
// resumes and skips them.
func TestRebuildRunsAgain(t *testing.T) {
	dir := seededDir(t)
	type result struct {
		Run           string
		Orgs, Skipped int
		Complete      bool
	}
	rebuild := func(args ...string) result {
		t.Helper()
		var r result
		if errs, err := runJSON(t, &r, append([]string{"rebuild", "--data-dir=" + dir, "--log-level=warn"}, args...)...); err != nil {
			t.Fatalf("rebuild %v: %v\n%s", args, err, errs)
		}
		return r
	}
	first := rebuild()
	second := rebuild()
	if !first.Complete || first.Orgs != 2 || second.Orgs != 2 || second.Skipped != 0 || second.Run == first.Run {
		t.Fatalf("two rebuilds without --run: %+v then %+v, want two new runs of 2 organizations", first, second)
	}
	if resumed := rebuild("--run=" + first.Run); resumed.Skipped != 2 {
		t.Fatalf("rebuild --run %s: %+v, want both organizations skipped (finished by that run)", first.Run, resumed)
	}
}

// runJSON runs hmp with args and decodes what it printed into v, failing
// the test when that is no JSON; it returns run's error and what the
// command wrote to standard error.
func runJSON(t *testing.T, v any, args ...string) (stderr string, err error) {
	t.Helper()
	var out, errs bytes.Buffer
	err = run(context.Background(), args, &out, &errs)
	if jerr := json.Unmarshal(out.Bytes(), v); jerr != nil {
		t.Fatalf("%s output: %v (run: %v): %s\n%s", args[0], jerr, err, out.String(), errs.String())
	}
	return errs.String(), err
}

// seededDir is a data folder whose embedded database holds a seeded
// history of two organizations, removed at cleanup.
func seededDir(t *testing.T) string {
	t.Helper()
	dir, err := loadtest.TempDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"seed", "--orgs=2", "--days=3", "--data-dir=" + dir, "--log-level=warn", "--progress=none"}, &out, &errs); err != nil {
		t.Fatalf("seed: %v\n%s", err, errs.String())
	}
	return dir
}
