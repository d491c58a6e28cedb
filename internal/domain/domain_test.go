package domain

import (
	"strings"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		ok   bool
		want Date
	}{
		{"2026-02-28", true, Date{2026, 2, 28}},
		{"2024-02-29", true, Date{2024, 2, 29}},
		{"2026-02-29", false, Date{}}, // not a leap year: rejected, not normalized
		{"2026-02-30", false, Date{}},
		{"2026-13-01", false, Date{}},
		{"2026-1-01", false, Date{}},
		{"", false, Date{}},
		{"2026-11-26T00:00:00Z", false, Date{}},
	} {
		got, err := ParseDate(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDate(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestBusinessDate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		zone string
		want string
	}{
		{"Asia/Kolkata", "2026-11-26"},        // 01:30 next day
		{"America/Los_Angeles", "2026-11-25"}, // 12:00
		{"Pacific/Kiritimati", "2026-11-26"},  // +14
		{"Asia/Kathmandu", "2026-11-26"},      // +05:45 -> 01:45
		{"UTC", "2026-11-25"},
	} {
		loc, err := time.LoadLocation(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := BusinessDate(at, loc).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.zone, got, tc.want)
		}
	}
}

func TestDateArithmetic(t *testing.T) {
	t.Parallel()
	d := Date{2024, 2, 28}
	if got := d.AddDays(1); got != (Date{2024, 2, 29}) {
		t.Errorf("AddDays(1) = %v", got)
	}
	if got := d.AddDays(2); got != (Date{2024, 3, 1}) {
		t.Errorf("AddDays(2) = %v", got)
	}
	if got := DaysBetween(Date{2025, 12, 31}, Date{2026, 12, 31}); got != 365 {
		t.Errorf("DaysBetween = %d", got)
	}
	if DaysInMonth(2024, 2) != 29 || DaysInMonth(2026, 2) != 28 || DaysInMonth(2026, 12) != 31 {
		t.Error("DaysInMonth")
	}
	if !(Date{2026, 1, 31}).Before(Date{2026, 2, 1}) || (Date{2026, 2, 1}).Compare(Date{2026, 2, 1}) != 0 {
		t.Error("Compare")
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	a, b := NewID(now), NewID(now)
	if a == b {
		t.Fatal("two new ids are equal")
	}
	s := a.String()
	if len(s) != 36 || s[14] != '7' || !strings.ContainsRune("89ab", rune(s[19])) {
		t.Errorf("not a version 7 RFC 4122 UUID: %s", s)
	}
	back, err := ParseID(s)
	if err != nil || back != a {
		t.Errorf("ParseID(%s) = %v, %v", s, back, err)
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("0", 36), "01a21778-dbdc-7a51-bc0a-b4938ce71a2", "01a21778+dbdc-7a51-bc0a-b4938ce71a2a"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	ns := NewID(now)
	x1, x2, y := NameID(ns, "x"), NameID(ns, "x"), NameID(ns, "y")
	if x1 != x2 || x1 == y || x1.String()[14] != '5' {
		t.Error("NameID is not a deterministic version 5 UUID")
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	for _, tok := range []Token{{TxID: 738}, {TxID: 738, LSN: 0x16B374D848}} {
		back, err := ParseToken(tok.String())
		if err != nil || back != tok {
			t.Fatalf("ParseToken(%s) = %v, %v", tok, back, err)
		}
	}
	if tok, err := ParseToken("c2.5.97528416328"); err != nil || tok != (Token{TxID: 5, LSN: 97528416328}) {
		t.Errorf("ParseToken(c2.5.97528416328) = %v, %v", tok, err)
	}
	for _, bad := range []string{"", "738", "c1.", "c1.0", "c1.-1", "c2.5", "c2.5.", "c2..7", "c2.5.0", "c2.0.7", "c2.5.7.1",
		"c2.5.+7", "c1.007", "c1.18446744073709551616", "c2.5.18446744073709551616"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted", bad)
		}
	}
}

func TestCheckOccurredAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{now.AddDate(1, 0, 0), true},
		{now.AddDate(1, 0, 0).Add(time.Second), false},
	} {
		if err := CheckOccurredAt(tc.at, now); (err == nil) != tc.ok {
			t.Errorf("CheckOccurredAt(%s) = %v, want ok=%v", tc.at, err, tc.ok)
		}
	}
}
