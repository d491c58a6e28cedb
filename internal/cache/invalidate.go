package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"hmp/internal/domain"
)

// Change is one committed change: the reports of Property on From and
// every later date are stale since At (the commit, on the committing
// instance's clock).
type Change struct {
	OrgID      domain.ID   `json:"org"`
	PropertyID domain.ID   `json:"property"`
	From       domain.Date `json:"from"`
	At         time.Time   `json:"at"`
}

// announcement is what travels on the bus.
type announcement struct {
	Origin  string   `json:"origin"`
	Changes []Change `json:"changes"`
}

// Apply makes the entries the changes stale in every tier this instance
// reads. Idempotent: applying a change twice changes nothing.
func (c *Cache) Apply(changes []Change) {
	if c == nil {
		return
	}
	now := time.Now()
	for _, ch := range changes {
		c.marks.add(ch.PropertyID, ch.From, ch.At)
		c.m.invalidations.Inc()
		c.m.lag.Observe(max(now.Sub(ch.At), 0).Seconds())
	}
}

// Publisher is the part of a NATS connection the cache announces on.
type Publisher interface {
	Publish(subject string, data []byte) error
}

// Committed is called by the projector after a batch's commit, before its
// acknowledgement, with the earliest changed date per property. In sync
// mode it applies them here first; in both modes it announces them to
// every instance (async mode applies them on receipt, this instance
// included). nc may be nil (a single instance without a bus).
func (c *Cache) Committed(ctx context.Context, nc Publisher, changes []Change) {
	if c == nil || len(changes) == 0 {
		return
	}
	at := time.Now()
	for i := range changes {
		if changes[i].At.IsZero() {
			changes[i].At = at
		}
	}
	if c.invalidation() == ModeSync || nc == nil {
		c.Apply(changes)
	}
	if nc == nil {
		return
	}
	if err := announce(nc, c.cfg.Subject, c.origin, changes); err != nil {
		// Lost: other instances serve what they hold until its TTL.
		c.logger.Warn("cache_announce_failed", "error", err.Error())
	}
}

// Announce publishes committed changes on subject to every instance's
// cache, as a projector commit does, from a process that has no cache of
// its own (`hmp reconcile --fix` beside running servers). Changes without
// At are stamped now: call it after the commit.
func Announce(nc Publisher, subject string, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	at := time.Now()
	for i := range changes {
		if changes[i].At.IsZero() {
			changes[i].At = at
		}
	}
	// No origin: every instance applies it, whatever its mode.
	return announce(nc, subject, "", changes)
}

func announce(nc Publisher, subject, origin string, changes []Change) error {
	b, err := json.Marshal(announcement{Origin: origin, Changes: changes})
	if err != nil {
		return fmt.Errorf("announce changes: %w", err)
	}
	if err := nc.Publish(subject, b); err != nil {
		return fmt.Errorf("announce changes: %w", err)
	}
	return nil
}

// subscription is a running listener for announcements.
type subscription struct {
	sub *nats.Subscription
}

// Start listens for announcements on nc and prunes old watermarks until
// Stop. Entries computed before it started are never served: this
// instance may have missed the changes that made them stale. It watches
// the connection too: after a reconnect, everything computed before it is
// distrusted. Safe to call twice.
func (c *Cache) Start(ctx context.Context, nc *nats.Conn) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		return nil
	}
	var err error
	c.sub.sub, err = nc.Subscribe(c.cfg.Subject, func(m *nats.Msg) {
		var a announcement
		if err := json.Unmarshal(m.Data, &a); err != nil {
			c.logger.Warn("cache_announcement_malformed", "error", err.Error())
			return
		}
		if a.Origin == c.origin && c.invalidation() == ModeSync {
			return // applied before the commit was acknowledged
		}
		if c.cfg.ApplyDelay > 0 {
			time.AfterFunc(c.cfg.ApplyDelay, func() { c.Apply(a.Changes) })
			return
		}
		c.Apply(a.Changes)
	})
	if err != nil {
		return fmt.Errorf("cache subscribe: %w", err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		_ = c.sub.sub.Unsubscribe()
		return fmt.Errorf("cache subscribe: %w", err)
	}
	c.trustFrom.Store(time.Now().Add(c.cfg.ClockSkew).UnixNano())
	ctx, c.stop = context.WithCancel(context.WithoutCancel(ctx))
	c.done = make(chan struct{})
	go c.watch(ctx, nc)
	return nil
}

// watch prunes watermarks no live entry can predate, and distrusts every
// entry computed before a reconnect of the bus connection.
func (c *Cache) watch(ctx context.Context, nc *nats.Conn) {
	defer close(c.done)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	reconnects := nc.Stats().Reconnects
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if r := nc.Stats().Reconnects; r != reconnects || !nc.IsConnected() {
				reconnects = r
				c.trustFrom.Store(now.Add(c.cfg.ClockSkew).UnixNano())
			}
			if now.Sub(lastPrune) > time.Minute {
				lastPrune = now
				c.marks.prune(now.Add(-c.cfg.maxTTL() - 2*c.cfg.ClockSkew - time.Second))
			}
		}
	}
}

// Stop ends the listener. Safe to call twice.
func (c *Cache) Stop() {
	if c == nil {
		return
	}
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop = nil
	sub := c.sub.sub
	c.sub.sub = nil
	c.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	if stop != nil {
		stop()
		<-done
	}
}
