package loadtest

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, raw string
		status    int
		keep      bool
	}{
		{"content length", "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 201, true},
		{"chunked", "HTTP/1.1 422 Unprocessable Entity\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n", 422, true},
		{"connection close", "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 413, false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, true},
		{"until close", "HTTP/1.0 200 OK\r\n\r\nbody", 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A second answer follows: the first must be read exactly.
			r := bufio.NewReader(strings.NewReader(tc.raw + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
			status, keep, err := readResponse(r, false)
			if err != nil || status != tc.status || keep != tc.keep {
				t.Fatalf("got %d keep=%v err=%v", status, keep, err)
			}
			if !tc.keep {
				return
			}
			if status, _, err := readResponse(r, false); err != nil || status != 200 {
				t.Fatalf("next answer: %d %v", status, err)
			}
		})
	}
	for _, bad := range []string{"", "garbage\r\n\r\n", "HTTP/1.1 2x1 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"} {
		if _, _, err := readResponse(bufio.NewReader(strings.NewReader(bad)), false); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
