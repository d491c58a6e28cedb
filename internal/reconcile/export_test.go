package reconcile

// SetBeforeWrite makes fn run before each write try of b; its error fails
// the try (tests of the retry).
func SetBeforeWrite(b *CorrectionBatcher, fn func() error) { b.beforeWrite = fn }
