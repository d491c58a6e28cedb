package eventstore

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"hmp/internal/domain"
)

// rowsRead sums the rows that the plan's scans of the events table (or
// its partitions) returned.
func rowsRead(node map[string]any) float64 {
	var n float64
	if rel, _ := node["Relation Name"].(string); len(rel) >= 6 && rel[:6] == "events" {
		n += node["Actual Rows"].(float64) * node["Actual Loops"].(float64)
	}
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			n += rowsRead(k.(map[string]any))
		}
	}
	return n
}

// TestOldestUnpublishedReadsOneRow: the outbox gauge runs every few
// seconds beside the requests, so its cost must not grow with the backlog
// or the table: it reads the first unpublished event through the index,
// one row, however many wait.
func TestOldestUnpublishedReadsOneRow(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	if age, err := b.store.OldestUnpublishedAge(ctx, time.Now()); err != nil || age != 0 {
		t.Fatalf("empty outbox: age %v, err %v; want 0", age, err)
	}
	const backlog = 400
	first := b.event(domain.NewID(time.Now()), 1)
	first.Timestamp = first.Timestamp.Add(-time.Minute)
	events := []domain.Event{first}
	for i := 1; i < backlog; i++ {
		events = append(events, b.event(domain.NewID(time.Now()), 1))
	}
	b.commit(t, events...)
	if _, err := b.pool.Exec(ctx, "ANALYZE events"); err != nil {
		t.Fatal(err)
	}

	now := first.Timestamp.Add(time.Minute + 3*time.Second)
	age, err := b.store.OldestUnpublishedAge(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if age != time.Minute+3*time.Second {
		t.Errorf("age %v, want %v (the first unpublished event's)", age, time.Minute+3*time.Second)
	}

	var plan []map[string]any
	var raw []byte
	if err := b.pool.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+oldestUnpublishedSQL).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &plan); err != nil {
		t.Fatal(err)
	}
	if n := rowsRead(plan[0]["Plan"].(map[string]any)); n > 1 {
		t.Errorf("the gauge read %v events of a backlog of %d; want 1:\n%s", n, backlog, raw)
	}
}
