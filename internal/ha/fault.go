package ha

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// processes returns a node's Patroni pid (0 when it is not running) and
// every other process of the node: its postmaster (from postmaster.pid,
// also when orphaned) and the server's children.
func (c *Cluster) processes(n *Node) (patroni int, rest []int) {
	n.mu.Lock()
	p := n.patroni
	n.mu.Unlock()
	seen := map[int]bool{}
	if p != nil && p.Running() {
		patroni = p.Pid()
		seen[patroni] = true
		for _, pid := range descendants(patroni)[1:] {
			seen[pid] = true
			rest = append(rest, pid)
		}
	}
	if pm := postmasterPID(filepath.Join(n.dir, "data")); pm != 0 {
		for _, pid := range descendants(pm) {
			if !seen[pid] {
				seen[pid] = true
				rest = append(rest, pid)
			}
		}
	}
	return patroni, rest
}

// Kill crashes a node as a host loss would: SIGKILL to its Patroni, its
// postmaster and the server's processes at once, then waits until they
// are gone (reaping the orphans). Restart brings the node back.
func (c *Cluster) Kill(n *Node) error {
	return c.killTree(n, 10*time.Second)
}

// killTree kills a node's processes; within bounds the wait for them (0:
// the default of 10 s).
func (c *Cluster) killTree(n *Node, within time.Duration) error {
	if within == 0 {
		within = 10 * time.Second
	}
	patroni, rest := c.processes(n)
	var errs []error
	for _, pid := range append([]int{patroni}, rest...) {
		if pid == 0 {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("ha: kill %d: %w", pid, err))
		}
	}
	n.mu.Lock()
	p := n.patroni
	n.frozen = nil
	n.mu.Unlock()
	if p != nil && patroni != 0 {
		<-p.Exited()
	}
	if err := reap(rest, within); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Restart starts a killed node's Patroni again; it starts its server as
// a standby of the current leader (rewound if it diverged).
func (c *Cluster) Restart(n *Node) error {
	n.mu.Lock()
	p := n.patroni
	n.mu.Unlock()
	if p != nil && p.Running() {
		return fmt.Errorf("ha: %s is running", n.Name)
	}
	return c.startPatroni(n)
}

// Freeze stops a node as a hung host or a partition would look from
// outside: SIGSTOP to its Patroni and every server process (connections
// stay open, nothing answers). Thaw resumes them.
func (c *Cluster) Freeze(n *Node) error {
	patroni, rest := c.processes(n)
	pids := rest
	if patroni != 0 {
		pids = append([]int{patroni}, rest...)
	}
	if len(pids) == 0 {
		return fmt.Errorf("ha: %s has no process to freeze", n.Name)
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("ha: stop %d: %w", pid, err))
		}
	}
	n.mu.Lock()
	n.frozen = append(n.frozen, pids...)
	n.mu.Unlock()
	return errors.Join(errs...)
}

// Thaw resumes what Freeze stopped (SIGCONT); nothing when nothing is
// frozen.
func (c *Cluster) Thaw(n *Node) {
	n.mu.Lock()
	pids := n.frozen
	n.frozen = nil
	n.mu.Unlock()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
}

// reapPostmasters runs until ctx ends, reaping the nodes' postmasters
// once they exit: Patroni starts its server detached, so the postmaster
// is this subreaper's child from the start, and Patroni waits for a
// stopped one to vanish, which a zombie never does (it would hang a
// demotion or a stop). Only pids read from postmaster.pid whose parent
// is this process are waited for.
func (c *Cluster) reapPostmasters(ctx context.Context) {
	known := map[int]bool{}
	self := os.Getpid()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		for _, n := range c.nodes {
			if pid := pidFile(filepath.Join(n.dir, "data")); pid != 0 && !known[pid] {
				if _, ppid, ok := procStat(pid); ok && ppid == self {
					known[pid] = true
				}
			}
		}
		for pid := range known {
			var ws unix.WaitStatus
			got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			if got == pid || (errors.Is(err, unix.ECHILD) && !exists(pid)) {
				delete(known, pid)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
