package partitions_test

import (
	"context"
	"testing"
)

// platformWide are the tables whose keys do not lead with the organization,
// and why: the schema stays distributable by org_id (see the README).
var platformWide = map[string]string{
	"user_logins":     "login starts from an email without knowing the organization; emails are unique platform-wide",
	"relay_state":     "the outbox relay's one cursor row",
	"schema_settings": "the schema's creation-time choices",
	"orgs":            "the organizations themselves: id is the org_id",
}

// TestNoCrossOrganizationKeys: every unique key includes org_id and every
// foreign key joins rows of one organization (org_id on both sides), but
// for the platform-wide tables listed with their reason; so the schema can
// be distributed by org_id without a key spanning nodes.
func TestNoCrossOrganizationKeys(t *testing.T) {
	ctx := context.Background()
	pool := db.NewPool(t)
	rows, err := pool.Query(ctx, `
		SELECT c.relname, ci.relname
		FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ci ON ci.oid = i.indexrelid
		WHERE i.indisunique AND c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
		  AND NOT c.relispartition AND c.relname NOT LIKE '%schema_version'
		  AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k
		                  WHERE a.attname = 'org_id')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, index string
		if err := rows.Scan(&table, &index); err != nil {
			t.Fatal(err)
		}
		if platformWide[table] == "" {
			t.Errorf("unique key %s of %s does not include org_id", index, table)
		}
	}
	rows.Close()
	rows, err = pool.Query(ctx, `
		SELECT c.conrelid::regclass::text, c.conname,
		       EXISTS (SELECT 1 FROM unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k WHERE a.attname = 'org_id'),
		       EXISTS (SELECT 1 FROM unnest(c.confkey) k JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k
		               WHERE a.attname = 'org_id' OR (c.confrelid = 'orgs'::regclass AND a.attname = 'id'))
		FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
		WHERE c.contype = 'f' AND NOT r.relispartition AND r.relnamespace = 'public'::regnamespace`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var table, name string
		var from, to bool
		if err := rows.Scan(&table, &name, &from, &to); err != nil {
			t.Fatal(err)
		}
		n++
		if !from || !to {
			t.Errorf("foreign key %s of %s does not join on org_id", name, table)
		}
	}
	rows.Close()
	if n < 5 {
		t.Errorf("only %d foreign keys seen", n)
	}
}
