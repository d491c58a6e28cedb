package app_test

import (
	"testing"
)

// TestBusinessDate: a row's business date is the calendar date of
// occurredAt in its property's time zone, for revenues and expenses alike,
// in the row, in its event and in the list's date filters.
func TestBusinessDate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken
	props := map[string]string{"": f.prop} // "" is the default zone, Asia/Kolkata
	for _, tz := range []string{"Asia/Kolkata", "America/Los_Angeles", "Pacific/Kiritimati", "UTC", "Asia/Kathmandu", "Pacific/Pago_Pago", "Australia/Lord_Howe"} {
		props[tz] = f.env.Property(admin, tz, tz)
	}
	for _, tc := range []struct {
		name       string
		tz         string
		occurredAt string
		want       string
	}{
		// Asia/Kolkata, +05:30 all year: the default.
		{"default zone, a second before midnight", "", "2026-03-10T18:29:59Z", "2026-03-10"},
		{"default zone, midnight", "", "2026-03-10T18:30:00Z", "2026-03-11"},
		{"default zone, early UTC morning", "", "2026-03-10T00:00:00Z", "2026-03-10"},
		{"Kolkata named, midnight", "Asia/Kolkata", "2026-03-10T18:30:00Z", "2026-03-11"},
		{"Kolkata, an offset given in the input", "Asia/Kolkata", "2026-03-11T00:15:00+05:30", "2026-03-11"},
		{"Kolkata, the same instant written in UTC", "Asia/Kolkata", "2026-03-10T18:45:00Z", "2026-03-11"},
		// America/Los_Angeles: -08:00 in winter, -07:00 from 8 March 2026.
		{"Los Angeles winter, a second before midnight", "America/Los_Angeles", "2026-01-15T07:59:59Z", "2026-01-14"},
		{"Los Angeles winter, midnight", "America/Los_Angeles", "2026-01-15T08:00:00Z", "2026-01-15"},
		{"Los Angeles summer, a second before midnight", "America/Los_Angeles", "2026-06-15T06:59:59Z", "2026-06-14"},
		{"Los Angeles summer, midnight", "America/Los_Angeles", "2026-06-15T07:00:00Z", "2026-06-15"},
		{"Los Angeles, the night clocks go forward", "America/Los_Angeles", "2026-03-08T10:30:00Z", "2026-03-08"},
		{"Los Angeles, an Indian offset in the input", "America/Los_Angeles", "2026-03-11T00:15:00+05:30", "2026-03-10"},
		// Pacific/Kiritimati, +14:00: the first new day on Earth.
		{"Kiritimati, a second before midnight", "Pacific/Kiritimati", "2026-03-10T09:59:59Z", "2026-03-10"},
		{"Kiritimati, midnight", "Pacific/Kiritimati", "2026-03-10T10:00:00Z", "2026-03-11"},
		{"Kiritimati, new year while UTC is still in the old one", "Pacific/Kiritimati", "2025-12-31T10:00:00Z", "2026-01-01"},
		// Pacific/Pago_Pago, -11:00: one of the last.
		{"Pago Pago, still yesterday", "Pacific/Pago_Pago", "2026-03-11T10:59:59Z", "2026-03-10"},
		{"Pago Pago, midnight", "Pacific/Pago_Pago", "2026-03-11T11:00:00Z", "2026-03-11"},
		// UTC.
		{"UTC, a second before midnight", "UTC", "2026-03-10T23:59:59Z", "2026-03-10"},
		{"UTC, midnight", "UTC", "2026-03-11T00:00:00Z", "2026-03-11"},
		{"UTC, sub-second before midnight", "UTC", "2026-03-10T23:59:59.999999Z", "2026-03-10"},
		// Asia/Kathmandu, +05:45.
		{"Kathmandu, a second before midnight", "Asia/Kathmandu", "2026-03-10T18:14:59Z", "2026-03-10"},
		{"Kathmandu, midnight", "Asia/Kathmandu", "2026-03-10T18:15:00Z", "2026-03-11"},
		{"Kathmandu, where Kolkata is already past midnight", "Asia/Kathmandu", "2026-03-10T18:20:00Z", "2026-03-11"},
		{"Kathmandu, where Kolkata is not yet past midnight", "Asia/Kathmandu", "2026-03-10T18:14:00Z", "2026-03-10"},
		// Australia/Lord_Howe: +10:30, and +11:00 in summer (half-hour DST).
		{"Lord Howe summer, midnight", "Australia/Lord_Howe", "2026-01-15T13:00:00Z", "2026-01-16"},
		{"Lord Howe winter, midnight", "Australia/Lord_Howe", "2026-06-15T13:30:00Z", "2026-06-16"},
		// Calendar edges.
		{"leap day in India", "", "2024-02-28T18:30:00Z", "2024-02-29"},
		{"the day after a leap day in India", "", "2024-02-29T18:30:00Z", "2024-03-01"},
		{"the first instant accepted", "UTC", "2000-01-01T00:00:00Z", "2000-01-01"},
		{"exactly a year ahead, evening in Kiritimati", "Pacific/Kiritimati", "2027-06-15T06:30:00Z", "2027-06-15"},
	} {
		for _, kind := range []string{"revenue", "expense"} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				f := f.in(t)
				prop := props[tc.tz]
				b := txn(prop, 100)
				b.OccurredAt = tc.occurredAt
				r := create(f.env, admin, kind, b)
				if r.BusinessDate != tc.want {
					t.Fatalf("businessDate of %s in %q = %s, want %s", tc.occurredAt, tc.tz, r.BusinessDate, tc.want)
				}
				if ev := lastEvent(f.env, admin, r.ID); ev.Metadata.BusinessDate != tc.want || len(ev.Metadata.AffectedReportDates) != 1 || ev.Metadata.AffectedReportDates[0] != tc.want {
					t.Fatalf("event metadata %s, want businessDate %s", ev.RawMetadata, tc.want)
				}
				in := list(f.env, admin, kind, "propertyId="+prop+"&startDate="+tc.want+"&endDate="+tc.want)
				found := false
				for _, x := range in {
					found = found || x.ID == r.ID
				}
				if !found {
					t.Fatalf("the list of %s does not show the row", tc.want)
				}
			})
		}
	}
}
