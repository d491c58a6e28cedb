package partitions

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
)

// Partition is the load of one partition, from the statistics views:
// Rows is the live-row estimate of pg_stat_user_tables (exact after an
// ANALYZE, within a few percent otherwise), Bytes the table with its
// indexes and TOAST, the scans counts since the statistics were reset.
type Partition struct {
	Table     string `json:"table"`
	Partition string `json:"partition"`
	Remainder int    `json:"remainder"`
	Modulus   int    `json:"modulus"`
	Rows      int64  `json:"rows"`
	Bytes     int64  `json:"bytes"`
	SeqScans  int64  `json:"seqScans"`
	IdxScans  int64  `json:"idxScans"`
}

// Spread is how unevenly a table's rows and bytes fall on its partitions:
// the largest partition over the mean (1 is perfectly even).
type Spread struct {
	Table      string  `json:"table"`
	Partitions int     `json:"partitions"`
	Rows       int64   `json:"rows"`
	Bytes      int64   `json:"bytes"`
	RowsSpread float64 `json:"rowsSpread"`
	SizeSpread float64 `json:"sizeSpread"`
}

var bound = regexp.MustCompile(`(?i)modulus (\d+), remainder (\d+)`)

// Inspect returns every hash partition of every partitioned table.
func Inspect(ctx context.Context, db DB) ([]Partition, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid),
		       coalesce(s.n_live_tup, 0), pg_total_relation_size(c.oid),
		       coalesce(s.seq_scan, 0), coalesce(s.idx_scan, 0)
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_partitioned_table pt ON pt.partrelid = p.oid AND pt.partstrat = 'h'
		LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
		WHERE p.relnamespace = 'public'::regnamespace
		ORDER BY p.relname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("read the partitions: %w", err)
	}
	defer rows.Close()
	var out []Partition
	for rows.Next() {
		var p Partition
		var b string
		if err := rows.Scan(&p.Table, &p.Partition, &b, &p.Rows, &p.Bytes, &p.SeqScans, &p.IdxScans); err != nil {
			return nil, err
		}
		if m := bound.FindStringSubmatch(b); m != nil {
			p.Modulus, _ = strconv.Atoi(m[1])
			p.Remainder, _ = strconv.Atoi(m[2])
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Spreads summarizes parts per table, in the order given.
func Spreads(parts []Partition) []Spread {
	var out []Spread
	idx := map[string]int{}
	maxRows, maxBytes := map[string]int64{}, map[string]int64{}
	for _, p := range parts {
		i, ok := idx[p.Table]
		if !ok {
			i = len(out)
			idx[p.Table] = i
			out = append(out, Spread{Table: p.Table})
		}
		s := &out[i]
		s.Partitions++
		s.Rows += p.Rows
		s.Bytes += p.Bytes
		maxRows[p.Table] = max(maxRows[p.Table], p.Rows)
		maxBytes[p.Table] = max(maxBytes[p.Table], p.Bytes)
	}
	for i := range out {
		s := &out[i]
		if s.Rows > 0 {
			s.RowsSpread = float64(maxRows[s.Table]) / (float64(s.Rows) / float64(s.Partitions))
		}
		if s.Bytes > 0 {
			s.SizeSpread = float64(maxBytes[s.Table]) / (float64(s.Bytes) / float64(s.Partitions))
		}
	}
	return out
}

// Home is the partition of each partitioned table an organization's rows
// live in.
type Home struct {
	Table     string `json:"table"`
	Partition string `json:"partition"`
	Remainder int    `json:"remainder"`
	// Rows is the organization's row count there.
	Rows int64 `json:"rows"`
}

// OrgHome returns where org's rows live, asking PostgreSQL's own
// partition hash (satisfies_hash_partition) for each partition rather
// than computing the hash here.
func OrgHome(ctx context.Context, db DB, org string) ([]Home, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT p.relname, c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_partitioned_table pt ON pt.partrelid = p.oid AND pt.partstrat = 'h'
		WHERE p.relnamespace = 'public'::regnamespace
		ORDER BY p.relname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("read the partitions: %w", err)
	}
	type cand struct {
		table, part string
		mod, rem    int
	}
	var cands []cand
	for rows.Next() {
		var c cand
		var b string
		if err := rows.Scan(&c.table, &c.part, &b); err != nil {
			rows.Close()
			return nil, err
		}
		m := bound.FindStringSubmatch(b)
		if m == nil {
			continue
		}
		c.mod, _ = strconv.Atoi(m[1])
		c.rem, _ = strconv.Atoi(m[2])
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Home
	for _, c := range cands {
		var in bool
		err := db.QueryRowContext(ctx, `SELECT satisfies_hash_partition(to_regclass($1)::oid, $2, $3, $4::uuid)`,
			ident(c.table), c.mod, c.rem, org).Scan(&in)
		if err != nil {
			return nil, fmt.Errorf("hash of organization %s: %w", org, err)
		}
		if !in {
			continue
		}
		h := Home{Table: c.table, Partition: c.part, Remainder: c.rem}
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s = $1`, ident(c.part), ident(Key)), org).Scan(&h.Rows); err != nil {
			return nil, fmt.Errorf("rows of organization %s: %w", org, err)
		}
		out = append(out, h)
	}
	return out, nil
}
