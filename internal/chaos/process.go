package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"hmp/internal/postgres"
)

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cluster is the embedded PostgreSQL cluster of the hmp data dir, driven
// from outside the hmp process as an operator (or a crash) would.
type cluster struct {
	pgdata string
	pgctl  string
	cred   *syscall.Credential // the postgres user when running as root
}

func newCluster(dataDir, binDir string) (*cluster, error) {
	pgctl := filepath.Join(binDir, "pg_ctl")
	if _, err := os.Stat(pgctl); err != nil {
		return nil, fmt.Errorf("pg_ctl: %w", err)
	}
	cred, err := postgres.ServerUser()
	if err != nil {
		return nil, fmt.Errorf("running as root, pg_ctl must run as the postgres user: %w", err)
	}
	return &cluster{pgdata: filepath.Join(dataDir, "postgres", "pgdata"), pgctl: pgctl, cred: cred}, nil
}

// pgCtl runs pg_ctl with args on the cluster as the server's user.
func (c *cluster) pgCtl(ctx context.Context, args ...string) error {
	args = append([]string{"-D", c.pgdata}, args...)
	cmd := exec.CommandContext(ctx, c.pgctl, args...)
	cmd.Dir = filepath.Dir(c.pgdata)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", strings.Join(args[2:], " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// restart stops the server in mode (fast or immediate) and starts it again
// with the options it ran with (pg_ctl reads them from postmaster.opts).
func (c *cluster) restart(ctx context.Context, mode string) error {
	return c.pgCtl(ctx, "restart", "-m", mode, "-w", "-t", "120", "-l", filepath.Join(c.pgdata, "pg_ctl.log"))
}

// postmaster returns the pid of the running server; 0 when none runs.
func (c *cluster) postmaster() int {
	b, err := os.ReadFile(filepath.Join(c.pgdata, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// processes returns the postmaster and every child of it.
func (c *cluster) processes() []int {
	pm := c.postmaster()
	if pm == 0 {
		return nil
	}
	pids := []int{pm}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pm) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// signal sends sig to every process of the server.
func (c *cluster) signal(pids []int, sig syscall.Signal) error {
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("signal %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// stopIfRunning stops a server left running (one pg_ctl restarted is no
// child of hmp, so stopping hmp leaves it up).
func (c *cluster) stopIfRunning(ctx context.Context) error {
	if c.postmaster() == 0 {
		return nil
	}
	return c.pgCtl(ctx, "stop", "-m", "fast", "-w", "-t", "120")
}
