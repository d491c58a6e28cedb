package proc_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"hmp/internal/proc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, script string) *proc.Process {
	t.Helper()
	p := &proc.Process{Name: "sh", Args: []string{"sh", "-c", script}, Log: filepath.Join(t.TempDir(), "sh.log")}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func exited(t *testing.T, p *proc.Process) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("the process did not exit")
	}
}

// TestExitAndLog: the output goes to the log, and the exit status tells
// success from failure.
func TestExitAndLog(t *testing.T) {
	ok := start(t, "echo hello from the child; exit 0")
	exited(t, ok)
	if ok.Running() || ok.Failed() || ok.LogTail() != "hello from the child" {
		t.Fatalf("running %v, failed %v, log %q; want an exited success that logged its line", ok.Running(), ok.Failed(), ok.LogTail())
	}
	bad := start(t, "echo broken >&2; exit 3")
	exited(t, bad)
	if !bad.Failed() || bad.LogTail() != "broken" {
		t.Fatalf("failed %v, log %q; want a failure with its standard error logged", bad.Failed(), bad.LogTail())
	}
}

// TestStopKillsWhatIgnoresTerm: Stop asks, waits its grace, then kills.
func TestStopKillsWhatIgnoresTerm(t *testing.T) {
	p := start(t, "trap '' TERM; echo ready; while :; do sleep 0.05; done")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.LogTail(), "ready"); {
		if time.Now().After(deadline) {
			t.Fatal("the child never got ready")
		}
		time.Sleep(10 * time.Millisecond) // the trap is set once it printed
	}
	began := time.Now()
	p.Stop(200 * time.Millisecond)
	if p.Running() {
		t.Fatal("still running after Stop")
	}
	if waited := time.Since(began); waited < 200*time.Millisecond {
		t.Fatalf("stopped after %s: a process that ignores SIGTERM must get its grace first", waited)
	}
}

// TestWaitTCP: the wait ends when the address accepts, and says so (with
// the log) when the process dies first.
func TestWaitTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	alive := start(t, "sleep 30")
	if err := alive.WaitTCP(context.Background(), l.Addr().String(), 5*time.Second); err != nil {
		t.Fatalf("wait for a listening address: %v", err)
	}
	dead := start(t, "echo no config; exit 1")
	exited(t, dead)
	err = dead.WaitTCP(context.Background(), "127.0.0.1:1", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited at start") || !strings.Contains(err.Error(), "no config") {
		t.Fatalf("err = %v, want the process's exit with its log", err)
	}
}
