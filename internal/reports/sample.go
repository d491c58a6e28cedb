package reports

import "hmp/internal/domain"

// Sampler is offered the key (organization, property, date) of each
// daily report read, for a drift check of the projection against the
// truth (reconcile.Detector.Sample). It must return at once: the check
// runs elsewhere, never in the read's latency.
type Sampler func(org, property domain.ID, date domain.Date)

// SetSampler installs fn (nil: no sampling, the default). Call it before
// the service serves reads.
func (s *Service) SetSampler(fn Sampler) { s.sampler = fn }

// sample offers a served read to the sampler, if any.
func (s *Service) sample(org, property domain.ID, date domain.Date) {
	if s.sampler != nil {
		s.sampler(org, property, date)
	}
}
