package domain

import "strings"

// StorableText reports whether s can be kept as text: PostgreSQL refuses
// the NUL character (U+0000) in text values, so input holding one is
// invalid rather than a storage failure.
func StorableText(s string) bool { return strings.IndexByte(s, 0) < 0 }
