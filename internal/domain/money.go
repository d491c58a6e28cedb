package domain

// MaxAmountCents is the largest amount a single transaction or a counted
// cash balance may carry: 10^15 minor units (10 trillion rupees). Alone it
// bounds nothing that is summed: about 9,223 such amounts fill an int64
// (9.22 × 10^18). The sums are bounded by MaxOrgVolumeCents.
const MaxAmountCents int64 = 1_000_000_000_000_000

// MaxOrgVolumeCents bounds the gross volume of an organization: the sum of
// the amounts of every approved or pending state any of its rows ever took
// (a create, an edit and an approval each add the row's amount then; a
// rejection or a deletion adds nothing). A write that would pass it is
// refused (a ValidationError on the amount). The volume is kept in 16
// slots of a sixteenth each, so that writes of one organization do not
// serialize on one counter; a write is refused when no slot has room for
// it, at the latest 16 × MaxAmountCents before the cap.
//
// Why 4 × 10^18 keeps every figure inside int64: every stored flow and every
// report figure (a day's or month's flows, cash plus bank totals, net cash
// flow, an opening balance summed over all earlier months, the same summed
// over every property of the organization, yearly totals) is a sum, with
// signs, of event deltas, each delta counted at most once. An event adds its
// new state's amount and removes its previous state's; the new amount was
// added to the volume by that very write, and the previous amount by the
// earlier write that introduced it. So the absolute values of all the
// deltas of an organization sum to at most 2 × volume = 8 × 10^18, whatever
// subset of its events has been applied and in whatever order; a cash
// count's discrepancy adds at most MaxAmountCents: 8.001 × 10^18 <
// 9.223 × 10^18 = max int64.
const MaxOrgVolumeCents int64 = 4_000_000_000_000_000_000

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
