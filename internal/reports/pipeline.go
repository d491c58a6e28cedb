package reports

import (
	"context"

	"hmp/internal/bus"
	"hmp/internal/eventstore"
)

// PipelineProgress is the event pipeline's Progress: per organization from
// the projector's applied records, and the stream-wide fallback from the
// relay's record (events) and the durable consumer's acknowledgement floor.
func PipelineProgress(applied *AppliedProgress, events *eventstore.Store, b *bus.Bus, durable string) Progress {
	return pipeline{AppliedProgress: applied, events: events, bus: b, durable: durable}
}

type pipeline struct {
	*AppliedProgress
	events  *eventstore.Store
	bus     *bus.Bus
	durable string
}

func (p pipeline) Covered(ctx context.Context) (bool, uint64, error) { return p.events.Covered(ctx) }

func (p pipeline) AckFloor(ctx context.Context) (uint64, error) {
	return p.bus.AckFloor(ctx, bus.EventsStream, p.durable)
}
