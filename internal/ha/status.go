package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Member is one node as Patroni's REST API (GET /cluster) reports it.
type Member struct {
	Name string `json:"name"`
	// Role: leader, sync_standby or replica.
	Role string `json:"role"`
	// State: running, streaming, starting, stopped, ...
	State    string `json:"state"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Timeline int    `json:"timeline"`
}

// Members asks any node that answers for the cluster's view of itself.
func (c *Cluster) Members(ctx context.Context) ([]Member, error) {
	var errs []error
	for _, n := range c.nodes {
		ms, err := n.members(ctx)
		if err == nil {
			return ms, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (n *Node) members(ctx context.Context) ([]Member, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(n.APIPort)+"/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ha: %s /cluster: %w", n.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ha: %s /cluster: status %d", n.Name, resp.StatusCode)
	}
	var out struct {
		Members []Member `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("ha: %s /cluster: %w", n.Name, err)
	}
	return out.Members, nil
}

// Leader returns the node that Patroni names leader and whose server
// accepts writes; an error while there is none.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	ms, err := c.Members(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.Role != "leader" && m.Role != "master" {
			continue
		}
		for _, n := range c.nodes {
			if n.Name != m.Name {
				continue
			}
			var recovering bool
			if err := c.query(ctx, n, "SELECT pg_is_in_recovery()", &recovering); err != nil {
				return nil, err
			}
			if recovering {
				return nil, fmt.Errorf("ha: leader %s is still in recovery", n.Name)
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("ha: no leader among %+v", ms)
}

// waitLeader waits until a leader accepts writes.
func (c *Cluster) waitLeader(ctx context.Context) (*Node, error) {
	for {
		n, err := c.Leader(ctx)
		if err == nil {
			return n, nil
		}
		if err := c.exitedAtStart(); err != nil {
			return nil, err
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			return nil, fmt.Errorf("ha: no leader: %w (%v)", ctx.Err(), err)
		}
	}
}

// exitedAtStart reports a node whose Patroni died by itself.
func (c *Cluster) exitedAtStart() error {
	for _, n := range c.nodes {
		n.mu.Lock()
		p := n.patroni
		n.mu.Unlock()
		if p != nil && p.Failed() {
			return fmt.Errorf("ha: %s exited: %s", p.Name, p.LogTail())
		}
	}
	return nil
}

// WaitHealthy waits until a leader accepts writes and a standby streams
// from it, synchronous unless the topology is asynchronous, and has
// replayed to within 1 MB (Patroni's maximum_lag_on_failover: a standby
// further behind may not be promoted), as pg_stat_replication on the
// leader says; it returns the leader.
func (c *Cluster) WaitHealthy(ctx context.Context) (*Node, error) {
	want := "sync"
	if c.async.Load() {
		want = "async"
	}
	var last error
	var since time.Time // when the topology was first seen healthy
	for {
		n, err := c.Leader(ctx)
		if err == nil {
			var streaming int
			err = c.query(ctx, n, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = '"+want+"' AND pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) < 1048576", &streaming)
			if err == nil && streaming > 0 {
				err = c.standbyReady(ctx, n)
			} else if err == nil {
				err = fmt.Errorf("ha: leader %s has no %s standby streaming", n.Name, want)
			}
			if err == nil {
				// Patroni must also have finished its own start (a node
				// "restarting after failure" streams already but is not
				// yet eligible for promotion): its view held for a loop.
				if since.IsZero() {
					since = time.Now()
				}
				if time.Since(since) > time.Duration(c.cfg.LoopWait+1)*time.Second {
					return n, nil
				}
			} else {
				since = time.Time{}
			}
		}
		last = err
		if err := c.exitedAtStart(); err != nil {
			return nil, err
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			return nil, fmt.Errorf("ha: not healthy: %w (%v)", ctx.Err(), last)
		}
	}
}

// query runs one single-value query on a node's postgres database.
func (c *Cluster) query(ctx context.Context, n *Node, sql string, dest any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.NodeURL(n, "postgres"))
	if err != nil {
		return fmt.Errorf("ha: connect to %s: %w", n.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, sql).Scan(dest); err != nil {
		return fmt.Errorf("ha: %s: %w", n.Name, err)
	}
	return nil
}

// createDatabase creates the application's database on the leader.
func (c *Cluster) createDatabase(ctx context.Context, leader *Node) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.NodeURL(leader, "postgres"))
	if err != nil {
		return fmt.Errorf("ha: connect to %s: %w", leader.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{c.cfg.Database}.Sanitize()); err != nil {
		return fmt.Errorf("ha: create database %s: %w", c.cfg.Database, err)
	}
	return nil
}

// SetSynchronous switches Patroni's synchronous_mode in the DCS (PATCH
// /config, as `patronictl edit-config` does) and waits until the
// leader's standby replicates in that mode.
func (c *Cluster) SetSynchronous(ctx context.Context, on bool) error {
	leader, err := c.Leader(ctx)
	if err != nil {
		return err
	}
	body := `{"synchronous_mode": false}`
	if on {
		body = `{"synchronous_mode": true}`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, "http://127.0.0.1:"+strconv.Itoa(leader.APIPort)+"/config", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ha: patch config: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ha: patch config: status %d", resp.StatusCode)
	}
	c.async.Store(!on)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err = c.WaitHealthy(ctx)
	return err
}

// standbyReady checks Patroni's view of the standby: a member other than
// the leader, running, in the synchronous role when the mode is.
func (c *Cluster) standbyReady(ctx context.Context, leader *Node) error {
	ms, err := c.Members(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Name == leader.Name || (m.State != "running" && m.State != "streaming") {
			continue
		}
		if m.Role == "sync_standby" || (c.async.Load() && m.Role == "replica") {
			return nil
		}
	}
	return fmt.Errorf("ha: Patroni names no ready standby: %+v", ms)
}
