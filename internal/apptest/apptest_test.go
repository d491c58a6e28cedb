package apptest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"hmp/internal/apptest"
)

// TestDeadlineNamesTheHangingGoroutine runs a test that hangs in a child
// process: the run ends well before go test's own timeout, and what it
// prints names the test and the function that hangs.
func TestDeadlineNamesTheHangingGoroutine(t *testing.T) {
	if os.Getenv("APPTEST_HANG") == "1" {
		apptest.Deadline(t, 200*time.Millisecond)
		hangForever()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeadlineNamesTheHangingGoroutine$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), "APPTEST_HANG=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the hanging test passed:\n%s", out)
	}
	for _, want := range []string{"TestDeadlineNamesTheHangingGoroutine is still running after its 200ms deadline", "apptest_test.hangForever"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%.4000s", want, out)
		}
	}
}

func hangForever() { select {} }
