// Package connlimit bounds the connections a listener holds open.
//
// Under a flood every served connection costs the process a goroutine,
// its buffers and the CPU of reading and refusing each request it sends,
// CPU taken from the admitted work. Past the bound, one connection is
// taken from the kernel and waits for a place, and the rest wait in the
// kernel's accept queue, which costs the process nothing, until one
// closes. Unlike golang.org/x/net/netutil.LimitListener it says when a
// connection waits, so that the edge can close a refused client's
// connection, and it closes connections idle for IdleGrace while one
// waits: keep-alive would otherwise let the first clients hold every place.
package connlimit

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// IdleGrace is how long a connection may stay idle while another waits for
// its place. Long enough that a client sending its next request is not cut
// off between two requests; short enough that a waiting client is served
// within about twice it.
const IdleGrace = time.Second

// Limit is the bound of one listener.
type Limit struct {
	sem     chan struct{}
	done    chan struct{}
	once    sync.Once
	waiting atomic.Int32

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// New bounds a listener to n open connections; n ≤ 0: unbounded.
func New(n int) *Limit {
	l := &Limit{done: make(chan struct{}), conns: map[*conn]struct{}{}}
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

// Waiting reports whether an accepted connection waits for a place (the
// listener is full and more clients want in). Safe on a nil Limit.
func (l *Limit) Waiting() bool {
	return l != nil && l.waiting.Load() > 0
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
	go l.reap()
	return &listener{Listener: ln, l: l}
}

// ConnState is the http.Server's hook: it notes when a connection goes
// idle between requests.
func (l *Limit) ConnState(c net.Conn, st http.ConnState) {
	cc, ok := c.(*conn)
	if !ok {
		return
	}
	switch st {
	case http.StateIdle:
		cc.idleSince.Store(time.Now().UnixNano())
	case http.StateActive:
		cc.idleSince.Store(0)
	}
}

// connKey is the context key of a request's connection (ConnContext).
type connKey struct{}

// ConnContext is the http.Server's hook that lets Overstayed find a
// request's connection.
func (l *Limit) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*conn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

// Overstayed reports whether the connection of a request (ctx from a
// server with ConnContext) should give its place up after this answer:
// another client waits for one, and this connection has held its place
// for longer than IdleGrace. Busy keep-alive connections would otherwise
// keep every place through a flood while the others wait it out; letting
// each go after a second keeps the reconnects (and their cost) to about
// one per place and second. Safe on a nil Limit.
func (l *Limit) Overstayed(ctx context.Context) bool {
	if !l.Waiting() {
		return false
	}
	cc, ok := ctx.Value(connKey{}).(*conn)
	return ok && time.Since(cc.accepted) > IdleGrace
}

// reap closes, while a connection waits for a place, those idle for
// longer than IdleGrace, until the listener closes.
func (l *Limit) reap() {
	tick := time.NewTicker(IdleGrace / 2)
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-tick.C:
		}
		if !l.Waiting() {
			continue
		}
		before := time.Now().Add(-IdleGrace).UnixNano()
		l.mu.Lock()
		var idle []*conn
		for c := range l.conns {
			if t := c.idleSince.Load(); t != 0 && t < before {
				idle = append(idle, c)
			}
		}
		l.mu.Unlock()
		for _, c := range idle {
			_ = c.Close()
		}
	}
}

type listener struct {
	net.Listener
	l *Limit
}

// Accept takes the next connection from the kernel, then waits for a
// place (so that Waiting can tell), before the server reads from it.
func (ln *listener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ln.l.waiting.Add(1)
	defer ln.l.waiting.Add(-1)
	select {
	case ln.l.sem <- struct{}{}:
	case <-ln.l.done:
		_ = c.Close()
		return nil, net.ErrClosed
	}
	cc := &conn{Conn: c, l: ln.l, accepted: time.Now()}
	ln.l.mu.Lock()
	ln.l.conns[cc] = struct{}{}
	ln.l.mu.Unlock()
	return cc, nil
}

// Close also ends an Accept that waits for a place.
func (ln *listener) Close() error {
	ln.l.once.Do(func() { close(ln.l.done) })
	return ln.Listener.Close()
}

type conn struct {
	net.Conn
	l         *Limit
	accepted  time.Time // when it got its place
	once      sync.Once
	idleSince atomic.Int64 // unix nanoseconds; 0: working or new
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.sem
	})
	return err
}
