// Package cachetest starts a throwaway redis-server for tests.
package cachetest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Redis is a running redis-server on a free loopback port.
type Redis struct {
	// URL is redis://127.0.0.1:<port>/0.
	URL  string
	Addr string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server (no persistence) for the test and stops
// it at cleanup. A missing binary fails the test.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is required: %v", err)
	}
	port := freePort(tb)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", tb.TempDir())
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	r.URL = "redis://" + r.Addr + "/0"
	tb.Cleanup(r.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if r.ping() == nil {
			return r
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("redis-server on %s did not answer PING", r.Addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop kills the server and waits for it. Safe to call twice.
func (r *Redis) Stop() {
	if r.cmd.Process == nil || r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
