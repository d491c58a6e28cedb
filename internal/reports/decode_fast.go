package reports

import (
	"strconv"
	"strings"
	"time"

	"hmp/internal/domain"
)

// decodeFast reads the canonical form of an event message (what the relay
// writes with json.Marshal: exact-case keys, each once, strings without
// escapes or non-ASCII bytes, free text aside) into w without reflection,
// leaving the free-text fields of the states (currency, source, category,
// description, bank reference) empty: no effect reads them. It reports false
// for anything else, valid or not, and the caller then decodes with
// encoding/json, whose rules (case-insensitive keys, the last duplicate
// winning, null handling, error reporting) stay the only ones: on what it
// accepts, decodeFast gives exactly what json.Unmarshal gives
// (FuzzDecodeFast checks it). The projector spent about a third of its
// CPU in encoding/json's reflection and double scan before.
func decodeFast(data []byte, w *wireEvent) bool {
	s := scanner{b: data}
	var seen uint16
	ok := s.object(func(key []byte) bool {
		bit, known := keyBit(key, eventKeyNames)
		if !known {
			return !foldsKnown(key, eventKeyNames) && s.skip()
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		switch string(key) {
		case "eventId":
			return s.id(&w.ID)
		case "eventType":
			v, ok := s.plainString()
			w.Type = domain.EventType(v)
			return ok
		case "orgId":
			return s.id(&w.OrgID)
		case "propertyId":
			return nullable(&s, &w.PropertyID, s.id)
		case "entityType":
			v, ok := s.plainString()
			w.EntityType = domain.EntityType(v)
			return ok
		case "aggregateVersion":
			n, ok := s.int()
			w.AggregateVersion = int(n)
			return ok
		case "timestamp":
			return s.time(&w.Timestamp)
		case "sequence":
			n, ok := s.int()
			w.Sequence = n
			return ok
		case "metadata":
			return s.meta(&w.Metadata)
		}
		return false
	})
	s.ws()
	return ok && s.i == len(s.b)
}

// The keys decodeFast reads; a key's bit in a seen set is 1 << its index.
// The first stateKeys of metaKeyNames are TransactionState's.
var (
	eventKeyNames = []string{"eventId", "eventType", "orgId", "propertyId", "entityType", "aggregateVersion", "timestamp", "sequence", "metadata"}
	metaKeyNames  = []string{"propertyId", "status", "amountCents", "currency", "paymentMode", "businessDate", "source", "category",
		"description", "bankReference", "occurredAt", "previous", "date", "countedClosingCents"}
)

const stateKeys = 11

func keyBit(key []byte, names []string) (uint16, bool) {
	for i, n := range names {
		if string(key) == n {
			return 1 << i, true
		}
	}
	return 0, false
}

// foldsKnown reports whether an unknown key could still name a known
// field under encoding/json's case-insensitive matching: then the slow
// path decides. Keys with non-ASCII bytes count as such (its folding knows
// a few of those too).
func foldsKnown(key []byte, names []string) bool {
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return true
		}
	}
	return false
}

// meta reads the metadata object (wireMeta); previous is read as a nested
// state, the one level of nesting metadata has.
func (s *scanner) meta(m *wireMeta) bool {
	var seen uint16
	return s.object(func(key []byte) bool {
		bit, known := keyBit(key, metaKeyNames)
		if !known {
			return !foldsKnown(key, metaKeyNames) && s.skip()
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		switch string(key) {
		case "previous":
			return nullable(s, &m.Previous, s.state)
		case "date":
			return s.date(&m.Date)
		case "countedClosingCents":
			n, ok := s.int()
			m.CountedClosingCents = n
			return ok
		}
		return s.stateField(key, &m.TransactionState)
	})
}

// state reads a previous state: only TransactionState's own keys count.
func (s *scanner) state(st *domain.TransactionState) bool {
	var seen uint16
	return s.object(func(key []byte) bool {
		bit, known := keyBit(key, metaKeyNames[:stateKeys])
		if !known {
			// previous, date and countedClosingCents are no fields of a
			// state: skipped, like any unknown key.
			return !foldsKnown(key, metaKeyNames[:stateKeys]) && s.skip()
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return s.stateField(key, st)
	})
}

func (s *scanner) stateField(key []byte, st *domain.TransactionState) bool {
	var ok bool
	var v string
	switch string(key) {
	case "propertyId":
		return s.id(&st.PropertyID)
	case "status":
		v, ok = s.plainString()
		st.Status = domain.Status(v)
	case "amountCents":
		st.AmountCents, ok = s.int()
	case "paymentMode":
		v, ok = s.plainString()
		st.PaymentMode = domain.PaymentMode(v)
	case "businessDate":
		return s.date(&st.BusinessDate)
	case "currency", "source", "category", "description", "bankReference":
		// Free text no effect reads: checked to be a string, as
		// encoding/json would, and left empty, so that a note with
		// escapes or accents keeps the fast path.
		return s.i < len(s.b) && s.b[s.i] == '"' && s.skipString()
	case "occurredAt":
		return s.time(&st.OccurredAt)
	}
	return ok
}

// scanner walks a JSON text. Every method reports false, and the caller
// gives up, on anything outside the canonical form.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object reads {"key": value, ...}, calling field for each key with the
// scanner at its value; field must consume the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	if s.closes('}') {
		return true
	}
	for {
		s.ws()
		key, ok := s.rawString()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !field(key) {
			return false
		}
		if more, ok := s.next('}'); !ok || !more {
			return ok
		}
	}
}

// closes consumes closing, after white space, and reports whether it was
// there: the end of an empty object or array.
func (s *scanner) closes(closing byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == closing {
		s.i++
		return true
	}
	return false
}

// next consumes what follows a member or element, after white space: a
// comma (more follows) or closing (the end); ok is false on anything else.
func (s *scanner) next(closing byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, true
	case closing:
		s.i++
		return false, true
	}
	return false, false
}

// rawString reads a string without escapes, control or non-ASCII bytes
// and returns its content.
func (s *scanner) rawString() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

func (s *scanner) plainString() (string, bool) {
	b, ok := s.rawString()
	return string(b), ok
}

// nullable reads null as a nil *dst, or else a value by read into a new
// T that *dst then points to.
func nullable[T any](s *scanner, dst **T, read func(*T) bool) bool {
	if s.null() {
		*dst = nil
		return true
	}
	v := new(T)
	if !read(v) {
		return false
	}
	*dst = v
	return true
}

func (s *scanner) null() bool {
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// id reads a quoted UUID as domain.ParseID does (hex digits of either
// case, dashes at 8, 13, 18 and 23), without its allocations.
func (s *scanner) id(id *domain.ID) bool {
	b, ok := s.rawString()
	if !ok || len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return false
	}
	var out domain.ID
	j := 0
	for i := 0; i < 36; {
		if b[i] == '-' {
			i++
			continue
		}
		hi, ok1 := unhex(b[i])
		lo, ok2 := unhex(b[i+1])
		if !ok1 || !ok2 {
			return false
		}
		out[j] = hi<<4 | lo
		i, j = i+2, j+1
	}
	*id = out
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// date reads a quoted business date: a plain YYYY-MM-DD of a day that
// exists here, anything else (the zero date's text among them) through
// Date.UnmarshalText, which encoding/json calls.
func (s *scanner) date(d *domain.Date) bool {
	b, ok := s.rawString()
	if !ok {
		return false
	}
	if len(b) == 10 && b[4] == '-' && b[7] == '-' {
		y, ok1 := digits(b[0:4])
		m, ok2 := digits(b[5:7])
		day, ok3 := digits(b[8:10])
		if ok1 && ok2 && ok3 && y >= 1000 && m >= 1 && m <= 12 && day >= 1 && day <= domain.DaysInMonth(y, time.Month(m)) {
			*d = domain.Date{Year: y, Month: time.Month(m), Day: day}
			return true
		}
	}
	return d.UnmarshalText(b) == nil
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// time reads a quoted RFC 3339 time with time.Time's own decoder, the
// one encoding/json calls.
func (s *scanner) time(t *time.Time) bool {
	start := s.i
	if _, ok := s.rawString(); !ok {
		return false
	}
	return t.UnmarshalJSON(s.b[start:s.i]) == nil
}

// int reads an integer in JSON's number grammar that fits an int64 (no
// fraction, no exponent: encoding/json refuses those for integers).
func (s *scanner) int() (int64, bool) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	switch {
	case s.i == digits, s.i-digits > 1 && s.b[digits] == '0':
		return 0, false
	case s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E'):
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

// skip consumes one value of any kind, checking its grammar, so that an
// ignored field cannot hide text encoding/json would refuse.
func (s *scanner) skip() bool {
	return s.skipDepth(0)
}

func (s *scanner) skipDepth(depth int) bool {
	if depth > 32 {
		return false
	}
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.skipString()
	case c == '{':
		return s.object(func([]byte) bool { return s.skipDepth(depth + 1) })
	case c == '[':
		s.i++
		if s.closes(']') {
			return true
		}
		for {
			if !s.skipDepth(depth + 1) {
				return false
			}
			if more, ok := s.next(']'); !ok || !more {
				return ok
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.skipNumber()
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// skipString consumes a string with any escapes; control bytes are
// refused (as JSON does), other bytes taken as they are.
func (s *scanner) skipString() bool {
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

// skipNumber consumes a number in JSON's grammar.
func (s *scanner) skipNumber() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	start := s.i
	n := digits()
	if n == 0 || n > 1 && s.b[start] == '0' {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
