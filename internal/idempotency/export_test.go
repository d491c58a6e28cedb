package idempotency

// CountSQL is the gauge's statement, for the test of its plan.
const CountSQL = countSQL
