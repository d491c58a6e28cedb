package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// Token is a consistency token: a position in the write order, handed out
// with every successful write. A read presenting it reflects that write and
// every write committed before it. On the wire it is opaque: "c1.<txid>",
// or "c2.<txid>.<lsn>" when the write's commit position in the primary's
// write-ahead log is known (read replicas are in use).
type Token struct {
	// TxID is the id of the writing PostgreSQL transaction.
	TxID uint64
	// LSN is a write-ahead log position at or past the write's commit
	// record on the primary: a replica that has replayed it holds the
	// write. 0: unknown (a "c1" token); the read then relies on the
	// primary's position once the wait is over.
	LSN uint64
}

const (
	tokenPrefix   = "c1."
	tokenPrefixV2 = "c2."
)

// String returns the wire form.
func (t Token) String() string {
	if t.LSN == 0 {
		return tokenPrefix + strconv.FormatUint(t.TxID, 10)
	}
	return tokenPrefixV2 + strconv.FormatUint(t.TxID, 10) + "." + strconv.FormatUint(t.LSN, 10)
}

// ParseToken parses the wire form (both versions).
func ParseToken(s string) (Token, error) {
	bad := fmt.Errorf("not a consistency token: %q", s)
	if n, ok := strings.CutPrefix(s, tokenPrefix); ok {
		id, err := parsePositive(n)
		if err != nil {
			return Token{}, bad
		}
		return Token{TxID: id}, nil
	}
	rest, ok := strings.CutPrefix(s, tokenPrefixV2)
	if !ok {
		return Token{}, bad
	}
	tx, lsn, ok := strings.Cut(rest, ".")
	if !ok {
		return Token{}, bad
	}
	id, err1 := parsePositive(tx)
	pos, err2 := parsePositive(lsn)
	if err1 != nil || err2 != nil {
		return Token{}, bad
	}
	return Token{TxID: id, LSN: pos}, nil
}

// parsePositive parses a canonical decimal above zero (no sign, no
// leading zeros), so that every token has one wire form.
func parsePositive(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("not a positive decimal: %q", s)
	}
	return n, nil
}
