package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"hmp/internal/httpapi"
)

// The edge answers every error postgres.Transient calls transient with
// 503 and Retry-After, also when it reaches the edge untranslated: a lock
// timeout was a 500 because the edge kept its own list of SQLSTATEs.
func TestTransientDatabaseErrorsAnswer503(t *testing.T) {
	t.Parallel()
	pool := cluster.NewPool(t)
	for _, code := range []string{"55P03", "57P05", "40001", "08006", "53300"} {
		t.Run(code, func(t *testing.T) {
			_, err := pool.Exec(context.Background(), fmt.Sprintf(`DO $$ BEGIN RAISE EXCEPTION 'fault' USING ERRCODE = '%s'; END $$`, code))
			if err == nil {
				t.Fatal("no error raised")
			}
			answer := httpapi.ProblemOf(fmt.Errorf("load revenue: %w", err))
			var se huma.StatusError
			var he huma.HeadersError
			if !errors.As(answer, &se) || se.GetStatus() != http.StatusServiceUnavailable {
				t.Fatalf("%v answers %v, want 503", err, answer)
			}
			if !errors.As(answer, &he) || he.GetHeaders().Get("Retry-After") == "" {
				t.Fatalf("%v: 503 without Retry-After", err)
			}
			if strings.Contains(se.Error(), "fault") || strings.Contains(se.Error(), "SQLSTATE") {
				t.Fatalf("driver text in the answer: %v", se.Error())
			}
		})
	}
	t.Run("not transient stays 500", func(t *testing.T) {
		_, err := pool.Exec(context.Background(), `DO $$ BEGIN RAISE EXCEPTION 'fault' USING ERRCODE = 'XX000'; END $$`)
		var se huma.StatusError
		if answer := httpapi.ProblemOf(err); !errors.As(answer, &se) || se.GetStatus() != http.StatusInternalServerError {
			t.Fatalf("%v answers %v, want 500", err, answer)
		}
	})
}
