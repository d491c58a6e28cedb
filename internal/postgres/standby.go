package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// StartStandby makes a streaming replica of the running local cluster
// primary in dir (`pg_basebackup -R`: a copy of the primary that then
// follows its write-ahead log), starts it on a free loopback port as the
// same user as the primary and waits until it accepts reads. The standby
// has the primary's databases, superuser and password. For tests and
// measurements; Stop (or Kill) it before the primary.
func StartStandby(ctx context.Context, primary *Local, dir string) (*Local, error) {
	if primary.attached {
		return nil, errors.New("standby: the primary is not run by this process")
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("standby dir: %w", err)
	}
	pgdata := filepath.Join(dir, "pgdata")
	if err := os.MkdirAll(pgdata, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", pgdata, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("standby dir: %w", err)
	}
	if cred != nil {
		if err := os.Chown(pgdata, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("hand %s to the postgres user: %w", pgdata, err)
		}
	}
	pu, err := url.Parse(primary.url)
	if err != nil {
		return nil, fmt.Errorf("primary url: %w", err)
	}
	password, _ := pu.User.Password()
	cmd := exec.CommandContext(ctx, filepath.Join(primary.cfg.BinDir, "pg_basebackup"),
		"-D", pgdata, "-R", "-X", "stream", "--no-sync", "--checkpoint=fast",
		"-h", pu.Hostname(), "-p", pu.Port(), "-U", pu.User.Username())
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pg_basebackup: %w: %s", err, strings.TrimSpace(out.String()))
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := primary.cfg
	cfg.Dir, cfg.Port = dir, port
	l := &Local{cfg: cfg, done: make(chan struct{})}
	u := *pu
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l.url = u.String()
	if err := l.start(ctx, port, cred); err != nil {
		return nil, fmt.Errorf("start standby: %w", err)
	}
	return l, nil
}

// Kill ends the server and every process it started with SIGKILL, as a
// crash of the machine would, and waits for the server: nothing is shut
// down cleanly, and open connections break. (Backends put themselves in
// their own sessions, so they are found by parent, not by group.) A later
// Stop does nothing more.
func (l *Local) Kill() {
	if l.attached || l.cmd == nil {
		return
	}
	pid := l.cmd.Process.Pid
	children := childrenOf(pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	<-l.done
	l.stopOnce.Do(func() {})
}

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so parse
		// after its closing parenthesis.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		if f := strings.Fields(rest); len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// Addr is the host:port the cluster listens on.
func (l *Local) Addr() string {
	u, err := url.Parse(l.url)
	if err != nil {
		return ""
	}
	return u.Host
}
