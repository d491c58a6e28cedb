package config_test

import (
	"strings"
	"testing"

	"hmp/internal/config"
)

// Replica reads follow the profile unless set: configured replicas are
// read in every profile but baseline (the rollback), "off" wins.
func TestReplicaReadsSetting(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ profile, set, want string }{
		{"", "", "on"}, {"phase1", "", "on"}, {"baseline", "", "off"}, {"phase2", "", "on"}, {"phase3", "", "on"},
		{"phase2", "off", "off"}, {"phase1", "off", "off"}, {"baseline", "on", "on"},
	} {
		cfg := config.Config{Profile: c.profile, ReplicaReads: c.set, ReplicaURLs: []string{"postgres://hmp@replica:5433/hmp"}}.WithDefaults()
		if cfg.ReplicaReads != c.want || cfg.Replicas.Disabled != (c.want == "off") || len(cfg.Replicas.URLs) != 1 {
			t.Errorf("profile %s, reads %q: got %q (disabled %v)", c.profile, c.set, cfg.ReplicaReads, cfg.Replicas.Disabled)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("profile %s, reads %q: %v", c.profile, c.set, err)
		}
	}
	bad := config.Config{ReplicaReads: "sometimes", ReplicaURLs: []string{"postgres://hmp:secret@replica:notaport/hmp"}}.WithDefaults()
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "replica reads") || !strings.Contains(err.Error(), "replica url 1") {
		t.Fatalf("Validate = %v, want the setting and the url named", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("Validate echoes the password: %v", err)
	}
}

// Alert settings are checked at start, every problem at once.
func TestAlertConfigValidate(t *testing.T) {
	t.Parallel()
	cfg := config.Config{AlertWebhookURL: "ftp://hooks.example", AlertEmailTo: "ops@example.test"}
	cfg.Alerts.Thresholds.BusErrorRate = 5
	err := cfg.WithDefaults().Validate()
	for _, want := range []string{"webhook url", "smtp url", "bus error rate"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation error %v does not name %q", err, want)
		}
	}
	ok := config.Config{AlertWebhookURL: "https://hooks.example/T/B/x", AlertSMTPURL: "smtp://u:p@mail.example:587", AlertEmailTo: "ops@example.test"}
	if err := ok.WithDefaults().Validate(); err != nil {
		t.Errorf("valid alert settings refused: %v", err)
	}
}

// A split role names everything it lacks at once; role all needs nothing
// shared.
func TestSplitRoleNeedsSharedParts(t *testing.T) {
	t.Parallel()
	if err := (config.Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("role all with defaults refused: %v", err)
	}
	err := config.Config{Role: config.RoleReports}.WithDefaults().Validate()
	for _, want := range []string{"database URL", "NATS URL", "token secret"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("role reports without shared parts: %v, want %q named", err, want)
		}
	}
	if err := (config.Config{Role: "everything"}).WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), `"everything"`) {
		t.Errorf("unknown role: %v", err)
	}
}

// A schema created now gets the configured partition count, else the
// profile's, else 16; a negative count is the unpartitioned layout.
func TestPartitionCount(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		profile    string
		partitions int
		want       int
	}{{"phase1", 0, 16}, {"phase2", 0, 64}, {"phase3", 0, 64}, {"phase2", 8, 8}, {"phase1", -1, 0}} {
		if got := (config.Config{Profile: c.profile, Partitions: c.partitions}).PartitionCount(); got != c.want {
			t.Errorf("profile %s, partitions %d: %d, want %d", c.profile, c.partitions, got, c.want)
		}
	}
}

// The live settings of a configuration name exactly the knobs it sets
// apart from its profile.
func TestSettingsNameModifiedKnobs(t *testing.T) {
	t.Parallel()
	if s := (config.Config{Profile: "phase1"}).WithDefaults().Settings(); len(s.Modified) != 0 {
		t.Errorf("phase1 as is: modified %v, want none", s.Modified)
	}
	cfg := config.Config{Profile: "phase1"}
	cfg.Projector.Projector.BatchSize = 7
	s := cfg.WithDefaults().Settings()
	if s.Projector.BatchSize != 7 || len(s.Modified) != 1 {
		t.Errorf("batch size 7 on phase1: batch %d, modified %v, want 7 and one knob", s.Projector.BatchSize, s.Modified)
	}
	if _, err := config.ProfileSettings("phase9"); err == nil {
		t.Error("an unknown profile has settings")
	}
}
