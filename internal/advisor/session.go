package advisor

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// session is the advisor's one connection and what it learnt of tables.
type session struct {
	conn   *pgx.Conn
	tables map[string]*table
}

// table is what candidates need to know of a table.
type table struct {
	qualified string // schema.table of the table to index (a partition's root)
	name      string
	columns   map[string]bool
	pk        []string
	distinct  map[string]float64
	indexes   []index // valid indexes
	// parts are the partitions of a partitioned table, parents before
	// their children (nil: a plain table); indexRoot maps a partition's
	// index to the parent's index it is attached to, by name: plans scan
	// partitions and name their indexes.
	parts     []partition
	indexRoot map[string]string
}

// partition is one relation below a partitioned table.
type partition struct {
	schema, name             string
	parentSchema, parentName string
	leaf                     bool
}

func (p partition) qualified() string { return ident(p.schema) + "." + ident(p.name) }

// index is an existing index: its columns ("" for an expression) and
// which of them are descending.
type index struct {
	name string
	cols []string
	desc []bool
	// pred are the columns a partial index's predicate names.
	pred []string
}

var (
	paramRef   = regexp.MustCompile(`\$(\d+)`)
	identifier = regexp.MustCompile(`[a-z_][a-z0-9_]*`)
	typedParam = regexp.MustCompile(`(?i)\b(interval|date|timestamptz|timestamp|time|numeric|uuid|text|int|bigint|boolean|jsonb)\s+\$(\d+)`)
)

// explain returns the plan of st: with its arguments (a custom plan), or
// a generic plan when it has parameters but no arguments.
func (s *session) explain(ctx context.Context, st statement) (node, error) {
	n := 0
	for _, m := range paramRef.FindAllStringSubmatch(st.sql, -1) {
		if v, _ := strconv.Atoi(m[1]); v > n {
			n = v
		}
	}
	var raw string
	var err error
	switch {
	case n == 0:
		err = s.conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON, VERBOSE) "+st.sql, pgx.QueryExecModeSimpleProtocol).Scan(&raw)
	case len(st.args) >= n:
		if _, err = s.conn.Exec(ctx, "SET plan_cache_mode = force_custom_plan"); err == nil {
			args := append([]any{pgx.QueryExecModeDescribeExec}, st.args...)
			err = s.conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON, VERBOSE) "+st.sql, args...).Scan(&raw)
		}
	default:
		raw, err = s.explainGeneric(ctx, st.sql, n)
	}
	if err != nil {
		return node{}, fmt.Errorf("explain: %w", err)
	}
	return parsePlan([]byte(raw))
}

// explainGeneric explains a parameterised text without values (as
// pg_stat_statements keeps them): prepared anew each time, because a
// prepared statement's cached plan would not see a new hypothetical index.
func (s *session) explainGeneric(ctx context.Context, sql string, params int) (string, error) {
	// pg_stat_statements makes a typed literal (interval '1 month') into
	// "interval $5", which does not parse: make it a cast.
	sql = typedParam.ReplaceAllString(sql, "$$$2::$1")
	if _, err := s.conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		return "", err
	}
	// Executed with NULL parameters, a generic plan's run-time pruning
	// removes every partition (org_id = NULL matches none) and the plan
	// shows no scan: without pruning it shows the scans of all partitions,
	// which is what any organization's execution could touch.
	if _, err := s.conn.Exec(ctx, "SET enable_partition_pruning = off"); err != nil {
		return "", err
	}
	defer func() {
		_, _ = s.conn.Exec(context.WithoutCancel(ctx), "RESET enable_partition_pruning")
	}()
	if _, err := s.conn.Exec(ctx, "PREPARE hmp_advisor AS "+sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		return "", err
	}
	defer func() {
		_, _ = s.conn.Exec(context.WithoutCancel(ctx), "DEALLOCATE hmp_advisor", pgx.QueryExecModeSimpleProtocol)
	}()
	nulls := strings.TrimSuffix(strings.Repeat("NULL,", params), ",")
	var raw string
	err := s.conn.QueryRow(ctx, "EXPLAIN (FORMAT JSON, VERBOSE) EXECUTE hmp_advisor("+nulls+")", pgx.QueryExecModeSimpleProtocol).Scan(&raw)
	return raw, err
}

// advise explains st, derives its candidates, tries each as a
// hypothetical index and records those that lower its cost in found.
func (s *session) advise(ctx context.Context, st statement, cfg Config, rep *Report, found map[string]*Advice) error {
	base, err := s.explain(ctx, st)
	if err != nil {
		return err
	}
	rep.Statements++
	tried := map[string]bool{}
	// One index per table and statement: the one saving most.
	perTable := map[string]*Advice{}
	for _, a := range accesses(base) {
		if !a.unserved || systemSchema(a.schema) {
			continue
		}
		t, err := s.table(ctx, a.schema, a.table)
		if err != nil {
			return err
		}
		// Of the candidates for this relation, the one saving most wins.
		var best *Advice
		for _, cols := range t.candidates(a) {
			if len(cols) == 0 || t.covered(cols, min(len(eqOf(a, t)), len(cols))) {
				continue
			}
			ddl, stmts := createIndex(t, cols)
			if tried[ddl] {
				continue
			}
			tried[ddl] = true
			rep.Candidates++
			after, err := s.try(ctx, st, t, cols)
			if err != nil {
				return err
			}
			before := base.TotalCost
			if after <= 0 || after >= before || (before-after)/before < cfg.MinGain {
				continue
			}
			if best == nil || after < best.CostAfter {
				best = &Advice{Table: t.qualified, Columns: cols, DDL: ddl, Statements: stmts, CostBefore: before, CostAfter: after}
			}
		}
		if p := perTable[t.qualified]; best != nil && (p == nil || best.CostAfter < p.CostAfter) {
			perTable[t.qualified] = best
		}
	}
	for _, best := range perTable {
		record(found, best, st)
	}
	return nil
}

// record adds st's gain from the index of c to found.
func record(found map[string]*Advice, c *Advice, st statement) {
	before, after := c.CostBefore, c.CostAfter
	adv, ok := found[c.DDL]
	if !ok {
		adv = c
		found[c.DDL] = adv
	}
	adv.Labels = appendNew(adv.Labels, st.label)
	adv.Calls += st.calls
	adv.Score += (before - after) * float64(max(st.calls, 1))
	if !ok || before-after >= adv.CostBefore-adv.CostAfter {
		adv.Label, adv.CostBefore, adv.CostAfter = st.label, before, after
		adv.GainPercent = roundTo(100*(before-after)/before, 1)
	}
}

// try creates cols as a hypothetical index, explains st again and drops
// the index: the cost with it, or 0 when the plan does not use it. On a
// partitioned table the hypothetical index is made on the parent: hypopg
// (1.3) then plans it on every partition, under the parent's index name.
func (s *session) try(ctx context.Context, st statement, t *table, cols []string) (float64, error) {
	var oid uint32
	var name string
	if err := s.conn.QueryRow(ctx, "SELECT indexrelid, indexname FROM hypopg_create_index($1)", createIndexPlain(t, cols)).Scan(&oid, &name); err != nil {
		return 0, fmt.Errorf("hypothetical index on %s: %w", t.qualified, err)
	}
	defer func() { _, _ = s.conn.Exec(context.WithoutCancel(ctx), "SELECT hypopg_drop_index($1)", oid) }()
	plan, err := s.explain(ctx, st)
	if err != nil {
		return 0, err
	}
	if !plan.usesIndex(name) {
		return 0, nil
	}
	return plan.TotalCost, nil
}

func systemSchema(s string) bool {
	return s == "pg_catalog" || s == "information_schema" || strings.HasPrefix(s, "pg_toast")
}

// table loads (once) what the advisor needs of schema.name; a partition
// stands for its partitioned root, where indexes are made.
func (s *session) table(ctx context.Context, schema, name string) (*table, error) {
	key := schema + "." + name
	if t, ok := s.tables[key]; ok {
		return t, nil
	}
	var oid uint32
	t := &table{columns: map[string]bool{}, distinct: map[string]float64{}}
	var reltuples float64
	var nsp string
	err := s.conn.QueryRow(ctx, `
		SELECT r.oid, n.nspname, r.relname, greatest(r.reltuples, 0)
		FROM pg_class c JOIN pg_namespace cn ON cn.oid = c.relnamespace,
		     LATERAL (SELECT coalesce(pg_partition_root(c.oid)::oid, c.oid) AS root) p
		     JOIN pg_class r ON r.oid = p.root JOIN pg_namespace n ON n.oid = r.relnamespace
		WHERE cn.nspname = $1 AND c.relname = $2`, schema, name).Scan(&oid, &nsp, &t.name, &reltuples)
	if err != nil {
		return nil, fmt.Errorf("look up table %s: %w", key, err)
	}
	t.qualified = ident(nsp) + "." + ident(t.name)
	// Every partition stands for the same root: load it once.
	if r, ok := s.tables[t.qualified]; ok {
		s.tables[key] = r
		return r, nil
	}
	rows, err := s.conn.Query(ctx, `
		SELECT a.attname, coalesce(st.n_distinct, 0)
		FROM pg_attribute a
		LEFT JOIN pg_stats st ON st.schemaname = $2 AND st.tablename = $3 AND st.attname = a.attname
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, oid, nsp, t.name)
	if err != nil {
		return nil, fmt.Errorf("look up columns of %s: %w", key, err)
	}
	var col string
	var nd float64
	if _, err := pgx.ForEachRow(rows, []any{&col, &nd}, func() error {
		t.columns[col] = true
		if nd < 0 { // a fraction of the rows
			nd = -nd * reltuples
		}
		t.distinct[col] = nd
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look up columns of %s: %w", key, err)
	}
	rows, err = s.conn.Query(ctx, `
		SELECT i.indexrelid::regclass::text, i.indisprimary, i.indpred IS NOT NULL,
		       array(SELECT coalesce(a.attname, '') FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
		             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord),
		       array(SELECT (o & 1) = 1 FROM unnest(i.indoption::int2[]) WITH ORDINALITY k(o, ord) ORDER BY k.ord),
		       coalesce(pg_get_expr(i.indpred, i.indrelid), '')
		FROM pg_index i WHERE i.indrelid = $1 AND i.indisvalid`, oid)
	if err != nil {
		return nil, fmt.Errorf("look up indexes of %s: %w", key, err)
	}
	var primary, partial bool
	var cols []string
	var desc []bool
	var iname, pred string
	if _, err := pgx.ForEachRow(rows, []any{&iname, &primary, &partial, &cols, &desc, &pred}, func() error {
		if primary {
			t.pk = slices.Clone(cols)
		}
		// A partial index counts as covering its columns: a generic plan
		// (pg_stat_statements' texts, constants made $n) cannot show that
		// its predicate applies, so it would be advised again.
		ix := index{name: iname, cols: slices.Clone(cols), desc: slices.Clone(desc)}
		for _, w := range identifier.FindAllString(pred, -1) {
			if t.columns[w] && !slices.Contains(ix.pred, w) {
				ix.pred = append(ix.pred, w)
			}
		}
		t.indexes = append(t.indexes, ix)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look up indexes of %s: %w", key, err)
	}
	if err := s.loadPartitions(ctx, t, oid); err != nil {
		return nil, fmt.Errorf("look up partitions of %s: %w", key, err)
	}
	s.tables[key] = t
	s.tables[t.qualified] = t
	return t, nil
}

// loadPartitions reads the partitions of the table oid (none: a plain
// table) and which parent index each of their indexes is attached to.
func (s *session) loadPartitions(ctx context.Context, t *table, oid uint32) error {
	rows, err := s.conn.Query(ctx, `
		SELECT cn.nspname, c.relname, pn.nspname, p.relname, pt.isleaf
		FROM pg_partition_tree($1) pt
		JOIN pg_class c ON c.oid = pt.relid JOIN pg_namespace cn ON cn.oid = c.relnamespace
		JOIN pg_class p ON p.oid = pt.parentrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
		WHERE pt.level > 0 ORDER BY pt.level, c.relname`, oid)
	if err != nil {
		return err
	}
	var p partition
	if _, err := pgx.ForEachRow(rows, []any{&p.schema, &p.name, &p.parentSchema, &p.parentName, &p.leaf}, func() error {
		t.parts = append(t.parts, p)
		return nil
	}); err != nil {
		return err
	}
	if len(t.parts) == 0 {
		return nil
	}
	rows, err = s.conn.Query(ctx, `
		SELECT c.relname, r.relname
		FROM pg_partition_tree($1) pt
		JOIN pg_index i ON i.indrelid = pt.relid
		JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_class r ON r.oid = pg_partition_root(i.indexrelid)
		WHERE pt.level > 0 AND r.oid <> c.oid`, oid)
	if err != nil {
		return err
	}
	t.indexRoot = map[string]string{}
	var child, root string
	_, err = pgx.ForEachRow(rows, []any{&child, &root}, func() error {
		t.indexRoot[child] = root
		return nil
	})
	return err
}

// eqOf returns a's equality columns of t in index order: the primary
// key's leading columns first (org_id: every query and every future
// partition key starts there), then the most selective.
func eqOf(a *access, t *table) []string {
	var eq []string
	for _, c := range t.pk {
		if slices.Contains(a.eq, c) {
			eq = append(eq, c)
		}
	}
	var rest []string
	for _, c := range a.eq {
		if t.columns[c] && !slices.Contains(eq, c) {
			rest = append(rest, c)
		}
	}
	slices.SortFunc(rest, func(x, y string) int {
		return cmp.Or(cmp.Compare(t.distinct[y], t.distinct[x]), cmp.Compare(x, y))
	})
	return append(eq, rest...)
}

// candidates returns the index column lists worth trying for a: what
// its filters and sort ask (candidate), and, when it scans an index that
// orders its rows (a LIMIT may rely on that), its equality columns
// followed by that index's remaining columns.
func (t *table) candidates(a *access) [][]string {
	out := [][]string{t.candidate(a)}
	if a.index == "" {
		return out
	}
	eq := eqOf(a, t)
	scanned := a.index
	if r, ok := t.indexRoot[scanned]; ok {
		scanned = r // a partition's index: the parent's stands for it
	}
	for _, ix := range t.indexes {
		if ix.name != scanned && !strings.HasSuffix(ix.name, "."+scanned) {
			continue
		}
		// Skip the index's leading columns the scan pins by equality.
		k := 0
		for k < len(ix.cols) && slices.Contains(eq, ix.cols[k]) {
			k++
		}
		cols := slices.Clone(eq)
		for i := k; i < len(ix.cols) && len(cols) < 6; i++ {
			if ix.cols[i] == "" {
				break
			}
			if slices.Contains(cols, ix.cols[i]) {
				continue
			}
			c := ix.cols[i]
			if ix.desc[i] {
				c += " DESC"
			}
			cols = append(cols, c)
		}
		if len(cols) > len(eq) {
			out = append(out, cols)
		}
	}
	return out
}

// candidate returns the index columns a needs: equality columns, then one
// range column, then the sort keys when the range column leads them or
// there is none. At most 6 columns.
func (t *table) candidate(a *access) []string {
	eq := eqOf(a, t)
	cols := slices.Clone(eq)
	rng := ""
	for _, c := range a.rng {
		if t.columns[c] && !slices.Contains(eq, c) {
			rng = c
			break
		}
	}
	var sorted []string
	for _, k := range a.sort {
		if !t.columns[k.col] {
			sorted = nil
			break
		}
		if slices.Contains(eq, k.col) {
			continue
		}
		if k.desc {
			sorted = append(sorted, k.col+" DESC")
		} else {
			sorted = append(sorted, k.col)
		}
	}
	if len(sorted) > 0 && (rng == "" || strings.Fields(sorted[0])[0] == rng) {
		cols = append(cols, sorted...)
	} else if rng != "" {
		cols = append(cols, rng)
	}
	if len(cols) > 6 {
		cols = cols[:6]
	}
	return cols
}

// covered reports whether an existing index already leads with cols: its
// first eq columns in any order, then the rest in order.
func (t *table) covered(cols []string, eq int) bool {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = strings.Fields(c)[0]
	}
	for _, ix := range t.indexes {
		idx := ix.cols
		// A partial index serves the columns of its predicate (status =
		// 'pending') without holding them.
		want, k := names, eq
		if len(ix.pred) > 0 {
			want, k = nil, 0
			for i, n := range names {
				if !slices.Contains(ix.pred, n) {
					want = append(want, n)
					if i < eq {
						k++
					}
				}
			}
		}
		if led(idx, want, k) {
			return true
		}
	}
	return false
}

// led reports whether idx leads with names: its first eq in any order,
// then the rest in order.
func led(idx, names []string, eq int) bool {
	if len(idx) < len(names) {
		return false
	}
	head := slices.Clone(idx[:eq])
	want := slices.Clone(names[:eq])
	slices.Sort(head)
	slices.Sort(want)
	return slices.Equal(head, want) && slices.Equal(idx[eq:len(names)], names[eq:])
}

// createIndex is the advised DDL, built without blocking writes: the
// script and its statements, each to run alone (CONCURRENTLY cannot run
// in a transaction). A partitioned table's index cannot be built
// CONCURRENTLY, so it takes PostgreSQL's documented steps: the parent's
// index ON ONLY the parent (invalid, instant), each partition's index
// built CONCURRENTLY, then attached; the parent's index is valid once
// every partition's is attached.
func createIndex(t *table, cols []string) (string, []string) {
	list := columnList(cols)
	if len(t.parts) == 0 {
		stmt := fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s (%s)", indexName(t.name, cols), t.qualified, list)
		return stmt, []string{stmt}
	}
	stmts := []string{fmt.Sprintf("CREATE INDEX %s ON ONLY %s (%s)", indexName(t.name, cols), t.qualified, list)}
	for _, p := range t.parts {
		if p.leaf {
			stmts = append(stmts, fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s (%s)", indexName(p.name, cols), p.qualified(), list))
		} else {
			stmts = append(stmts, fmt.Sprintf("CREATE INDEX %s ON ONLY %s (%s)", indexName(p.name, cols), p.qualified(), list))
		}
		// An index lives in its table's schema.
		stmts = append(stmts, fmt.Sprintf("ALTER INDEX %s.%s ATTACH PARTITION %s.%s",
			ident(p.parentSchema), indexName(p.parentName, cols), ident(p.schema), indexName(p.name, cols)))
	}
	return strings.Join(stmts, ";\n"), stmts
}

// indexName is the advised index's name on table: at most 63 bytes.
func indexName(table string, cols []string) string {
	name := table + "_" + strings.Join(colNames(cols), "_")
	if len(name) > 59 {
		name = name[:59]
	}
	return ident(name + "_idx")
}

// createIndexPlain is the statement hypopg is given.
func createIndexPlain(t *table, cols []string) string {
	return fmt.Sprintf("CREATE INDEX ON %s (%s)", t.qualified, columnList(cols))
}

func colNames(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = strings.Fields(c)[0]
	}
	return out
}

func columnList(cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		name, dir, _ := strings.Cut(c, " ")
		out[i] = strings.TrimSpace(ident(name) + " " + dir)
	}
	return strings.Join(out, ", ")
}

var simpleIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ident quotes a name unless it is plain lower case and no keyword that a
// column list would trip on.
func ident(s string) string {
	switch s {
	case "all", "and", "any", "array", "as", "asc", "case", "check", "collate", "column", "constraint", "create",
		"date", "default", "desc", "distinct", "do", "else", "end", "for", "from", "group", "having", "in", "limit",
		"not", "null", "offset", "on", "or", "order", "select", "table", "then", "time", "timestamp", "to", "user",
		"using", "when", "where", "with":
		return pgx.Identifier{s}.Sanitize()
	}
	if simpleIdent.MatchString(s) {
		return s
	}
	return pgx.Identifier{s}.Sanitize()
}

func roundTo(v float64, places int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', places, 64), 64)
	return f
}
