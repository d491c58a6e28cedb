package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"time"

	"github.com/jackc/pgx/v5"
)

// StartStandby makes a streaming replica of the running local cluster
// primary in dir (`pg_basebackup -R`: a copy of the primary that then
// follows its write-ahead log), starts it on a free loopback port as the
// same user as the primary and waits until it accepts reads. The standby
// has the primary's databases, superuser and password. For tests and
// measurements; Stop (or Kill) it before the primary, then DropSlot.
//
// The standby streams through a physical replication slot created (with
// its WAL reserved) before the backup starts: pg_basebackup's own
// temporary slot is only made after the backup's checkpoint, so a
// checkpoint in between (a busy primary, CREATE DATABASE) could recycle
// the segment the backup starts in ("requested WAL segment ... has
// already been removed"), and a standby without a slot can fall behind
// the primary's recycling the same way.
func StartStandby(ctx context.Context, primary *Local, dir string) (l *Local, err error) {
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
	slot, err := createSlot(ctx, primary.url)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = dropSlot(context.WithoutCancel(ctx), primary.url, slot)
		}
	}()
	// -S with -R also names the slot in the standby's primary_slot_name.
	cmd := exec.CommandContext(ctx, filepath.Join(primary.cfg.BinDir, "pg_basebackup"),
		"-D", pgdata, "-R", "-X", "stream", "-S", slot, "--no-sync", "--checkpoint=fast",
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
	l = &Local{cfg: cfg, done: make(chan struct{}), slot: slot, primaryURL: primary.url}
	u := *pu
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l.url = u.String()
	if err := l.start(ctx, port, cred); err != nil {
		return nil, fmt.Errorf("start standby: %w", err)
	}
	return l, nil
}

// DropSlot drops a stopped (or killed) standby's replication slot on the
// primary, which otherwise keeps the primary's WAL from then on. It waits
// (up to ctx) for the primary to notice the standby is gone; it does
// nothing for a cluster that is no standby or whose slot is dropped.
func (l *Local) DropSlot(ctx context.Context) error {
	if l.slot == "" {
		return nil
	}
	if err := dropSlot(ctx, l.primaryURL, l.slot); err != nil {
		return err
	}
	l.slot = ""
	return nil
}

// createSlot creates a physical replication slot on the primary at url
// that reserves WAL from now on, and returns its name.
func createSlot(ctx context.Context, url string) (string, error) {
	var buf [6]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("standby slot name: %w", err)
	}
	slot := "hmp_standby_" + hex.EncodeToString(buf[:])
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", fmt.Errorf("standby slot: connect to the primary: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", slot); err != nil {
		return "", fmt.Errorf("standby slot: create %s: %w", slot, err)
	}
	return slot, nil
}

// dropSlot drops slot on the primary at url, waiting while a walsender
// still holds it (the primary notices a stopped standby shortly after).
func dropSlot(ctx context.Context, url, slot string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("standby slot: connect to the primary: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var dropped bool
		err := conn.QueryRow(ctx, `SELECT coalesce((SELECT NOT active FROM pg_replication_slots WHERE slot_name = $1), true)`, slot).Scan(&dropped)
		if err != nil {
			return fmt.Errorf("standby slot %s: %w", slot, err)
		}
		if dropped { // inactive, or gone already
			_, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, slot)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("drop standby slot %s: %w", slot, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop standby slot %s: still in use: %w", slot, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
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

// Freeze stops the server and every process it started with SIGSTOP, as
// a hung machine or a partition would look: connections are accepted by
// the kernel and never answered. Thaw resumes them. For tests.
func (l *Local) Freeze() { l.signalAll(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (l *Local) Thaw() { l.signalAll(syscall.SIGCONT) }

func (l *Local) signalAll(sig syscall.Signal) {
	if l.attached || l.cmd == nil {
		return
	}
	pid := l.cmd.Process.Pid
	_ = syscall.Kill(pid, sig)
	for _, c := range childrenOf(pid) {
		_ = syscall.Kill(c, sig)
	}
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
