package seed

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RecordName is the file in a data folder that says what was seeded into
// its embedded database; load tests reuse a seeded folder by it.
const RecordName = "seed.json"

// WriteRecord writes res as the seed record of the data folder dir.
func WriteRecord(dir string, res Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, RecordName), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write seed record: %w", err)
	}
	return nil
}

// ReadRecord returns what was seeded into the data folder dir (ok false
// when nothing was).
func ReadRecord(dir string) (_ Result, ok bool, _ error) {
	b, err := os.ReadFile(filepath.Join(dir, RecordName))
	if errors.Is(err, os.ErrNotExist) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, err
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return Result{}, false, fmt.Errorf("read seed record: %w", err)
	}
	return res, true, nil
}
