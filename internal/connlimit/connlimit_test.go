package connlimit

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestLimit: a second connection is accepted only once the first closes;
// Close ends an Accept that waits for a place.
func TestLimit(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(1)
	ln := l.Listener(raw)
	accepted := make(chan net.Conn, 2)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-accepted
	if !l.Full() || l.Open() != 1 {
		t.Fatalf("one connection of one: Full %v, Open %d", l.Full(), l.Open())
	}
	dial()
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted while the only place was taken")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	first.Close() // twice frees one place only
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not accepted after the first closed")
	}
	if l.Open() != 1 {
		t.Fatalf("Open %d after one closed twice and one accepted, want 1", l.Open())
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the waiting Accept")
	}
}

func TestUnbounded(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	l := New(-1)
	if l.Listener(raw) != raw || l.Full() || (*Limit)(nil).Full() {
		t.Fatal("an unbounded limit wraps its listener or says it is full")
	}
}
