package app_test

import (
	"strconv"
	"testing"

	"hmp/internal/apptest"
)

// TestETagIfMatch: every single-row answer carries the row's version as
// ETag; a PATCH, decision or delete with a stale If-Match answers 412
// problem+json and writes nothing (no event, no change); a matching one
// proceeds; no If-Match keeps last-writer-wins.
func TestETagIfMatch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken

	r := f.env.Must(201, "POST", "/v1/finance/revenues", admin, withKind("revenue", txn(f.prop, 5000)))
	if got := r.Header.Get("ETag"); got != `"1"` {
		t.Fatalf("create ETag = %q, want \"1\"", got)
	}
	var rev row
	r.JSON(t, &rev)
	base := "/v1/finance/revenues/" + rev.ID
	if got := f.env.Must(200, "GET", base, admin, nil).Header.Get("ETag"); got != `"1"` {
		t.Fatalf("GET ETag = %q, want \"1\"", got)
	}

	t.Run("a matching If-Match proceeds", func(t *testing.T) {
		r := f.in(t).env.Must(200, "PATCH", base, admin, map[string]any{"amountCents": 6000}, "If-Match", `"1"`)
		if got := r.Header.Get("ETag"); got != `"2"` {
			t.Fatalf("PATCH ETag = %q, want \"2\"", got)
		}
	})
	t.Run("a stale If-Match is 412 and writes nothing", func(t *testing.T) {
		f := f.in(t)
		before := len(entityEvents(f.env, admin, rev.ID))
		for _, tag := range []string{`"1"`, `W/"1"`, `"1", "7"`, `"not-a-version"`} {
			p := mustProblem(t, f.env.Do("PATCH", base, admin, map[string]any{"amountCents": 9999}, "If-Match", tag), 412)
			if p.Detail == "" {
				t.Fatalf("412 without a detail")
			}
		}
		mustProblem(t, f.env.Do("DELETE", base, admin, nil, "If-Match", `"1"`), 412)
		got := get(f.env, admin, "revenue", rev.ID)
		if got.AmountCents != 6000 || got.Version != 2 {
			t.Fatalf("row after 412s = %+v, want amount 6000 version 2", got)
		}
		if after := len(entityEvents(f.env, admin, rev.ID)); after != before {
			t.Fatalf("events after 412s = %d, want %d", after, before)
		}
	})
	t.Run("a list of tags and * match", func(t *testing.T) {
		f := f.in(t)
		f.env.Must(200, "PATCH", base, admin, map[string]any{"amountCents": 6100}, "If-Match", `"1", W/"2"`)
		if got := f.env.Must(200, "PATCH", base, admin, map[string]any{"amountCents": 6200}, "If-Match", `*`).Header.Get("ETag"); got != `"4"` {
			t.Fatalf("ETag = %q, want \"4\"", got)
		}
	})
	t.Run("without If-Match the last writer wins", func(t *testing.T) {
		f.in(t).env.Must(200, "PATCH", base, admin, map[string]any{"amountCents": 6300})
	})

	t.Run("decisions", func(t *testing.T) {
		f := f.in(t)
		pending := create(f.env, f.mgr, "expense", txn(f.prop, 700))
		path := "/v1/finance/expenses/" + pending.ID
		mustProblem(t, f.env.Do("POST", path+"/approve", admin, map[string]any{}, "If-Match", `"2"`), 412)
		mustProblem(t, f.env.Do("POST", path+"/reject", admin, map[string]any{}, "If-Match", `"2"`), 412)
		if got := get(f.env, admin, "expense", pending.ID); got.Status != "pending" || got.Version != 1 {
			t.Fatalf("row after refused decisions = %s v%d, want pending v1", got.Status, got.Version)
		}
		if n := len(entityEvents(f.env, admin, pending.ID)); n != 1 {
			t.Fatalf("events after refused decisions = %d, want 1", n)
		}
		r := f.env.Must(200, "POST", path+"/approve", admin, map[string]any{}, "If-Match", `"1"`)
		if got := r.Header.Get("ETag"); got != `"2"` {
			t.Fatalf("approve ETag = %q, want \"2\"", got)
		}
		// A manager's deletion request is refused too, and none is recorded.
		mustProblem(t, f.env.Do("DELETE", path, f.mgr, nil, "If-Match", `"1"`), 412)
		f.env.Must(202, "DELETE", path, f.mgr, nil, "If-Match", `"2"`)
		mustProblem(t, f.env.Do("DELETE", path, admin, nil, "If-Match", `"1"`), 412)
		f.env.Must(204, "DELETE", path, admin, nil, "If-Match", `"2"`)
		f.env.Must(404, "GET", path, admin, nil)
	})

	t.Run("of two concurrent edits from one version exactly one wins", func(t *testing.T) {
		f := f.in(t)
		cur := get(f.env, admin, "revenue", rev.ID)
		tag := `"` + strconv.Itoa(cur.Version) + `"`
		res := parallel(8, func(i int) (*apptest.Response, error) {
			return f.env.Send("PATCH", base, admin, map[string]any{"amountCents": 7000 + i}, "If-Match", tag)
		})
		won := 0
		for _, r := range res {
			if r.err != nil {
				t.Fatal(r.err)
			}
			switch r.r.Status {
			case 200:
				won++
			case 412:
			default:
				t.Fatalf("concurrent PATCH: %s", r.r)
			}
		}
		if won != 1 {
			t.Fatalf("%d concurrent PATCHes with one If-Match won, want 1", won)
		}
		if got := get(f.env, admin, "revenue", rev.ID); got.Version != cur.Version+1 {
			t.Fatalf("version = %d, want %d", got.Version, cur.Version+1)
		}
	})
}
