package domain

// MaxAmountCents is the largest amount a single transaction or a counted
// cash balance may carry: 10^15 minor units (10 trillion rupees), far from
// int64 overflow even when a million of them are summed.
const MaxAmountCents int64 = 1_000_000_000_000_000

// Currency is an ISO 4217 code. Properties default to INR.
const DefaultCurrency = "INR"

// PaymentMode says how money moved. Only cash changes the cash balance.
type PaymentMode string

const (
	Cash PaymentMode = "cash"
	Bank PaymentMode = "bank"
)

// Valid reports whether m is a known payment mode.
func (m PaymentMode) Valid() bool { return m == Cash || m == Bank }
