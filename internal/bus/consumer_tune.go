package bus

// Retuned returns a stopped consumer like c (same durable, handler, logger
// and metrics) with cfg's settings: stop c, start it, and the durable
// consumer on the server is updated in place (MaxAckPending, AckWait) and
// goes on from where c left off.
func (c *Consumer) Retuned(cfg ConsumerConfig) *Consumer {
	cfg.Durable = c.cfg.Durable
	return &Consumer{bus: c.bus, cfg: cfg.WithDefaults(), handle: c.handle, logger: c.logger, m: c.m}
}
