package reports

import "hmp/internal/domain"

// AddEvent folds one stored event (its Sequence set) with the projector's
// own effect rules: what a rebuild of the projection from the event store
// uses.
func (f *Fold) AddEvent(ev domain.Event) error {
	chs, err := changes(ev)
	if err != nil {
		return err
	}
	f.add(chs)
	return nil
}
