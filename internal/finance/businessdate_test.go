package finance_test

import (
	"testing"
	"time"

	"hmp/internal/domain"
	"hmp/internal/finance"
)

// TestBusinessDate: a row's business date is the calendar date of
// occurredAt in its property's time zone, for revenues and expenses alike,
// in the row, in its event and in the list's date filters.
func TestBusinessDate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	props := map[string]domain.ID{"": f.prop} // "" is the default zone, Asia/Kolkata
	for _, tz := range []string{"Asia/Kolkata", "America/Los_Angeles", "Pacific/Kiritimati", "UTC", "Asia/Kathmandu", "Pacific/Pago_Pago", "Australia/Lord_Howe"} {
		props[tz] = f.property(t, tz, tz)
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
		for _, kind := range kinds {
			t.Run(string(kind)+"/"+tc.name, func(t *testing.T) {
				prop := props[tc.tz]
				at, err := time.Parse(time.RFC3339Nano, tc.occurredAt)
				if err != nil {
					t.Fatal(err)
				}
				want := domain.MustDate(tc.want)
				in := input(kind, prop, 100)
				in.OccurredAt = at
				r := f.create(t, f.admin, kind, in)
				if r.BusinessDate != want {
					t.Fatalf("businessDate of %s in %q = %s, want %s", tc.occurredAt, tc.tz, r.BusinessDate, want)
				}
				md := metadata(t, f.lastEvent(t, domain.EntityType(kind), r.ID))
				if md.BusinessDate != want || len(md.AffectedReportDates) != 1 || md.AffectedReportDates[0] != want {
					t.Fatalf("event metadata %+v, want businessDate %s", md, want)
				}
				in2, _, err := f.fin.List(t.Context(), f.admin, kind, finance.ListFilter{PropertyID: prop, StartDate: want, EndDate: want, Limit: 500})
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, x := range in2 {
					found = found || x.ID == r.ID
				}
				if !found {
					t.Fatalf("the list of %s does not show the row", want)
				}
			})
		}
	}
}
