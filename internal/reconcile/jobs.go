package reconcile

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/domain"
	"hmp/internal/postgres"
	"hmp/internal/startstop"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of the tables this package owns (the
// reconciliation jobs). It runs after reports' set.
func Migrations() postgres.MigrationSet {
	return postgres.EmbeddedSet("reconcile", migrationFiles)
}

// JobStatus is where a reconciliation job is.
type JobStatus string

// The job statuses.
const (
	JobRunning JobStatus = "running"
	JobDone    JobStatus = "done"
	JobFailed  JobStatus = "failed"
)

// Job is one reconciliation asked for over the API.
type Job struct {
	ID, OrgID  domain.ID
	PropertyID *domain.ID
	Status     JobStatus
	// Result is the reconciliation's outcome once Status is done (Details
	// holds the first MaxMismatchDetails mismatches; Duration is zero).
	Result Reconciliation
	// Error says why a failed job failed.
	Error      string
	CreatedAt  time.Time
	FinishedAt *time.Time
}

// Jobs runs reconciliations in the background, one at a time per
// organization, and keeps their outcome for polling.
type Jobs struct {
	pool   *pgxpool.Pool
	rec    *Reconciler
	cfg    Config
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped bool
	// finished fires after each job ends (tests wait on it).
	finished startstop.Signal
}

// NewJobs returns the job runner over rec (cfg.JobDeadline bounds a job;
// a job still marked running twice as long after it began, its instance
// gone, is failed by the next submit of its organization). now is the
// clock.
func NewJobs(pool *pgxpool.Pool, rec *Reconciler, cfg Config, logger *slog.Logger, now func() time.Time) *Jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &Jobs{pool: pool, rec: rec, cfg: cfg.WithDefaults(), logger: logger, now: now,
		ctx: ctx, cancel: cancel}
}

// Stop cancels the running jobs (they are recorded as failed) and waits
// for them. Safe to call twice; a Submit after Stop is refused.
func (j *Jobs) Stop() {
	j.mu.Lock()
	j.stopped = true
	j.mu.Unlock()
	j.cancel()
	j.wg.Wait()
}

// Finished returns a channel closed when the next job ends.
func (j *Jobs) Finished() <-chan struct{} {
	return j.finished.Wait()
}

const (
	abandonJobsSQL = `
	UPDATE reconcile_jobs SET status = 'failed', error = 'abandoned: its instance stopped', finished_at = $3
	WHERE org_id = $1 AND status = 'running' AND created_at < $2`

	insertJobSQL = `
	INSERT INTO reconcile_jobs (org_id, id, property_id, status, created_at)
	VALUES ($1, $2, $3, 'running', $4)
	ON CONFLICT (org_id) WHERE status = 'running' DO NOTHING`

	selectJobSQL = `
	SELECT id, org_id, property_id, status, days_checked, months_checked, counts_checked,
	       mismatch_count, mismatches, COALESCE(error, ''), created_at, finished_at
	FROM reconcile_jobs WHERE org_id = $1`

	finishJobSQL = `
	UPDATE reconcile_jobs SET status = $3, days_checked = $4, months_checked = $5, counts_checked = $6,
	       mismatch_count = $7, mismatches = $8, error = NULLIF($9, ''), finished_at = $10
	WHERE org_id = $1 AND id = $2`
)

// Submit starts a reconciliation of org (nil property: all of it) in the
// background and returns its job at once. While a job of org is running it
// returns that job instead: one reconciliation at a time per organization.
func (j *Jobs) Submit(ctx context.Context, org domain.ID, property *domain.ID) (Job, error) {
	// Count the job before it exists, under the lock Stop takes, so that
	// Stop's wait never races a job being started.
	j.mu.Lock()
	if j.stopped {
		j.mu.Unlock()
		return Job{}, fmt.Errorf("%w: reconciliation is stopping", domain.ErrUnavailable)
	}
	j.wg.Add(1)
	j.mu.Unlock()
	launched := false
	defer func() {
		if !launched {
			j.wg.Done()
		}
	}()
	now := j.now().UTC().Truncate(time.Microsecond)
	job := Job{ID: domain.NewID(now), OrgID: org, PropertyID: property, Status: JobRunning, CreatedAt: now}
	inserted := false
	err := postgres.WithTx(ctx, j.pool, func(tx pgx.Tx) error {
		// A live instance fails its own job at the deadline; only one
		// still running well past it (twice the deadline plus a minute for
		// that instance to record the failure) has lost its instance.
		if _, err := tx.Exec(ctx, abandonJobsSQL, org, now.Add(-(2*j.cfg.JobDeadline + time.Minute)), now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, insertJobSQL, org, job.ID, property, now)
		inserted = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return Job{}, fmt.Errorf("submit reconciliation: %w", postgres.Translate(err))
	}
	if !inserted {
		running, err := j.scan(ctx, selectJobSQL+` AND status = 'running'`, org)
		if errors.Is(err, domain.ErrNotFound) { // it ended meanwhile: try again
			return j.Submit(ctx, org, property)
		}
		return running, err
	}
	launched = true
	go func() {
		defer j.wg.Done()
		j.run(job)
	}()
	return job, nil
}

// Get returns org's job id; ErrNotFound when there is none (another
// organization's job is not found either).
func (j *Jobs) Get(ctx context.Context, org, id domain.ID) (Job, error) {
	return j.scan(ctx, selectJobSQL+` AND id = $2`, org, id)
}

func (j *Jobs) scan(ctx context.Context, sql string, args ...any) (Job, error) {
	var (
		job  Job
		raw  []byte
		st   string
		r    = &job.Result
		errs string
	)
	err := j.pool.QueryRow(ctx, sql, args...).Scan(&job.ID, &job.OrgID, &job.PropertyID, &st, &r.DaysChecked, &r.MonthsChecked,
		&r.CountsChecked, &r.Mismatches, &raw, &errs, &job.CreatedAt, &job.FinishedAt)
	if err != nil {
		return Job{}, fmt.Errorf("reconciliation job: %w", postgres.Translate(err))
	}
	job.Status, job.Error = JobStatus(st), errs
	if err := json.Unmarshal(raw, &r.Details); err != nil {
		return Job{}, fmt.Errorf("reconciliation job %s: %w", job.ID, err)
	}
	return job, nil
}

// run reconciles under the deadline and records the outcome. The record is
// written even when the runner is stopping, so no job stays running.
func (j *Jobs) run(job Job) {
	ctx, cancel := context.WithTimeout(j.ctx, j.cfg.JobDeadline)
	defer cancel()
	res, err := j.rec.Reconcile(ctx, &job.OrgID, job.PropertyID)
	status, msg := JobDone, ""
	if err != nil {
		status, msg = JobFailed, "reconciliation failed"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = fmt.Sprintf("reconciliation did not finish within %s", j.cfg.JobDeadline)
		} else if j.ctx.Err() != nil {
			msg = "reconciliation stopped: the instance is shutting down"
		}
		j.logger.Error("reconcile_job_failed", "org_id", job.OrgID.String(), "job_id", job.ID.String(), "error", err.Error())
		res = Reconciliation{}
	}
	details, _ := json.Marshal(nonNil(res.Details))
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(j.ctx), 30*time.Second)
	defer wcancel()
	err = postgres.Retry(wctx, func() error {
		_, err := j.pool.Exec(wctx, finishJobSQL, job.OrgID, job.ID, string(status), res.DaysChecked, res.MonthsChecked,
			res.CountsChecked, res.Mismatches, details, msg, j.now().UTC())
		return err
	})
	if err != nil {
		j.logger.Error("reconcile_job_record_failed", "org_id", job.OrgID.String(), "job_id", job.ID.String(), "error", err.Error())
	}
	j.finished.Fire()
}

func nonNil(m []Mismatch) []Mismatch {
	if m == nil {
		return []Mismatch{}
	}
	return m
}
