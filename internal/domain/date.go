package domain

import (
	"fmt"
	"time"
)

// DefaultTimezone is the zone of a property created without one.
const DefaultTimezone = "Asia/Kolkata"

// Date is a calendar date without a zone: a business date, a report day.
// The zero value is not a valid date.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateLayout is the wire format of a Date.
const DateLayout = "2006-01-02"

// BusinessDate is the one rule for dating money: the calendar date of t in
// the property's zone.
func BusinessDate(t time.Time, loc *time.Location) Date {
	return DateOf(t.In(loc))
}

// DateOf returns the calendar date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate parses YYYY-MM-DD and rejects dates that do not exist
// (2026-02-30) instead of normalizing them.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return Date{}, fmt.Errorf("not a date in YYYY-MM-DD form: %q", s)
	}
	return DateOf(t), nil
}

// MustDate parses s and panics on error; for tests and constants only.
func MustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Time returns midnight UTC of d, the form the database driver stores.
func (d Date) Time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// String formats d as YYYY-MM-DD.
func (d Date) String() string { return string(d.Append(make([]byte, 0, 10))) }

// Append appends d formatted as String does to b (without fmt: report
// keys and bodies format dates on every read).
func (d Date) Append(b []byte) []byte {
	if d.Year < 0 || d.Year > 9999 || d.Month < 0 || d.Month > 99 || d.Day < 0 || d.Day > 99 {
		return fmt.Appendf(b, "%04d-%02d-%02d", d.Year, d.Month, d.Day)
	}
	y, m := d.Year, int(d.Month)
	return append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d.Day/10), byte('0'+d.Day%10))
}

// AddDays returns d moved by n calendar days.
func (d Date) AddDays(n int) Date { return DateOf(d.Time().AddDate(0, 0, n)) }

// Before reports whether d is earlier than o.
func (d Date) Before(o Date) bool { return d.Compare(o) < 0 }

// After reports whether d is later than o.
func (d Date) After(o Date) bool { return d.Compare(o) > 0 }

// Compare returns -1, 0 or +1.
func (d Date) Compare(o Date) int {
	switch {
	case d.Year != o.Year:
		return sign(d.Year - o.Year)
	case d.Month != o.Month:
		return sign(int(d.Month) - int(o.Month))
	default:
		return sign(d.Day - o.Day)
	}
}

// MonthStart returns the first day of d's month.
func (d Date) MonthStart() Date { return Date{d.Year, d.Month, 1} }

// DaysInMonth returns the number of days of the given month.
func DaysInMonth(year int, month time.Month) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// DaysBetween returns the number of days from a to b (b-a).
func DaysBetween(a, b Date) int { return int(b.Time().Sub(a.Time()).Hours() / 24) }

// MarshalText implements encoding.TextMarshaler.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// zeroDateText is how MarshalText writes the zero Date.
const zeroDateText = "0000-00-00"

// UnmarshalText implements encoding.TextUnmarshaler. It reads back what
// MarshalText writes, the zero Date included ("0000-00-00", which ParseDate
// refuses as input), so that a decoded and re-encoded state decodes again.
func (d *Date) UnmarshalText(b []byte) error {
	if string(b) == zeroDateText {
		*d = Date{}
		return nil
	}
	p, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// CheckOccurredAt enforces the accepted window for occurredAt: from
// 2000-01-01 to one year after now.
func CheckOccurredAt(t, now time.Time) error {
	if t.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		return fmt.Errorf("must not be before 2000-01-01")
	}
	if t.After(now.AddDate(1, 0, 0)) {
		return fmt.Errorf("must not be more than one year in the future")
	}
	return nil
}

// CheckReportDate enforces the same window for a calendar date given
// directly (report days, cash counts).
func CheckReportDate(d, today Date) error {
	if d.Before(Date{2000, 1, 1}) {
		return fmt.Errorf("must not be before 2000-01-01")
	}
	if d.After(DateOf(today.Time().AddDate(1, 0, 0))) {
		return fmt.Errorf("must not be more than one year in the future")
	}
	return nil
}
