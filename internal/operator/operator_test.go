package operator_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"hmp/internal/operator"
)

func TestValidateToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"operator-token-for-tests-0123456789", true},
		{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", true},
		{"short-but-random-Xy7#", false},
		{strings.Repeat("a", 64), false},
		{"changeme-changeme-changeme-changeme", false},
		{strings.Repeat("0123456789ab", 4), false}, // a repeated string
	} {
		if err := operator.ValidateToken(tc.token); (err == nil) != tc.ok {
			t.Errorf("ValidateToken(%q) = %v, want ok %v", tc.token, err, tc.ok)
		}
	}
}

// TestProxies: X-Forwarded-For and X-Forwarded-Proto count from a trusted
// proxy only.
func TestProxies(t *testing.T) {
	t.Parallel()
	p, err := operator.ParseProxies([]string{"10.0.0.0/8", "192.168.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := operator.ParseProxies([]string{"proxy.example"}); err == nil {
		t.Fatal("a host name accepted")
	}
	req := func(peer, xff, proto string) (string, bool) {
		r := httptest.NewRequest("GET", "/dashboard", nil)
		r.RemoteAddr = peer + ":4242"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if proto != "" {
			r.Header.Set("X-Forwarded-Proto", proto)
		}
		return p.ClientAddr(r), p.Secure(r)
	}
	for _, tc := range []struct {
		peer, xff, proto, addr string
		secure                 bool
	}{
		{"203.0.113.9", "198.51.100.1", "https", "203.0.113.9", false}, // not a proxy: headers ignored
		{"10.1.2.3", "198.51.100.1", "https", "198.51.100.1", true},
		{"10.1.2.3", "6.6.6.6, 198.51.100.1, 192.168.1.1", "http", "198.51.100.1", false}, // the nearest untrusted hop
		{"192.168.1.1", "", "", "192.168.1.1", false},
	} {
		if addr, secure := req(tc.peer, tc.xff, tc.proto); addr != tc.addr || secure != tc.secure {
			t.Errorf("%+v: addr %s secure %v", tc, addr, secure)
		}
	}
	var none *operator.Proxies
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-Proto", "https")
	if none.Secure(r) {
		t.Error("no proxies configured, yet X-Forwarded-Proto believed")
	}
}
