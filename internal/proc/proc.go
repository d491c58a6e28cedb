// Package proc runs the helper processes that a chaos run and the HA
// topology start (hmp serve, nats-server, etcd, Patroni): each one's
// output goes to a log file, and it dies with the process that started it.
package proc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Process is one child process. Set the exported fields, then Start it;
// a Process is started once.
type Process struct {
	// Name names it in errors ("hmp serve", "etcd").
	Name string
	// Args is the command line, the program first.
	Args []string
	// Dir is the working directory; empty: this process's.
	Dir string
	// Log is the file its standard output and error are appended to.
	Log string
	// Cred is the user it runs as; nil: this process's.
	Cred *syscall.Credential

	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts the process in a process group of its own.
func (p *Process) Start() error {
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", p.Name, err)
	}
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = f, f
	// The parent-death signal stops the child (gracefully: Patroni stops
	// its PostgreSQL) if this process dies without cleaning up; it fires
	// when the forking thread exits, so the fork happens on a locked
	// thread.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM, Credential: p.Cred}
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(exited)
	}()
	return nil
}

// Pid is the process id; only for a started process.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the started process has exited and been waited for.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running reports whether the process was started and has not exited.
func (p *Process) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Failed reports whether the process exited unsuccessfully.
func (p *Process) Failed() bool {
	return p.cmd != nil && !p.Running() && p.cmd.ProcessState != nil && !p.cmd.ProcessState.Success()
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop asks the process to stop (SIGTERM), waits up to grace, then kills
// it.
func (p *Process) Stop(grace time.Duration) {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// LogTail is the end of the log, for error messages.
func (p *Process) LogTail() string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return strings.TrimSpace(string(b))
}

// WaitHTTP polls url until it answers 200, the process exits or within
// passes.
func (p *Process) WaitHTTP(ctx context.Context, url string, within time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	return p.wait(ctx, within, "ready", true, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// WaitTCP polls addr until it accepts a connection, the process exits or
// within passes.
func (p *Process) WaitTCP(ctx context.Context, addr string, within time.Duration) error {
	return p.wait(ctx, within, "listening", false, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}

// wait polls up every 50 ms; its errors say the process is not what
// (with the log's tail when tail is set) within the deadline.
func (p *Process) wait(ctx context.Context, within time.Duration, what string, tail bool, up func() bool) error {
	deadline := time.Now().Add(within)
	for {
		if up() {
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("%s exited at start: %s", p.Name, p.LogTail())
		}
		if time.Now().After(deadline) {
			if tail {
				return fmt.Errorf("%s not %s within %s: %s", p.Name, what, within, p.LogTail())
			}
			return fmt.Errorf("%s not %s within %s", p.Name, what, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
