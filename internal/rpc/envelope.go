package rpc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"sync"
	"time"

	"hmp/internal/auth"
	"hmp/internal/domain"
)

// An HTTP call between the gateway and a service travels as one compact
// binary message, not as NATS headers (which both ends parse as text
// into maps): the request as an envelope the gateway signs, the answer as
// status, headers and body.
//
// The envelope carries what the gateway established, so that the service
// does not establish it again: the caller's verified session (the
// gateway checked the bearer token and the user's state), the request id
// and the deadline. It is signed with HMAC-SHA256 under a key derived
// from the token secret every role already shares; a service refuses an
// envelope whose signature does not verify (ErrBadSignature) or whose
// deadline has passed (ErrExpired). The deadline bounds a replay too.
//
// Layout (integers unsigned varints unless said; strings a length and
// their bytes):
//
//	signature  32 bytes: HMAC-SHA256 of everything after it
//	version    1 byte (envelopeVersion)
//	deadline   8 bytes, big endian Unix nanoseconds
//	session    1 byte (0: none, 1: follows); org 16, user 16 bytes, role,
//	           token id, expiry (8 bytes, Unix nanoseconds)
//	request id, method, path, query, remote address
//	headers    a count, then each name, its count of values and the values
//	body       the rest

// Errors of Open.
var (
	ErrBadSignature = errors.New("envelope signature does not verify")
	ErrExpired      = errors.New("envelope deadline has passed")
	errMalformed    = errors.New("malformed envelope")
)

const (
	envelopeVersion = 1
	sigLen          = sha256.Size
	// keyLabel separates the envelope key from the tokens' own use of
	// the secret: a signed envelope is never a valid token and back.
	keyLabel = "hmp rpc envelope v1"
)

// Envelope is a forwarded HTTP request as the gateway vouches for it.
type Envelope struct {
	// Deadline is when the caller stops waiting; required.
	Deadline time.Time
	// Session is the caller the gateway authenticated; nil for an
	// anonymous route (signup, login).
	Session *auth.Session
	// RequestID is the id the gateway gave the request (X-Request-Id).
	RequestID string
	Method    string
	Path      string
	// Query is the raw query, without '?'.
	Query      string
	RemoteAddr string
	// Header is the request's end-to-end headers.
	Header http.Header
	Body   []byte
}

// Key signs and verifies envelopes. Safe for concurrent use.
type Key struct {
	macs sync.Pool // of hash.Hash keyed with the derived key
}

// NewKey derives the envelope key from the secret all roles share (the
// token secret); an empty secret is an error.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) == 0 {
		return nil, errors.New("envelope key: empty secret")
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(keyLabel))
	derived := m.Sum(nil)
	k := &Key{}
	k.macs.New = func() any { return hmac.New(sha256.New, derived) }
	return k, nil
}

func (k *Key) sign(dst, msg []byte) []byte {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(msg)
	dst = m.Sum(dst)
	k.macs.Put(m)
	return dst
}

// Seal encodes and signs e.
func (k *Key) Seal(e *Envelope) []byte {
	n := sigLen + 1 + 8 + 1 + 64 + len(e.RequestID) + len(e.Method) + len(e.Path) + len(e.Query) + len(e.RemoteAddr) + 5*8 + len(e.Body)
	for name, vs := range e.Header {
		n += len(name) + 2*binary.MaxVarintLen16
		for _, v := range vs {
			n += len(v) + binary.MaxVarintLen16
		}
	}
	b := make([]byte, sigLen, n)
	b = append(b, envelopeVersion)
	var deadline int64 // zero: none (refused by Open)
	if !e.Deadline.IsZero() {
		deadline = e.Deadline.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(deadline))
	if s := e.Session; s != nil {
		b = append(b, 1)
		b = append(b, s.Actor.OrgID[:]...)
		b = append(b, s.Actor.UserID[:]...)
		b = appendString(b, string(s.Actor.Role))
		b = appendString(b, s.ID)
		b = binary.BigEndian.AppendUint64(b, uint64(s.ExpiresAt.UnixNano()))
	} else {
		b = append(b, 0)
	}
	for _, s := range [...]string{e.RequestID, e.Method, e.Path, e.Query, e.RemoteAddr} {
		b = appendString(b, s)
	}
	b = appendHeader(b, e.Header)
	b = append(b, e.Body...)
	mac := k.sign(make([]byte, 0, sigLen), b[sigLen:])
	copy(b, mac)
	return b
}

// Open verifies data's signature, decodes it and checks its deadline
// against now. The envelope's Body and strings alias data.
func (k *Key) Open(data []byte, now time.Time) (*Envelope, error) {
	if len(data) < sigLen+1 {
		return nil, ErrBadSignature
	}
	var mac [sigLen]byte
	if !hmac.Equal(k.sign(mac[:0], data[sigLen:]), data[:sigLen]) {
		return nil, ErrBadSignature
	}
	d := decoder{b: data[sigLen:]}
	if v := d.byte(); v != envelopeVersion {
		return nil, fmt.Errorf("%w: version %d", errMalformed, v)
	}
	e := &Envelope{}
	if ns := int64(d.uint64()); ns != 0 {
		e.Deadline = time.Unix(0, ns)
	}
	if d.byte() == 1 {
		s := &auth.Session{}
		copy(s.Actor.OrgID[:], d.bytes(len(domain.ID{})))
		copy(s.Actor.UserID[:], d.bytes(len(domain.ID{})))
		s.Actor.Role = domain.Role(d.string())
		s.ID = d.string()
		s.ExpiresAt = time.Unix(0, int64(d.uint64()))
		e.Session = s
	}
	e.RequestID, e.Method, e.Path, e.Query, e.RemoteAddr = d.string(), d.string(), d.string(), d.string(), d.string()
	e.Header = d.header()
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, d.err)
	}
	e.Body = d.b
	switch {
	case e.Deadline.IsZero():
		return nil, fmt.Errorf("%w: no deadline", errMalformed)
	case !now.Before(e.Deadline):
		return nil, fmt.Errorf("%w (%s ago)", ErrExpired, now.Sub(e.Deadline))
	case e.Method == "" || !strings.HasPrefix(e.Path, "/"):
		return nil, fmt.Errorf("%w: method or path missing", errMalformed)
	}
	return e, nil
}

// encodeAnswer is a service's answer: status (2 bytes, big endian),
// headers, body.
func encodeAnswer(status int, h http.Header, body []byte) []byte {
	n := 2 + len(body) + binary.MaxVarintLen16
	for name, vs := range h {
		n += len(name) + 2*binary.MaxVarintLen16
		for _, v := range vs {
			n += len(v) + binary.MaxVarintLen16
		}
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, n), uint16(status))
	b = appendHeader(b, h)
	return append(b, body...)
}

func decodeAnswer(data []byte) (status int, h http.Header, body []byte, err error) {
	if len(data) < 2 {
		return 0, nil, nil, fmt.Errorf("%w: answer of %d bytes", errMalformed, len(data))
	}
	status = int(binary.BigEndian.Uint16(data))
	d := decoder{b: data[2:]}
	h = d.header()
	if d.err != nil {
		return 0, nil, nil, fmt.Errorf("%w: answer: %w", errMalformed, d.err)
	}
	return status, h, d.b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendHeader writes h without the hop-by-hop headers and the service's
// own (Hmp-*), which a client may not speak for.
func appendHeader(b []byte, h http.Header) []byte {
	n := 0
	for k := range h {
		if forwarded(k) {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for k, vs := range h {
		if !forwarded(k) {
			continue
		}
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	return b
}

func forwarded(name string) bool {
	return !hopHeaders[name] && !strings.HasPrefix(name, "Hmp-")
}

// decoder reads an envelope; the first failure sticks in err and every
// later read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = errors.New("truncated at " + what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("a byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail("a fixed integer")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("a length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail("a field")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("a string")
		return ""
	}
	return string(d.bytes(int(n)))
}

func (d *decoder) header() http.Header {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each header takes at least a byte
		d.fail("the headers")
		return nil
	}
	h := make(http.Header, n)
	for range n {
		name := d.string()
		m := d.uvarint()
		if m > uint64(len(d.b)) {
			d.fail("a header's values")
			return nil
		}
		vs := make([]string, m)
		for i := range vs {
			vs[i] = d.string()
		}
		if d.err != nil {
			return nil
		}
		h[http.CanonicalHeaderKey(name)] = vs
	}
	return h
}
