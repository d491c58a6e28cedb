// Package browsertest starts a headless Chromium for tests that check what
// a page draws, with the same flags wherever a test needs one.
package browsertest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// New starts a fresh headless Chromium (/usr/bin/chromium, its own
// profile folder, no background networking) with a width × height window
// and returns a chromedp context of one tab, cancelled after timeout or
// when the test ends, whichever comes first.
func New(tb testing.TB, width, height int, timeout time.Duration) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(tb.TempDir()), chromedp.WindowSize(width, height))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tb.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(actx)
	tb.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	tb.Cleanup(cancel)
	return ctx
}
