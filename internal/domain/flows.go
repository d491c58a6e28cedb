package domain

// Flows are the money movements of one property over a day (or a month),
// split by approval state, payment mode and direction, in minor units. It
// is both what the transactions of a day add up to (finance's truth) and
// what the reports projection stores for it, so the two compare field by
// field.
type Flows struct {
	CashReceived, BankReceived, CashExpenses, BankExpenses                             int64
	PendingCashReceived, PendingBankReceived, PendingCashExpenses, PendingBankExpenses int64
	ApprovedCount, PendingCount                                                        int64
}

// Add adds o times sign (+1 or -1) to f.
func (f *Flows) Add(o Flows, sign int64) {
	f.CashReceived += sign * o.CashReceived
	f.BankReceived += sign * o.BankReceived
	f.CashExpenses += sign * o.CashExpenses
	f.BankExpenses += sign * o.BankExpenses
	f.PendingCashReceived += sign * o.PendingCashReceived
	f.PendingBankReceived += sign * o.PendingBankReceived
	f.PendingCashExpenses += sign * o.PendingCashExpenses
	f.PendingBankExpenses += sign * o.PendingBankExpenses
	f.ApprovedCount += sign * o.ApprovedCount
	f.PendingCount += sign * o.PendingCount
}

// IsZero reports whether f moves nothing.
func (f Flows) IsZero() bool { return f == Flows{} }

// View returns the flows a report shows: approved only, or approved plus
// pending.
func (f Flows) View(includePending bool) (cashIn, bankIn, cashOut, bankOut, count int64) {
	cashIn, bankIn, cashOut, bankOut, count = f.CashReceived, f.BankReceived, f.CashExpenses, f.BankExpenses, f.ApprovedCount
	if includePending {
		cashIn += f.PendingCashReceived
		bankIn += f.PendingBankReceived
		cashOut += f.PendingCashExpenses
		bankOut += f.PendingBankExpenses
		count += f.PendingCount
	}
	return
}

// DayFlows are the flows of one property's business date.
type DayFlows struct {
	OrgID, PropertyID ID
	Date              Date
	Flows
}
