package app_test

import (
	"testing"

	"hmp/internal/apptest"
)

func TestSmoke(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, cluster)
	org := env.Signup("Smoke Org")
	pid := env.Property(org.AdminToken, "Sea View", "")
	row := env.Revenue(org.AdminToken, apptest.Txn{PropertyID: pid, AmountCents: 5000, PaymentMode: "cash", OccurredAt: "2026-11-25T20:00:00Z"})
	if row.BusinessDate != "2026-11-26" || row.Status != "approved" {
		t.Fatalf("row = %+v", row)
	}
}
