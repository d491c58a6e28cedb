package config

import (
	"fmt"

	"hmp/internal/knobs"
	"hmp/internal/settings"
)

// ProfileSettings returns the live settings of a named profile.
func ProfileSettings(name string) (settings.Settings, error) {
	if _, ok := Profiles()[name]; !ok {
		return settings.Settings{}, fmt.Errorf("%w %q (known: baseline, phase1, phase2, phase3)", settings.ErrUnknownProfile, name)
	}
	s := Config{Profile: name}.WithDefaults().rawSettings()
	s.Modified = []string{}
	return s, nil
}

// Settings returns the live settings of a configuration (defaults
// filled), naming the knobs it sets apart from its profile.
func (cfg Config) Settings() settings.Settings {
	s := cfg.rawSettings()
	s.Modified = []string{}
	if p, err := ProfileSettings(cfg.Profile); err == nil {
		s.Modified = settings.Diff(p, s)
	}
	return s
}

func (cfg Config) rawSettings() settings.Settings {
	k := cfg.Knobs()
	k.Cache.Entries = max(k.Cache.Entries, 1)
	// The configured value (HMP_REPLICA_READS, else the profile's, as
	// WithDefaults resolved it): the live knob starts where the router
	// does, or applying the seed would switch the reads back off.
	k.ReplicaReads = cfg.ReplicaReads == "on"
	k.RateLimits = knobs.RateLimits{
		WritesPerUser: cfg.RateLimits.WritesPerUser.Live(),
		WritesPerOrg:  cfg.RateLimits.WritesPerOrg.Live(),
	}
	return settings.Settings{Profile: cfg.Profile, Knobs: k}
}
