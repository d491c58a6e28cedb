package ha

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sleep waits d, or returns ctx.Err() when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// descendants returns root and every process below it, from /proc.
func descendants(root int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ppid, ok := procStat(pid); ok && st != 'Z' {
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// procStat returns a process's state letter and parent pid.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil || f[0] == "" {
		return 0, 0, false
	}
	return f[0][0], ppid, true
}

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	st, _, ok := procStat(pid)
	return ok && st != 'Z'
}

// reap waits, by pid only (os/exec's children are not ours to take), for
// processes that were orphaned to this subreaper once they exit: a pid
// that is gone, or reaped, is done; one still alive, or not yet
// reparented, is retried until within passes.
func reap(pids []int, within time.Duration) error {
	deadline := time.Now().Add(within)
	left := pids
	for len(left) > 0 {
		var next []int
		for _, pid := range left {
			var ws unix.WaitStatus
			got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			switch {
			case got == pid:
			case errors.Is(err, unix.ECHILD) && !exists(pid):
			default:
				next = append(next, pid)
			}
		}
		left = next
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ha: processes %v still there after %s", left, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// postmasterPID reads the server's pid from its data folder; 0 when none
// runs (a zombie does not).
func postmasterPID(dataDir string) int {
	pid := pidFile(dataDir)
	if pid == 0 || !alive(pid) {
		return 0
	}
	return pid
}

// pidFile is the pid in the data folder's postmaster.pid, whatever its
// state; 0 when there is none.
func pidFile(dataDir string) int {
	b, err := os.ReadFile(dataDir + "/postmaster.pid")
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
