package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"hmp/internal/proc"
)

const sigCont = syscall.SIGCONT

// hmpDir is hmp's data dir inside the run's folder.
func (r *run) hmpDir() string { return filepath.Join(r.dir, "hmp") }

// startHMP starts `hmp serve` and waits until it is ready.
func (r *run) startHMP(ctx context.Context) error {
	if err := r.spawnHMP(); err != nil {
		return err
	}
	return r.hmp.WaitHTTP(ctx, "http://"+r.addr+"/readyz", 3*time.Minute)
}

// spawnHMP starts `hmp serve` without waiting, as a supervisor restarting
// it would.
func (r *run) spawnHMP() error {
	r.hmp = &proc.Process{Name: "hmp serve", Args: r.serveArgs(r.hmpDir(), r.addr), Dir: r.dir, Log: filepath.Join(r.dir, "hmp.log")}
	r.restarts++
	return r.hmp.Start()
}

// serveArgs is the command line of an `hmp serve` with its data dir and
// address, on the run's database and bus.
func (r *run) serveArgs(dataDir, addr string) []string {
	args := []string{r.cfg.Binary, "serve", "--data-dir", dataDir, "--http-addr", addr, "--log-format", "text"}
	if r.natsURL != "" {
		args = append(args, "--nats-url", r.natsURL)
	}
	if r.dbURL != "" {
		args = append(args, "--database-url", r.dbURL)
	}
	if r.secret != "" {
		args = append(args, "--token-secret", r.secret)
	}
	return args
}

// startNATS starts (or restarts, on the same port and storage) an
// external JetStream server.
func (r *run) startNATS(ctx context.Context) error {
	if r.natsURL == "" {
		port, err := freePort()
		if err != nil {
			return err
		}
		r.natsURL = "nats://127.0.0.1:" + strconv.Itoa(port)
	}
	port := r.natsURL[len("nats://127.0.0.1:"):]
	r.nats = &proc.Process{Name: "nats-server", Dir: r.dir, Log: filepath.Join(r.dir, "nats.log"),
		Args: []string{r.cfg.NATSServer, "-js", "-a", "127.0.0.1", "-p", port, "-sd", filepath.Join(r.dir, "nats")}}
	if err := r.nats.Start(); err != nil {
		return err
	}
	return r.nats.WaitTCP(ctx, "127.0.0.1:"+port, time.Minute)
}

// seed signs the run's organizations up, each with one property.
func (r *run) seed(ctx context.Context) error {
	// Yesterday at noon UTC: the same business date in the default zone
	// (Asia/Kolkata), inside the accepted window, one date for every row.
	day := time.Now().UTC().AddDate(0, 0, -1)
	r.occurredAt = time.Date(day.Year(), day.Month(), day.Day(), 12, 0, 0, 0, time.UTC).Format(time.RFC3339)
	r.date = day.Format(time.DateOnly)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range r.cfg.Orgs {
		var su struct {
			AccessToken string `json:"accessToken"`
		}
		name := fmt.Sprintf("chaos-%s-%d", run, i)
		if err := r.api.call(ctx, http.MethodPost, "/v1/auth/signup", "", map[string]string{
			"orgName": name, "email": name + "@chaos.test", "password": "chaos password", "displayName": name,
		}, nil, http.StatusCreated, &su, time.Minute); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		var prop struct {
			ID string `json:"id"`
		}
		if err := r.api.call(ctx, http.MethodPost, "/v1/properties", su.AccessToken, map[string]string{"name": name, "type": "hotel"},
			nil, http.StatusCreated, &prop, time.Minute); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		r.tenants = append(r.tenants, tenant{token: su.AccessToken, property: prop.ID})
	}
	return nil
}

// load offers writes at the configured rate for the duration, injects the
// faults spread over it, and returns once every write is acknowledged or
// given up on.
func (r *run) load(ctx context.Context) []FaultResult {
	// Up to two seconds of writes wait for a free writer; beyond that a
	// write is skipped (counted), as an open-loop client would drop it.
	jobs := make(chan write, 2*r.cfg.Rate)
	var writers sync.WaitGroup
	for range r.cfg.Writers {
		writers.Go(func() {
			for w := range jobs {
				r.create(ctx, w, 100*time.Millisecond)
			}
		})
	}
	start := time.Now()
	faultsDone := make(chan []FaultResult, 1)
	go func() { faultsDone <- r.injectAll(ctx, start) }()

	var results []FaultResult
	ticker := time.NewTicker(time.Second / time.Duration(r.cfg.Rate))
	defer ticker.Stop()
	end := time.After(r.cfg.Duration)
	seq := 0
	over := false // the duration has passed
	// Writes go on past the duration until the last fault has recovered,
	// so that every fault is seen by the writers.
	for !over || results == nil {
		select {
		case <-ctx.Done():
			if results == nil {
				results = <-faultsDone
			}
			over = true
		case results = <-faultsDone:
		case <-end:
			over = true
		case <-ticker.C:
			seq++
			w := write{org: seq % len(r.tenants), via: seq, key: fmt.Sprintf("chaos-%d", seq), amount: 1 + rand.Int64N(100_000)}
			r.ledger.mu.Lock()
			r.ledger.offered++
			r.ledger.mu.Unlock()
			select {
			case jobs <- w:
			default:
				r.ledger.mu.Lock()
				r.ledger.skipped++
				r.ledger.mu.Unlock()
			}
		}
	}
	close(jobs)
	writers.Wait()
	return results
}

// injectAll runs the faults one after the other, the i-th at i/(n+1) of
// the duration or once the previous one has recovered, whichever is later.
func (r *run) injectAll(ctx context.Context, start time.Time) []FaultResult {
	results := make([]FaultResult, 0, len(r.cfg.Faults))
	for i, name := range r.cfg.Faults {
		at := start.Add(r.cfg.Duration * time.Duration(i+1) / time.Duration(len(r.cfg.Faults)+1))
		if sleep(ctx, time.Until(at)) != nil {
			break
		}
		r.ledger.phase.Store(int32(i + 1))
		r.logf("fault %d/%d: %s", i+1, len(r.cfg.Faults), name)
		res := r.inject(ctx, name)
		if res.Error != "" {
			r.problem("fault %s: %s", name, res.Error)
		}
		r.logf("fault %s: recovered in %.2fs (outage %.2fs)", name, res.RecoverySeconds, res.OutageSeconds)
		results = append(results, res)
		if res.Error != "" && !r.hmp.Running() {
			break // nothing left to inject into
		}
	}
	return results
}

// inject performs one fault and waits until a write is acknowledged again.
func (r *run) inject(ctx context.Context, name string) FaultResult {
	res := FaultResult{Name: name}
	began := time.Now()
	if r.ha != nil && slices.Contains(haOnly, name) {
		return r.injectHA(ctx, name)
	}
	var err error
	switch name {
	case FaultKill:
		r.readMetrics(ctx)
		r.hmp.Kill()
		err = r.spawnHMP() // a supervisor restarts it at once
	case FaultPostgresFast:
		err = r.pg.restart(ctx, "fast")
	case FaultPostgresImmediate:
		err = r.pg.restart(ctx, "immediate")
	case FaultBusRestart:
		if r.nats != nil {
			r.nats.Stop(30 * time.Second)
			err = r.startNATS(ctx)
		} else {
			// The embedded bus lives in the hmp process.
			r.readMetrics(ctx)
			r.hmp.Stop(90 * time.Second)
			err = r.spawnHMP()
		}
	case FaultPostgresStall:
		pids := r.pg.processes()
		if len(pids) == 0 {
			err = fmt.Errorf("no PostgreSQL server to stall")
			break
		}
		if err = r.pg.signal(pids, syscall.SIGSTOP); err == nil {
			err = sleep(ctx, r.cfg.Stall)
		}
		if cerr := r.pg.signal(pids, syscall.SIGCONT); err == nil {
			err = cerr
		}
	}
	back := time.Now()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if err := r.probe(ctx); err != nil {
		res.Error = err.Error()
	}
	now := time.Now()
	res.RecoverySeconds = now.Sub(back).Seconds()
	res.OutageSeconds = now.Sub(began).Seconds()
	return res
}

// probe makes writes until one is acknowledged (those are ordinary writes
// of the run, checked like the rest), or fails after RetryFor.
func (r *run) probe(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.RetryFor)
	for n := 0; ; n++ {
		w := write{org: n % len(r.tenants), via: n, key: fmt.Sprintf("probe-%d-%d", r.ledger.phase.Load(), n), amount: 1 + rand.Int64N(100_000)}
		r.ledger.mu.Lock()
		r.ledger.offered++
		r.ledger.mu.Unlock()
		if r.create(ctx, w, 50*time.Millisecond) {
			return nil
		}
		if !r.hmp.Running() {
			return fmt.Errorf("hmp serve exited: %s", r.hmp.LogTail())
		}
		if r.peer != nil && !r.peer.Running() {
			return fmt.Errorf("the second hmp serve exited: %s", r.peer.LogTail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("no write acknowledged within %s", r.cfg.RetryFor)
		}
	}
}
