package domain

import (
	"fmt"
	"strconv"
	"strings"
)

// Token is a consistency token: a position in the write order, handed out
// with every successful write. A read presenting it reflects that write and
// every write committed before it. On the wire it is opaque ("c1.<n>").
type Token struct {
	// TxID is the id of the writing PostgreSQL transaction.
	TxID uint64
}

const tokenPrefix = "c1."

// String returns the wire form.
func (t Token) String() string { return tokenPrefix + strconv.FormatUint(t.TxID, 10) }

// ParseToken parses the wire form.
func ParseToken(s string) (Token, error) {
	n, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return Token{}, fmt.Errorf("not a consistency token: %q", s)
	}
	id, err := strconv.ParseUint(n, 10, 64)
	if err != nil || id == 0 {
		return Token{}, fmt.Errorf("not a consistency token: %q", s)
	}
	return Token{TxID: id}, nil
}
