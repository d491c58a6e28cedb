// Package connlimit bounds the connections a listener holds open.
//
// Under a flood every accepted connection costs the process a goroutine,
// its buffers and the CPU of reading and refusing each request it sends,
// CPU taken from the admitted work. Connections past the bound wait in the
// kernel's accept queue instead, which costs the process nothing, until one
// closes. Unlike golang.org/x/net/netutil.LimitListener it says when it is
// full, so that the edge can close a refused client's connection and give
// its place to one that waits (keep-alive would otherwise let the first
// clients hold every place).
package connlimit

import (
	"net"
	"sync"
)

// Limit is the bound of one listener.
type Limit struct {
	sem  chan struct{}
	done chan struct{}
	once sync.Once
}

// New bounds a listener to n open connections; n ≤ 0: unbounded.
func New(n int) *Limit {
	l := &Limit{done: make(chan struct{})}
	if n > 0 {
		l.sem = make(chan struct{}, n)
	}
	return l
}

// Full reports whether every place is taken (never, unbounded). Safe on
// a nil Limit.
func (l *Limit) Full() bool {
	return l != nil && l.sem != nil && len(l.sem) == cap(l.sem)
}

// Open is the number of connections held now (0 when unbounded).
func (l *Limit) Open() int {
	if l == nil || l.sem == nil {
		return 0
	}
	return len(l.sem)
}

// Listener wraps ln so that Accept waits for a free place.
func (l *Limit) Listener(ln net.Listener) net.Listener {
	if l.sem == nil {
		return ln
	}
	return &listener{Listener: ln, l: l}
}

type listener struct {
	net.Listener
	l *Limit
}

func (ln *listener) Accept() (net.Conn, error) {
	select {
	case ln.l.sem <- struct{}{}:
	case <-ln.l.done:
		return nil, net.ErrClosed
	}
	c, err := ln.Listener.Accept()
	if err != nil {
		<-ln.l.sem
		return nil, err
	}
	return &conn{Conn: c, release: func() { <-ln.l.sem }}, nil
}

// Close also ends an Accept that waits for a place.
func (ln *listener) Close() error {
	ln.l.once.Do(func() { close(ln.l.done) })
	return ln.Listener.Close()
}

type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
