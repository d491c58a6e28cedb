// Package redistest runs a throwaway redis-server for a test on a free
// loopback port. A missing redis-server fails the test: tests never skip.
package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"
)

// Server is a redis-server the test started.
type Server struct {
	// Addr is host:port; URL is the redis:// URL of database 0.
	Addr, URL string
	cmd       *exec.Cmd
}

// Start runs a redis-server without persistence, killed at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server (it must be installed): %v", err)
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	s.URL = "redis://" + s.Addr + "/0"
	t.Cleanup(s.Kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			s.Kill()
			t.Fatalf("redis-server did not listen on %s: %v", s.Addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL). Safe twice.
func (s *Server) Kill() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}
