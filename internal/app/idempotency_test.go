package app_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"hmp/internal/apptest"
)

// TestIdempotencyKey: a create retried with its Idempotency-Key returns the
// original answer instead of writing again.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken

	for _, kind := range []string{"revenue", "expense"} {
		base := "/v1/finance/" + plural(kind)
		t.Run(kind, func(t *testing.T) {
			f := f.in(t)

			t.Run("the same key and body replay the original answer", func(t *testing.T) {
				f := f.in(t)
				body := withKind(kind, txn(f.prop, 1111))
				first := f.env.Must(201, "POST", base, admin, body, "Idempotency-Key", kind+"-replay")
				if h := first.Header.Get("Idempotency-Replayed"); h != "" {
					t.Fatalf("the original answer says Idempotency-Replayed: %q", h)
				}
				mustToken(t, first)
				var orig row
				first.JSON(t, &orig)
				for range 3 {
					again := f.env.Must(201, "POST", base, admin, body, "Idempotency-Key", kind+"-replay")
					if h := again.Header.Get("Idempotency-Replayed"); h != "true" {
						t.Fatalf("Idempotency-Replayed = %q, want true", h)
					}
					if tok := again.Header.Get("X-Consistency-Token"); tok != first.Header.Get("X-Consistency-Token") {
						t.Fatalf("replayed consistency token %q, original %q", tok, first.Header.Get("X-Consistency-Token"))
					}
					var got row
					again.JSON(t, &got)
					if got != orig {
						t.Fatalf("replay = %+v, want the original %+v", got, orig)
					}
				}
				// The same JSON spelled differently is the same request.
				respelled := `{ "occurredAt": "` + body.OccurredAt + `", "paymentMode": "cash", "amountCents": 1111,
					"propertyId": "` + f.prop + `", ` + map[string]string{"revenue": `"source": "room"`, "expense": `"category": "supplies"`}[kind] + ` }`
				var got row
				r := f.env.Must(201, "POST", base, admin, respelled, "Idempotency-Key", kind+"-replay")
				r.JSON(t, &got)
				if got.ID != orig.ID || r.Header.Get("Idempotency-Replayed") != "true" {
					t.Fatalf("respelled body: %s", r)
				}
				if n := count(f.env, admin, kind, 1111); n != 1 {
					t.Fatalf("%d rows of the retried create, want 1", n)
				}
				if evs := entityEvents(f.env, admin, orig.ID); len(evs) != 1 {
					t.Fatalf("%d events of the retried create, want 1", len(evs))
				}
			})

			t.Run("the same key with another body is a conflict", func(t *testing.T) {
				f := f.in(t)
				f.env.Must(201, "POST", base, admin, withKind(kind, txn(f.prop, 2222)), "Idempotency-Key", kind+"-conflict")
				for _, other := range []apptest.Txn{
					withKind(kind, txn(f.prop, 2223)),
					withKind(kind, apptest.Txn{PropertyID: f.prop, AmountCents: 2222, PaymentMode: "bank", OccurredAt: morning}),
					withKind(kind, apptest.Txn{PropertyID: f.prop, AmountCents: 2222, PaymentMode: "cash", OccurredAt: morning, Description: "again"}),
				} {
					p := mustProblem(t, f.env.Do("POST", base, admin, other, "Idempotency-Key", kind+"-conflict"), 409)
					if p.Detail != "this Idempotency-Key was used with a different request body" {
						t.Fatalf("detail = %q", p.Detail)
					}
				}
				if n := count(f.env, admin, kind, 2222) + count(f.env, admin, kind, 2223); n != 1 {
					t.Fatalf("%d rows, want the first only", n)
				}
			})

			t.Run("a refused request is not remembered", func(t *testing.T) {
				f := f.in(t)
				key := kind + "-fix-and-retry"
				bad := withKind(kind, txn(f.prop, 0))
				mustProblem(t, f.env.Do("POST", base, admin, bad, "Idempotency-Key", key), 422)
				ghost := withKind(kind, txn("01900000-0000-7000-8000-000000000000", 3333))
				mustProblem(t, f.env.Do("POST", base, admin, ghost, "Idempotency-Key", key), 404)
				tooOld := withKind(kind, apptest.Txn{PropertyID: f.prop, AmountCents: 3333, PaymentMode: "cash", OccurredAt: "1999-01-01T00:00:00Z"})
				mustProblem(t, f.env.Do("POST", base, admin, tooOld, "Idempotency-Key", key), 422)
				fixed := f.env.Must(201, "POST", base, admin, withKind(kind, txn(f.prop, 3333)), "Idempotency-Key", key)
				if fixed.Header.Get("Idempotency-Replayed") != "" {
					t.Fatalf("the fixed request was answered as a replay: %s", fixed)
				}
			})

			t.Run("a request the daily approval gate refused is not remembered", func(t *testing.T) {
				f := setup(t) // moves its own clock
				create(f.env, f.mgr, kind, txn(f.prop, 10))
				f.advance(24 * time.Hour)
				next := withKind(kind, apptest.Txn{PropertyID: f.prop, AmountCents: 4444, PaymentMode: "cash", OccurredAt: "2026-06-16T04:30:00Z"})
				mustProblem(t, f.env.Do("POST", base, f.mgr, next, "Idempotency-Key", kind+"-gated"), 409)
				f.env.Must(201, "POST", "/v1/finance/daily-approvals", f.org.AdminToken, map[string]any{"managerUserId": f.mgrID, "date": "2026-06-16"})
				r := f.env.Must(201, "POST", base, f.mgr, next, "Idempotency-Key", kind+"-gated")
				if r.Header.Get("Idempotency-Replayed") != "" {
					t.Fatalf("answered as a replay: %s", r)
				}
			})
		})
	}

	t.Run("a key belongs to its user and its route", func(t *testing.T) {
		f := f.in(t)
		body := txn(f.prop, 5555)
		var a, b, c row
		f.env.Must(201, "POST", "/v1/finance/revenues", admin, withKind("revenue", body), "Idempotency-Key", "shared").JSON(t, &a)
		f.env.Must(201, "POST", "/v1/finance/revenues", f.mgr, withKind("revenue", body), "Idempotency-Key", "shared").JSON(t, &b)
		f.env.Must(201, "POST", "/v1/finance/expenses", admin, withKind("expense", body), "Idempotency-Key", "shared").JSON(t, &c)
		if a.ID == b.ID || a.ID == c.ID || b.Status != "pending" || a.Status != "approved" {
			t.Fatalf("one key shared across users or routes: %+v %+v %+v", a, b, c)
		}
		// Another organization's user with the same key writes its own row.
		other := f.env.Signup("Other Org")
		prop := f.env.Property(other.AdminToken, "Far Away", "")
		var d row
		f.env.Must(201, "POST", "/v1/finance/revenues", other.AdminToken, withKind("revenue", txn(prop, 5555)), "Idempotency-Key", "shared").JSON(t, &d)
		if d.ID == a.ID || d.PropertyID != prop {
			t.Fatalf("another organization got %+v", d)
		}
	})

	t.Run("a key is remembered for 24 hours", func(t *testing.T) {
		f := setup(t) // moves its own clock
		admin := f.org.AdminToken
		body := withKind("revenue", txn(f.prop, 6666))
		var first, replay, later row
		f.env.Must(201, "POST", "/v1/finance/revenues", admin, body, "Idempotency-Key", "a-day").JSON(t, &first)
		f.advance(23 * time.Hour)
		r := f.env.Must(201, "POST", "/v1/finance/revenues", f.org.AdminToken, body, "Idempotency-Key", "a-day")
		r.JSON(t, &replay)
		if replay.ID != first.ID || r.Header.Get("Idempotency-Replayed") != "true" {
			t.Fatalf("after 23 h: %s", r)
		}
		f.advance(time.Hour + time.Second)
		r = f.env.Must(201, "POST", "/v1/finance/revenues", f.org.AdminToken, body, "Idempotency-Key", "a-day")
		r.JSON(t, &later)
		if later.ID == first.ID || r.Header.Get("Idempotency-Replayed") != "" {
			t.Fatalf("after 24 h the key still replays: %s", r)
		}
	})
}

// TestIdempotencyKeyConcurrent: of many concurrent requests with one key,
// one writes; every other answers its result or 409.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	admin := f.org.AdminToken
	const n = 20
	body := withKind("revenue", txn(f.prop, 8080))
	var (
		wg        sync.WaitGroup
		start     = make(chan struct{})
		responses = make([]*apptest.Response, n)
		errs      = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			responses[i], errs[i] = f.env.Send("POST", "/v1/finance/revenues", admin, body, "Idempotency-Key", "stampede")
		})
	}
	close(start)
	wg.Wait()

	var id string
	originals, replays, conflicts := 0, 0, 0
	for i, r := range responses {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		switch r.Status {
		case 201:
			var got row
			r.JSON(t, &got)
			if id == "" {
				id = got.ID
			}
			if got.ID != id {
				t.Fatalf("two rows for one key: %s and %s", id, got.ID)
			}
			if r.Header.Get("Idempotency-Replayed") == "true" {
				replays++
			} else {
				originals++
			}
		case 409:
			mustProblem(t, r, 409)
			conflicts++
		default:
			t.Fatalf("request %d: %s, want 201 or 409", i, r)
		}
	}
	if originals != 1 {
		t.Fatalf("%d original answers (and %d replays, %d conflicts), want exactly 1", originals, replays, conflicts)
	}
	if n := count(f.env, admin, "revenue", 8080); n != 1 {
		t.Fatalf("%d rows written, want 1", n)
	}
	if evs := events(f.env, admin, ""); len(evs) != 1 || evs[0].EntityID != id {
		t.Fatalf("%d events written, want 1 for %s", len(evs), id)
	}
	// Afterwards the key replays.
	r := f.env.Must(201, "POST", "/v1/finance/revenues", admin, body, "Idempotency-Key", "stampede")
	if r.Header.Get("Idempotency-Replayed") != "true" || !bytes.Contains(r.Body, []byte(id)) {
		t.Fatalf("after the stampede: %s", r)
	}
	t.Logf("%d concurrent requests: 1 original, %d replays, %d conflicts", n, replays, conflicts)
}

// count returns how many rows of kind carry amount.
func count(e *apptest.Env, token, kind string, amount int64) int {
	e.T.Helper()
	n := 0
	for _, r := range list(e, token, kind, "limit=500") {
		if r.AmountCents == amount {
			n++
		}
	}
	return n
}
