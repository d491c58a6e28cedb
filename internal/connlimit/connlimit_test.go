package connlimit

import (
	"errors"
	"io"
	"net"
	"net/http"
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
	if l.Waiting() {
		t.Fatal("Waiting with no second client")
	}
	dial()
	select {
	case <-accepted:
		t.Fatal("a second connection was accepted while the only place was taken")
	case <-time.After(200 * time.Millisecond):
	}
	if !l.Waiting() {
		t.Fatal("a second client waits, Waiting says no")
	}
	first.Close()
	first.Close() // twice frees one place only
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting connection was not accepted after the first closed")
	}
	if l.Open() != 1 || l.Waiting() {
		t.Fatalf("Open %d, Waiting %v after one closed twice and one accepted; want 1, false", l.Open(), l.Waiting())
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
	if l.Listener(raw) != raw || l.Full() || (*Limit)(nil).Full() || (*Limit)(nil).Waiting() {
		t.Fatal("an unbounded limit wraps its listener or says it is full")
	}
}

// TestIdleGivesWay: a keep-alive connection idle past IdleGrace is closed
// while another client waits for its place, and the waiting one is served.
func TestIdleGivesWay(t *testing.T) {
	l := New(1)
	url := "http://" + serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })) + "/"

	first := &http.Client{Transport: &http.Transport{}}
	defer first.CloseIdleConnections()
	get(t, first, url) // its connection stays open, idle
	second := &http.Client{Transport: &http.Transport{}, Timeout: 10 * IdleGrace}
	defer second.CloseIdleConnections()
	start := time.Now()
	get(t, second, url)
	if waited := time.Since(start); waited < IdleGrace/2 {
		t.Fatalf("the second client was served after %v, with the only place held by an idle connection for less than IdleGrace", waited)
	}
}

// serve serves h on a loopback listener bounded by l, wired as the API's
// server is (ConnState, ConnContext), until the test ends; it returns the
// listener's address.
func serve(t *testing.T, l *Limit, h http.Handler) string {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnState: l.ConnState, ConnContext: l.ConnContext}
	go func() { _ = srv.Serve(l.Listener(raw)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return raw.Addr().String()
}

func get(t *testing.T, c *http.Client, url string) {
	t.Helper()
	r, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if b, _ := io.ReadAll(r.Body); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
}

// TestOverstayed: a busy keep-alive connection is told to give its place
// up only once another client waits and it has held the place for longer
// than IdleGrace.
func TestOverstayed(t *testing.T) {
	l := New(1)
	addr := serve(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.Overstayed(r.Context()) {
			_, _ = io.WriteString(w, "go")
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	url := "http://" + addr + "/"
	first := &http.Client{Transport: &http.Transport{}}
	defer first.CloseIdleConnections()
	answer := func() string {
		r, err := first.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	if a := answer(); a != "ok" {
		t.Fatalf("alone: %q, want ok", a)
	}
	waiting, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	for !l.Waiting() {
		time.Sleep(5 * time.Millisecond)
	}
	if a := answer(); a != "ok" {
		t.Fatalf("a client waits, the place held for less than IdleGrace: %q, want ok", a)
	}
	// Busy, not idle: the reaper leaves it; past IdleGrace it must yield.
	deadline := time.Now().Add(IdleGrace + time.Second)
	for time.Now().Before(deadline) {
		if answer() == "go" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("a connection holding the only place past IdleGrace while a client waits was not told to give it up")
}
