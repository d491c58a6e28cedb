package domain

import (
	"crypto/rand"
	"crypto/sha1"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// ID identifies every entity: a UUID. New IDs are version 7 (time ordered),
// so they index well. The zero ID means "none".
type ID [16]byte

// NewID returns a version 7 UUID for time now.
func NewID(now time.Time) ID {
	var id ID
	_, _ = rand.Read(id[6:]) // crypto/rand.Read never fails (Go 1.24+)
	ms := uint64(now.UnixMilli())
	binary.BigEndian.PutUint16(id[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(id[2:6], uint32(ms))
	id[6] = id[6]&0x0f | 0x70 // version 7
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// ParseID parses the canonical 36-character form.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("not a UUID: %q", s)
	}
	src := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(src)); err != nil {
		return ID{}, fmt.Errorf("not a UUID: %q", s)
	}
	return id, nil
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// String returns the canonical lower-case form.
func (id ID) String() string {
	var b [36]byte
	return string(id.Append(b[:0]))
}

// Append appends the canonical form of id to b.
func (id ID) Append(b []byte) []byte {
	n := len(b)
	b = append(b, "00000000-0000-0000-0000-000000000000"...)
	t := b[n:]
	hex.Encode(t[0:8], id[0:4])
	hex.Encode(t[9:13], id[4:6])
	hex.Encode(t[14:18], id[6:8])
	hex.Encode(t[19:23], id[8:10])
	hex.Encode(t[24:], id[10:])
	return b
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// Value implements driver.Valuer so IDs pass to SQL as uuid parameters.
func (id ID) Value() (driver.Value, error) { return id.String(), nil }

// Scan implements sql.Scanner for uuid columns.
func (id *ID) Scan(src any) error {
	switch v := src.(type) {
	case string:
		return id.UnmarshalText([]byte(v))
	case []byte:
		if len(v) == 16 {
			copy(id[:], v)
			return nil
		}
		return id.UnmarshalText(v)
	case [16]byte:
		*id = v
		return nil
	case nil:
		*id = ID{}
		return nil
	}
	return fmt.Errorf("cannot scan %T into ID", src)
}

// NameID returns a version 5 (name-based, SHA-1) UUID of name within the
// namespace ns: the same inputs always give the same ID. Used for entities
// identified by what they are about, such as the cash count of a property
// on a date.
func NameID(ns ID, name string) ID {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var id ID
	copy(id[:], h.Sum(nil))
	id[6] = id[6]&0x0f | 0x50 // version 5
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}
