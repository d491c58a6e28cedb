// Package logtest holds what tests capture logs and command output in.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that the goroutines of a server under test may
// write to while the test reads it. The zero value is empty and ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
