// Package domain holds the vocabulary every other HMP package shares: money,
// business dates, roles, statuses, event types and the error model. It
// performs no I/O and imports only the standard library.
package domain
