package replicas

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"hmp/internal/postgres"
)

// discover brings the discovered replicas up to date before a check: the
// standbys among the primary URL's hosts (as Hosts last probed them) and
// Patroni's streaming replicas. A member no longer listed (promoted,
// removed, down in Patroni's eyes) is dropped and its pool closed; a new
// one gets a pool and counts as down until measured. When Patroni does
// not answer, the members found before are kept (each check still
// measures them).
func (r *Router) discover(ctx context.Context) {
	if r.cfg.Hosts == nil && r.cfg.PatroniURL == "" {
		return
	}
	r.dmu.Lock()
	defer r.dmu.Unlock()
	old := *r.reps.Load()
	want := map[string]bool{}
	if r.cfg.Hosts != nil {
		for _, m := range r.cfg.Hosts.Members() {
			if m.Role == postgres.RoleStandby {
				want[m.Addr] = true
			}
		}
	}
	if r.cfg.PatroniURL != "" {
		addrs, err := r.patroniReplicas(ctx)
		if err != nil {
			r.logger.Warn("replica_discovery_failed", "source", "patroni", "error", err.Error())
			for _, rep := range old {
				if rep.addr != "" {
					want[rep.addr] = true
				}
			}
		}
		for _, a := range addrs {
			want[a] = true
		}
	}
	for _, rep := range r.static {
		delete(want, rep.label) // configured already
	}
	next := slices.Clone(r.static)
	var gone []*replica
	for _, rep := range old {
		switch {
		case rep.addr == "":
		case want[rep.addr]:
			next = append(next, rep)
			delete(want, rep.addr)
		default:
			gone = append(gone, rep)
		}
	}
	added := make([]string, 0, len(want))
	for a := range want {
		added = append(added, a)
	}
	slices.Sort(added)
	for _, a := range added {
		pool, err := r.cfg.Hosts.OpenMember(ctx, a, r.cfg.Pool)
		if err != nil {
			r.logger.Warn("replica_discovery_failed", "replica", a, "error", err.Error())
			continue
		}
		r.found++
		rep := &replica{name: "discovered-" + strconv.Itoa(r.found), label: a, addr: a, pool: pool, state: Down}
		r.m.healthy.WithLabelValues(a).Set(0)
		next = append(next, rep)
		r.logger.Info("replica_discovered", "replica", a)
	}
	if len(added) == 0 && len(gone) == 0 {
		return
	}
	r.reps.Store(&next)
	for _, rep := range gone {
		r.logger.Info("replica_gone", "replica", rep.label)
		r.m.healthy.WithLabelValues(rep.label).Set(0)
		rep.pool.Close() // reads still on it finish first; new ones no longer see it
	}
}

// patroniReplicas asks Patroni's GET /cluster for the members that serve
// as streaming replicas now.
func (r *Router) patroniReplicas(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(r.cfg.PatroniURL, "/")+"/cluster", nil)
	if err != nil {
		return nil, fmt.Errorf("patroni request: %w", err)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("patroni cluster: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("patroni cluster: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("patroni cluster: %w", err)
	}
	return ParsePatroniCluster(body)
}

// patroniCluster is the part of Patroni's GET /cluster answer used here.
type patroniCluster struct {
	Members []struct {
		Name  string         `json:"name"`
		Role  string         `json:"role"`
		State string         `json:"state"`
		Host  string         `json:"host"`
		Port  int            `json:"port"`
		Tags  map[string]any `json:"tags"`
	} `json:"members"`
}

// ParsePatroniCluster returns host:port of every member of a Patroni GET
// /cluster answer that reads may use: role replica, sync_standby or
// quorum_standby, state streaming (or running, older Patroni), and no
// noloadbalance tag. The leader, a standby_leader, stopped, starting or
// rebuilding members are left out: the router's checks still measure the
// lag of those it keeps.
func ParsePatroniCluster(body []byte) ([]string, error) {
	var c patroniCluster
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("patroni cluster: %w", err)
	}
	var out []string
	for _, m := range c.Members {
		switch m.Role {
		case "replica", "sync_standby", "quorum_standby":
		default:
			continue
		}
		if m.State != "streaming" && m.State != "running" {
			continue
		}
		if v, ok := m.Tags["noloadbalance"]; ok && v != false {
			continue
		}
		if m.Host == "" || m.Port <= 0 || m.Port > 65535 {
			continue
		}
		out = append(out, net.JoinHostPort(m.Host, strconv.Itoa(m.Port)))
	}
	return out, nil
}
