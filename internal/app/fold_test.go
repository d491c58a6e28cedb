package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"hmp/internal/apptest"
	"hmp/internal/domain"
	"hmp/internal/finance"
)

// TestFoldEqualsTable: after a randomized scenario of creates, edits,
// moves between properties and dates, approvals, rejections, deletes and
// deletion requests by an ADMIN and a MANAGER, folding each revenue's and
// expense's events gives exactly its table row (every column), and a
// deleted row folds to "does not exist".
func TestFoldEqualsTable(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	f := setup(t)
	admin := f.org.AdminToken
	second := f.env.Property(admin, "Lake Side", "America/New_York")
	f.env.Must(200, "PUT", "/v1/users/"+f.mgrID+"/properties", admin, map[string]any{"propertyIds": []string{f.prop, second}})
	props := []string{f.prop, second}
	type entity struct{ kind, id string }
	var ents []entity
	pick := func() entity { return ents[rng.IntN(len(ents))] }
	who := func() string {
		if rng.IntN(2) == 0 {
			return admin
		}
		return f.mgr
	}
	occurred := func() string {
		return baseTime.Add(-time.Duration(rng.IntN(72*60)) * time.Minute).Format(time.RFC3339)
	}
	ok := map[int]bool{200: true, 201: true, 202: true, 204: true, 409: true}
	for step := 0; step < 80; step++ {
		f.clock.Advance(time.Duration(1+rng.IntN(5000)) * time.Millisecond)
		op := rng.IntN(10)
		if len(ents) == 0 {
			op = 0
		}
		var r *apptest.Response
		switch {
		case op < 3:
			kind := []string{"revenue", "expense"}[rng.IntN(2)]
			body := withKind(kind, txn(props[rng.IntN(2)], int64(1+rng.IntN(100000))))
			body.OccurredAt = occurred()
			if rng.IntN(2) == 0 {
				body.PaymentMode = "bank"
				body.BankReference = fmt.Sprintf("REF-%d", step)
			}
			r = f.env.Do("POST", "/v1/finance/"+plural(kind), who(), body)
			if r.Status == 201 {
				var out row
				r.JSON(t, &out)
				ents = append(ents, entity{kind, out.ID})
			}
		case op < 6:
			e := pick()
			patch := map[string]any{}
			switch rng.IntN(5) {
			case 0:
				patch["amountCents"] = 1 + rng.IntN(100000)
			case 1:
				patch["occurredAt"] = occurred()
			case 2:
				patch["propertyId"] = props[rng.IntN(2)]
			case 3:
				patch["paymentMode"] = []string{"cash", "bank"}[rng.IntN(2)]
			case 4:
				patch["description"] = fmt.Sprintf("note %d", step)
			}
			r = f.env.Do("PATCH", "/v1/finance/"+plural(e.kind)+"/"+e.id, who(), patch)
		case op < 8:
			e := pick()
			verb := []string{"approve", "reject"}[rng.IntN(2)]
			r = f.env.Do("POST", "/v1/finance/"+plural(e.kind)+"/"+e.id+"/"+verb, admin, map[string]any{"notes": fmt.Sprintf("step %d", step)})
		case op == 8:
			e := pick()
			r = f.env.Do("DELETE", "/v1/finance/"+plural(e.kind)+"/"+e.id, admin, nil)
		default:
			e := pick()
			r = f.env.Do("DELETE", "/v1/finance/"+plural(e.kind)+"/"+e.id, f.mgr, nil)
			if r.Status == 202 {
				var out struct{ DeletionRequestID string }
				r.JSON(t, &out)
				verb := []string{"approve", "reject"}[rng.IntN(2)]
				r = f.env.Do("POST", "/v1/finance/deletion-requests/"+out.DeletionRequestID+"/"+verb, admin, nil)
			}
		}
		if !ok[r.Status] && r.Status != 404 { // 404: a row deleted earlier
			t.Fatalf("step %d: %s", step, r)
		}
	}
	svc := finance.New(f.env.App.Pool, nil, time.Now)
	checked, mismatches, err := svc.CheckFold(context.Background(), mustID(t, f.org.ID))
	if err != nil {
		t.Fatal(err)
	}
	if checked != len(ents) || len(mismatches) != 0 {
		t.Fatalf("checked %d of %d rows; mismatches %+v", checked, len(ents), mismatches)
	}
	// A direct load agrees too, and a deleted row folds to absent.
	var deleted, present int
	for _, e := range ents {
		got, exists, err := svc.Load(context.Background(), mustID(t, f.org.ID), domain.Kind(e.kind), mustID(t, e.id))
		if err != nil {
			t.Fatal(err)
		}
		r := f.env.Do("GET", "/v1/finance/"+plural(e.kind)+"/"+e.id, admin, nil)
		if exists != (r.Status == 200) {
			t.Fatalf("%s %s: fold exists=%v, GET %d", e.kind, e.id, exists, r.Status)
		}
		if exists {
			present++
			var api row
			r.JSON(t, &api)
			if got.Version != api.Version || got.AmountCents != api.AmountCents || string(got.Status) != api.Status {
				t.Fatalf("%s: fold %+v, API %+v", e.id, got, api)
			}
		} else {
			deleted++
		}
	}
	t.Logf("%d rows folded: %d present, %d deleted", len(ents), present, deleted)
}
