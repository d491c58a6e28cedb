// Package proctest helps tests that run hmp as a child process.
package proctest

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildHMP compiles the hmp binary into a temporary folder of the test and
// returns its path.
func BuildHMP(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "hmp")
	cmd := exec.Command("go", "build", "-o", bin, "hmp/cmd/hmp")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
