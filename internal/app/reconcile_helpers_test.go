package app_test

import (
	"testing"
	"time"

	"hmp/internal/apptest"
)

// repReconciliation is a reconciliation job as GET
// /v1/reports/reconciliation/{id} answers it.
type repReconciliation struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	DaysChecked   int64  `json:"daysChecked"`
	MonthsChecked int64  `json:"monthsChecked"`
	CountsChecked int64  `json:"countsChecked"`
	MismatchCount int64  `json:"mismatchCount"`
	Mismatches    []struct {
		PropertyID string `json:"propertyId"`
		Period     string `json:"period"`
		Field      string `json:"field"`
		Expected   int64  `json:"expected"`
		Actual     int64  `json:"actual"`
	} `json:"mismatches"`
	Error string `json:"error"`
}

// reconcileJob starts a reconciliation job (202 at once, running) and
// waits for it to end; it fails the test unless the job is done.
func reconcileJob(t testing.TB, env *apptest.Env, token string, body any) repReconciliation {
	t.Helper()
	var job repReconciliation
	env.Must(202, "POST", "/v1/reports/reconciliation", token, body).JSON(t, &job)
	if job.ID == "" || (job.Status != "running" && job.Status != "done") {
		t.Fatalf("reconciliation answered %+v", job)
	}
	return awaitJob(t, env, token, job.ID)
}

// awaitJob polls job id, waking on each finished job, until it is no
// longer running.
func awaitJob(t testing.TB, env *apptest.Env, token, id string) repReconciliation {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		finished := env.App.Reconciliation.Finished()
		var job repReconciliation
		env.Must(200, "GET", "/v1/reports/reconciliation/"+id, token, nil).JSON(t, &job)
		switch job.Status {
		case "done":
			return job
		case "running":
		default:
			t.Fatalf("reconciliation job %s: %+v", id, job)
		}
		select {
		case <-finished:
		case <-deadline:
			t.Fatalf("reconciliation job %s still running after a minute", id)
		}
	}
}
