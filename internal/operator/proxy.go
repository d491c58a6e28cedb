package operator

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies (HMP_TRUSTED_PROXIES) whose
// X-Forwarded-For and X-Forwarded-Proto headers are believed. From any
// other peer the headers are ignored: a client cannot claim another
// address or TLS it did not use.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies reads addresses and CIDR prefixes ("10.0.0.0/8",
// "127.0.0.1"). No entries: nil (no proxy trusted).
func ParseProxies(entries []string) (*Proxies, error) {
	p := &Proxies{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if pre, err := netip.ParsePrefix(e); err == nil {
			p.prefixes = append(p.prefixes, pre.Masked())
			continue
		}
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", e)
		}
		p.prefixes = append(p.prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	if len(p.prefixes) == 0 {
		return nil, nil
	}
	return p, nil
}

func (p *Proxies) trusts(host string) bool {
	if p == nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, pre := range p.prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

func peer(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ClientAddr is the address r came from, without its port: the peer's, or,
// when the peer is a trusted proxy, the nearest address in
// X-Forwarded-For that is not a trusted proxy. Safe on nil.
func (p *Proxies) ClientAddr(r *http.Request) string {
	addr := peer(r)
	if !p.trusts(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		if _, err := netip.ParseAddr(h); err != nil {
			return addr // garbled: keep the proxy's own
		}
		if addr = h; !p.trusts(h) {
			return h
		}
	}
	return addr
}

// Secure reports whether r came over TLS: to this server, or to a trusted
// proxy that says so (X-Forwarded-Proto: https). Safe on nil.
func (p *Proxies) Secure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !p.trusts(peer(r)) {
		return false
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}
