package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A server left behind by a process that died without stopping it (kill -9
// of hmp, an OOM kill) keeps postmaster.pid while it runs or shuts down, and
// a new server on the same folder then refuses to start ("lock file
// already exists"). The start takes such an orphan over: it stops it and
// waits for it to go, bounded, then starts its own.
const (
	// orphanWait bounds the wait for a previous server to go: a fast
	// shutdown writes a checkpoint, which can take a while on a busy
	// cluster.
	orphanWait = 90 * time.Second
	// orphanQuitAfter is when a fast shutdown that has not finished is
	// turned into an immediate one (crash recovery at the next start,
	// nothing committed lost), and orphanKillAfter when the server's
	// whole process group is killed.
	orphanQuitAfter = 45 * time.Second
	orphanKillAfter = 75 * time.Second
	// ownerFile records the process that started the server (pid and
	// start time, so a reused pid is not taken for it).
	ownerFile = "postmaster.owner"
)

// settleRunning deals with a server already running on cfg.Dir: it returns
// an attached Local when a live process (another hmp) owns it and it
// answers; it stops a server whose owner is gone and waits until it has
// exited; it waits, bounded, for one that is starting or stopping under a
// live owner. A nil Local and nil error mean: start a server.
func settleRunning(ctx context.Context, cfg LocalConfig, password string) (*Local, error) {
	start := time.Now()
	var stopping int // the orphan's pid once signalled
	quit, killed := false, false
	for {
		pid, port, ok := runningPostmaster(cfg.Dir)
		if !ok {
			if stopping != 0 {
				cfg.Logger.Info("local_postgres_orphan_stopped", "pid", stopping, "waited", time.Since(start).Round(time.Millisecond).String())
			}
			return nil, nil
		}
		if orphaned(cfg.Dir, pid) {
			elapsed := time.Since(start)
			switch {
			case stopping != pid:
				// It has usually had SIGINT already (the parent-death
				// signal); a server started by pg_ctl has not.
				cfg.Logger.Warn("local_postgres_orphan", "pid", pid, "action", "fast shutdown, then start")
				stopping = pid
				_ = syscall.Kill(pid, syscall.SIGINT)
			case elapsed > orphanKillAfter && !killed:
				killed = true
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			case elapsed > orphanQuitAfter && !quit:
				quit = true
				_ = syscall.Kill(pid, syscall.SIGQUIT)
			}
		} else if l, ok := attachRunning(ctx, cfg, password, port); ok {
			return l, nil
		}
		if time.Since(start) > orphanWait {
			return nil, fmt.Errorf("local cluster: a PostgreSQL server (pid %d) still holds %s after %s and does not answer", pid, filepath.Join(cfg.Dir, "pgdata"), orphanWait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runningPostmaster returns the pid and port of the live server that
// postmaster.pid names; ok is false when there is none (no file, or a stale
// one the next server starts over).
func runningPostmaster(dir string) (pid, port int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, "pgdata", "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		// Being written by a server that is starting: its pid is there.
		pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
		return pid, 0, err == nil && pid > 0 && alive(pid)
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, 0, false
	}
	return pid, port, alive(pid)
}

// alive reports whether pid is a running process (a zombie is not).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	state, _, ok := procStat(pid)
	return !ok || state != "Z"
}

// orphaned reports whether the process that started the server of dir is
// gone. Without an owner record (a server started by an older hmp), a
// server adopted by init is taken as orphaned.
func orphaned(dir string, pid int) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return parentOf(pid) == 1
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return parentOf(pid) == 1
	}
	owner, err := strconv.Atoi(f[0])
	if err != nil {
		return true
	}
	if owner == os.Getpid() {
		return false
	}
	_, started, ok := procStat(owner)
	return !ok || started != f[1] || !alive(owner)
}

// writeOwner records this process as the one that started the server.
func writeOwner(dir string) error {
	_, started, ok := procStat(os.Getpid())
	if !ok {
		return errors.New("read own process start time")
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+" "+started+"\n"), 0o644)
}

func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := statFields(string(b))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// procStat returns a process's state letter and start time (clock ticks
// since boot) from /proc; ok is false when they cannot be read.
func procStat(pid int) (state, started string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", "", false
	}
	f := statFields(string(b))
	if len(f) < 20 {
		return "", "", false
	}
	return f[0], f[19], true
}

// statFields are the fields of /proc/PID/stat after the command name (which
// may hold spaces): field 3 (state) first.
func statFields(s string) []string {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}
