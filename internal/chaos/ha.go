package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	rnd "math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"hmp/internal/ha"
	"hmp/internal/proc"
)

// ReplicationResult is the write figure of one replication mode.
type ReplicationResult struct {
	// Mode: synchronous or asynchronous.
	Mode            string  `json:"mode"`
	Seconds         float64 `json:"seconds"`
	Writers         int     `json:"writers"`
	Acknowledged    int     `json:"acknowledged"`
	WritesPerSecond float64 `json:"writesPerSecond"`
	P50Ms           float64 `json:"p50Ms"`
	P99Ms           float64 `json:"p99Ms"`
}

// startHA starts the failover topology and returns its description.
func (r *run) startHA(ctx context.Context) (string, error) {
	cfg := r.cfg.Patroni
	cfg.TempDir, cfg.Log = r.dir, r.cfg.Log
	c, err := ha.Start(ctx, cfg)
	if err != nil {
		return "", err
	}
	r.ha = c
	r.dbURL = c.URL()
	if r.cfg.Instances > 1 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		r.secret = hex.EncodeToString(b)
	}
	mode := "synchronous"
	if cfg.Async {
		mode = "asynchronous"
	}
	cfg = cfg.WithDefaults()
	r.logf("HA topology up: %s", r.dbURL)
	return fmt.Sprintf("patroni+etcd, 2 nodes, %s (ttl %ds, loop_wait %ds, retry_timeout %ds)", mode, cfg.TTL, cfg.LoopWait, cfg.RetryTimeout), nil
}

// startPeer starts the second instance, when the run has one.
func (r *run) startPeer(ctx context.Context) error {
	if r.peerAddr == "" {
		return nil
	}
	r.peer = &proc.Process{Name: "hmp serve (second)", Args: r.serveArgs(filepath.Join(r.dir, "hmp-2"), r.peerAddr), Dir: r.dir, Log: filepath.Join(r.dir, "hmp-2.log")}
	if err := r.peer.Start(); err != nil {
		return err
	}
	return r.peer.WaitHTTP(ctx, "http://"+r.peerAddr+"/readyz", 3*time.Minute)
}

// injectHA performs a fault of the failover topology: recovery runs from
// the fault to the first acknowledged write; the old leader then rejoins
// as a standby before the next fault.
func (r *run) injectHA(ctx context.Context, name string) FaultResult {
	res := FaultResult{Name: name}
	leader, err := r.ha.Leader(ctx)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	began := time.Now()
	var thaw *time.Timer
	switch name {
	case FaultPrimaryLoss:
		err = r.ha.Kill(leader)
	case FaultPrimaryFreeze:
		err = r.ha.Freeze(leader)
		// A client stuck on the frozen node must not hold the run for
		// ever: the node is resumed after Freeze at the latest.
		thaw = time.AfterFunc(r.cfg.Freeze, func() { r.ha.Thaw(leader) })
	}
	if err != nil {
		res.Error = err.Error()
	} else if perr := r.probe(ctx); perr != nil {
		res.Error = perr.Error()
	}
	res.RecoverySeconds = time.Since(began).Seconds()
	res.OutageSeconds = res.RecoverySeconds
	if thaw != nil && !thaw.Stop() {
		r.logf("fault %s: writes had not resumed when the old leader was resumed after %s", name, r.cfg.Freeze)
	}
	r.ha.Thaw(leader)
	if name == FaultPrimaryLoss {
		if rerr := r.ha.Restart(leader); rerr != nil && res.Error == "" {
			res.Error = rerr.Error()
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if now, werr := r.ha.WaitHealthy(wctx); werr != nil {
		if res.Error == "" {
			res.Error = "old leader did not rejoin: " + werr.Error()
		}
	} else {
		r.logf("fault %s: %s leads, %s rejoined as a standby after %.1fs", name, now.Name, leader.Name, time.Since(began).Seconds())
	}
	return res
}

// compare measures closed-loop writes with synchronous, then asynchronous
// replication (switched in Patroni's dynamic configuration), and leaves
// the topology in the mode the run was configured with. Its writes are
// the run's and checked like the others.
func (r *run) compare(ctx context.Context) ([]ReplicationResult, error) {
	writers := min(r.cfg.Writers, 16)
	var out []ReplicationResult
	for _, synchronous := range []bool{true, false} {
		if err := r.ha.SetSynchronous(ctx, synchronous); err != nil {
			return nil, fmt.Errorf("switch replication mode: %w", err)
		}
		res := ReplicationResult{Mode: "synchronous", Writers: writers}
		if !synchronous {
			res.Mode = "asynchronous"
		}
		var mu sync.Mutex
		var lat []time.Duration
		start := time.Now()
		end := start.Add(r.cfg.CompareFor)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
					w := write{org: (i + n) % len(r.tenants), via: i + n, key: fmt.Sprintf("compare-%s-%d-%d", res.Mode, i, n), amount: 1 + rnd.Int64N(100_000)}
					r.ledger.mu.Lock()
					r.ledger.offered++
					r.ledger.mu.Unlock()
					t0 := time.Now()
					if r.create(ctx, w, 50*time.Millisecond) {
						d := time.Since(t0)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		res.Seconds = time.Since(start).Seconds()
		res.Acknowledged = len(lat)
		res.WritesPerSecond = float64(len(lat)) / res.Seconds
		slices.Sort(lat)
		res.P50Ms, res.P99Ms = quantileMs(lat, 0.50), quantileMs(lat, 0.99)
		r.logf("replication %s: %.0f writes/s, p50 %.1f ms, p99 %.1f ms", res.Mode, res.WritesPerSecond, res.P50Ms, res.P99Ms)
		out = append(out, res)
	}
	if err := r.ha.SetSynchronous(ctx, !r.cfg.Patroni.Async); err != nil {
		return nil, fmt.Errorf("restore replication mode: %w", err)
	}
	return out, nil
}

func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return float64(sorted[max(i, 0)].Microseconds()) / 1000
}

// watchRelay samples every instance's hmp_relay_leader gauge every 250 ms
// until the returned function is called, which returns the instances
// that led, in order, and the samples where more than one did. With one
// instance it watches nothing.
func (r *run) watchRelay(ctx context.Context) func() ([]int, int) {
	if r.peer == nil {
		return func() ([]int, int) { return nil, 0 }
	}
	ctx, cancel := context.WithCancel(ctx)
	var leaders []int
	overlaps := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var now []int
			for i, addr := range []string{r.addr, r.peerAddr} {
				sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
				v, err := r.metricAt(sctx, addr, "hmp_relay_leader", "")
				scancel()
				if err == nil && v == 1 {
					now = append(now, i)
				}
			}
			if len(now) > 1 {
				overlaps++
			}
			if len(now) == 1 && (len(leaders) == 0 || leaders[len(leaders)-1] != now[0]) {
				leaders = append(leaders, now[0])
			}
		}
	}()
	return func() ([]int, int) {
		cancel()
		<-done
		return leaders, overlaps
	}
}
