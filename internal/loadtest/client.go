package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client speaks the HMP API for load generation: a few typed calls for
// setting a workload up (net/http, JSON), and Send, the lean path the
// measured requests take: a minimal HTTP/1.1 exchange on a kept-alive
// connection, request written in one system call, answer drained without
// decoding. On a machine the generator shares with the server every
// microsecond it spends is one the server does not get.
type Client struct {
	base    string
	host    string // host:port of base
	http    *http.Client
	timeout time.Duration
	idle    chan *rawConn
}

// NewClient returns a client of the API at baseURL (http://host:port)
// keeping up to conns connections open. Only loopback targets are
// accepted: a load generator must not be pointed at someone else's server
// by a typo.
func NewClient(baseURL string, conns int, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target %q is not an http(s) URL", baseURL)
	}
	if !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("target %q is not a loopback address; the load generator only drives a local server", baseURL)
	}
	if conns < 1 {
		conns = 1
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("target %q: the load generator speaks plain http to loopback", baseURL)
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return &Client{
		base:    strings.TrimRight(baseURL, "/"),
		host:    host,
		http:    &http.Client{Transport: tr, Timeout: timeout},
		timeout: timeout,
		idle:    make(chan *rawConn, conns),
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close drops the idle connections.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
	for {
		select {
		case rc := <-c.idle:
			rc.conn.Close()
		default:
			return
		}
	}
}

// BaseURL is the API's address.
func (c *Client) BaseURL() string { return c.base }

// Request is one measured call.
type Request struct {
	Method, Path string
	// Token is the bearer token; empty sends none.
	Token string
	// Body is sent as application/json when not nil.
	Body []byte
	// IdempotencyKey is sent when not empty.
	IdempotencyKey string
}

// Send performs r and returns the status code; the body is read and
// dropped so that the connection is reused. err is set only when no
// answer arrived. Send is safe for concurrent use: each call takes an
// idle connection or dials one.
func (c *Client) Send(ctx context.Context, r Request) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rc *rawConn
	select {
	case rc = <-c.idle:
	default:
		conn, err := net.DialTimeout("tcp", c.host, 5*time.Second)
		if err != nil {
			return 0, err
		}
		rc = &rawConn{conn: conn, r: bufio.NewReaderSize(conn, 4096), w: make([]byte, 0, 1024)}
	}
	status, keep, err := rc.roundTrip(c.host, r, c.timeout)
	if err != nil || !keep {
		rc.conn.Close()
		return status, err
	}
	select {
	case c.idle <- rc:
	default: // more connections than the client keeps
		rc.conn.Close()
	}
	return status, nil
}

// rawConn is one kept-alive HTTP/1.1 connection.
type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
	w    []byte
}

// roundTrip writes r and reads the answer: status, whether the
// connection may be reused, and an error when the exchange failed.
func (rc *rawConn) roundTrip(host string, r Request, timeout time.Duration) (int, bool, error) {
	b := rc.w[:0]
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: hmp-loadtest\r\n"...)
	if r.Token != "" {
		b = append(b, "Authorization: Bearer "...)
		b = append(b, r.Token...)
		b = append(b, "\r\n"...)
	}
	if r.IdempotencyKey != "" {
		b = append(b, "Idempotency-Key: "...)
		b = append(b, r.IdempotencyKey...)
		b = append(b, "\r\n"...)
	}
	if r.Body != nil {
		b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(r.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, r.Body...)
	rc.w = b
	if err := rc.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, false, err
	}
	if _, err := rc.conn.Write(b); err != nil {
		return 0, false, err
	}
	return readResponse(rc.r, r.Method == http.MethodHead)
}

// readResponse reads one HTTP/1.1 answer and drops its body. It knows
// what the API sends: a Content-Length or a chunked body.
func readResponse(r *bufio.Reader, head bool) (int, bool, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, false, fmt.Errorf("read status line: %w", err)
	}
	// "HTTP/1.1 201 Created"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	keep := line[7] == '1' // HTTP/1.1 keeps alive unless told otherwise
	length, chunked := int64(-1), false
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return status, false, fmt.Errorf("read header: %w", err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return status, false, fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = keep && !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case head || status == http.StatusNoContent || status == http.StatusNotModified || status < 200:
	case chunked:
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return status, false, fmt.Errorf("read chunk size: %w", err)
			}
			size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
			n, err := strconv.ParseInt(string(size), 16, 64)
			if err != nil || n < 0 {
				return status, false, fmt.Errorf("malformed chunk size %q", line)
			}
			if _, err := r.Discard(int(n) + 2); err != nil { // the chunk and its CRLF
				return status, false, fmt.Errorf("read chunk: %w", err)
			}
			if n == 0 {
				break
			}
		}
	case length >= 0:
		if _, err := r.Discard(int(length)); err != nil {
			return status, false, fmt.Errorf("read body: %w", err)
		}
	default: // body until the server closes
		if _, err := io.Copy(io.Discard, r); err != nil {
			return status, false, fmt.Errorf("read body: %w", err)
		}
		keep = false
	}
	return status, keep, nil
}

// call sends a JSON body and decodes a JSON answer into out, failing
// unless the status is want.
func (c *Client) call(ctx context.Context, method, path, token string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return nil
}

// Tenant is an organization made for a load run: its first ADMIN's token
// and its properties.
type Tenant struct {
	OrgID      string   `json:"orgId"`
	AdminToken string   `json:"-"`
	Properties []string `json:"properties"`
}

// Signup creates an organization whose ADMIN has the given email.
func (c *Client) Signup(ctx context.Context, orgName, email string) (Tenant, error) {
	var out struct {
		OrgID       string `json:"orgId"`
		AccessToken string `json:"accessToken"`
	}
	err := c.call(ctx, http.MethodPost, "/v1/auth/signup", "", map[string]string{
		"orgName": orgName, "email": email, "password": "load test password", "displayName": orgName + " Admin",
	}, http.StatusCreated, &out)
	if err != nil {
		return Tenant{}, err
	}
	return Tenant{OrgID: out.OrgID, AdminToken: out.AccessToken}, nil
}

// CreateProperty adds a hotel in the default zone and returns its id.
func (c *Client) CreateProperty(ctx context.Context, token, name string) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/properties", token, map[string]string{"name": name, "type": "hotel"}, http.StatusCreated, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		return "", errors.New("create property: answer has no id")
	}
	return out.ID, nil
}
