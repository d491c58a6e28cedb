// Package advisor proposes indexes that the slowest statements need and
// proves each with a hypothetical index: it reads the top statements of
// pg_stat_statements and the query tracer's slow ones (with a sample of
// their arguments), explains each, derives candidate indexes from the
// plan's filters and sorts (equality columns first, then one range
// column, then the sort keys), skips what an existing index already
// covers, and keeps a candidate only when hypopg's hypothetical index
// lowers the statement's estimated cost.
package advisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"hmp/internal/postgres"
)

// ErrNoHypoPG is returned when the database cannot make hypothetical
// indexes: without them no advice can be proven.
var ErrNoHypoPG = errors.New("index advice needs the hypopg extension, which this database does not have: install it on the server (Debian: apt-get install postgresql-15-hypopg; scripts/deps.sh does) and run CREATE EXTENSION hypopg, or let hmp's embedded PostgreSQL create it")

// Config tunes one run. The zero value of each field means its default.
type Config struct {
	// Top is how many statements to take from pg_stat_statements, by total
	// and by mean execution time each. Default 20.
	Top int
	// MinGain is the smallest fraction of a statement's estimated cost an
	// index must save to be advised. Default 0.05 (5 %).
	MinGain float64
	// Samples are the tracer's slow statements, with arguments: explained
	// with those values (a custom plan) rather than a generic plan.
	Samples []postgres.SlowStatement
	// Labels names SQL texts (the tracer's labels, by text); a
	// pg_stat_statements text matches by shape (its constants are $n).
	// Unknown: the statement's "-- name:" comment, else its queryid.
	Labels map[string]string
}

func (c Config) withDefaults() Config {
	if c.Top <= 0 {
		c.Top = 20
	}
	if c.MinGain <= 0 {
		c.MinGain = 0.05
	}
	return c
}

// Advice is one proven index.
type Advice struct {
	// Table is the schema-qualified table; Columns the index's keys in
	// order ("col" or "col DESC").
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	// DDL creates the index without blocking writes: one CREATE INDEX
	// CONCURRENTLY, or on a partitioned table (which cannot build one
	// CONCURRENTLY) a script: CREATE INDEX ON ONLY the parent, then per
	// partition CREATE INDEX CONCURRENTLY and ALTER INDEX … ATTACH
	// PARTITION. Statements are its statements, each to run alone (not in
	// a transaction), in order.
	DDL        string   `json:"ddl"`
	Statements []string `json:"statements"`
	// Label is the statement that gains most; Labels every statement that
	// gains.
	Label  string   `json:"label"`
	Labels []string `json:"labels"`
	// CostBefore and CostAfter are the planner's total cost of Label's
	// statement without and with the index; GainPercent the saving.
	CostBefore  float64 `json:"costBefore"`
	CostAfter   float64 `json:"costAfter"`
	GainPercent float64 `json:"gainPercent"`
	// Calls is how often the gaining statements ran (pg_stat_statements,
	// else the tracer's slow count); Score = cost saved × calls, the
	// ranking.
	Calls int64   `json:"calls"`
	Score float64 `json:"score"`
}

// Report is the result of one run.
type Report struct {
	// StatStatements tells whether pg_stat_statements was read.
	StatStatements bool `json:"statStatements"`
	// Statements is how many statements were explained; Candidates how
	// many candidate indexes were tried.
	Statements int `json:"statementsExamined"`
	Candidates int `json:"candidatesTried"`
	// Advice lists the indexes that lower a cost, best first.
	Advice []Advice `json:"advice"`
	// Notes say what limited the run (no pg_stat_statements, statements
	// that could not be explained).
	Notes []string `json:"notes,omitempty"`
}

// statement is one statement to explain.
type statement struct {
	label string
	sql   string
	args  []any // nil: a generic plan
	calls int64
}

// Advise runs the advisor on one connection of pool (hypothetical indexes
// live in one session) and leaves no hypothetical index behind.
func Advise(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("advise: acquire connection: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()
	if err := ensureHypoPG(ctx, c); err != nil {
		return nil, err
	}
	cleanup := func() {
		ctx := context.WithoutCancel(ctx)
		_, _ = c.Exec(ctx, "SELECT hypopg_reset()")
		_, _ = c.Exec(ctx, "RESET plan_cache_mode")
	}
	cleanup()
	defer cleanup()

	rep := &Report{Advice: []Advice{}}
	stmts, err := collect(ctx, c, cfg, rep)
	if err != nil {
		return nil, err
	}
	s := &session{conn: c, tables: map[string]*table{}}
	found := map[string]*Advice{}
	for _, st := range stmts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.advise(ctx, st, cfg, rep, found); err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %v", st.label, err))
		}
	}
	for _, a := range found {
		rep.Advice = append(rep.Advice, *a)
	}
	slices.SortFunc(rep.Advice, func(a, b Advice) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.DDL, b.DDL))
	})
	return rep, nil
}

// ensureHypoPG creates the extension when the server has it and it is
// missing from the database; ErrNoHypoPG when it cannot be had.
func ensureHypoPG(ctx context.Context, c *pgx.Conn) error {
	var installed, available bool
	err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg'),
		EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')`).Scan(&installed, &available)
	if err != nil {
		return fmt.Errorf("advise: look up hypopg: %w", err)
	}
	if installed {
		return nil
	}
	if !available {
		return ErrNoHypoPG
	}
	if _, err := c.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS hypopg"); err != nil {
		return fmt.Errorf("%w (CREATE EXTENSION hypopg failed: %v)", ErrNoHypoPG, err)
	}
	return nil
}

// explainableRE keeps statements whose plan can show a missing index
// (loads, DDL and ANALYZE top the statistics after a seed; they need
// none); internalRE drops statements about the catalog or the advisor's
// own tools. Both in PostgreSQL's and Go's regular expression dialects.
const (
	explainableRE = `^\s*(--[^\n]*\n\s*)*(select|with|update|delete)\s`
	internalRE    = `pg_catalog|pg_stat|hypopg|pg_extension|pg_class|pg_index|pg_attribute|pg_namespace|information_schema|explain |goose_db_version|pg_database`
)

var (
	explainable = regexp.MustCompile(`(?i)` + explainableRE)
	internal    = regexp.MustCompile(`(?i)` + internalRE)
)

// collect gathers the statements to explain: the tracer's samples first
// (they carry arguments), then pg_stat_statements' top ones.
func collect(ctx context.Context, c *pgx.Conn, cfg Config, rep *Report) ([]statement, error) {
	var out []statement
	seen := map[string]int{}
	for _, s := range cfg.Samples {
		if !explainable.MatchString(s.SQL) || internalSQL(s.SQL) {
			continue
		}
		if _, ok := seen[shape(s.SQL)]; ok {
			continue
		}
		seen[shape(s.SQL)] = len(out)
		out = append(out, statement{label: s.Label, sql: s.SQL, args: s.Args, calls: s.Count})
	}
	labels := make(map[string]string, len(cfg.Labels))
	for sql, l := range cfg.Labels {
		labels[shape(sql)] = l
	}
	ok, err := statStatements(ctx, c)
	if err != nil {
		return nil, err
	}
	rep.StatStatements = ok
	if !ok {
		rep.Notes = append(rep.Notes, "pg_stat_statements is not loaded (shared_preload_libraries) or not created in this database: only the tracer's slow statements were examined")
		return out, nil
	}
	rows, err := c.Query(ctx, `
		WITH s AS (
			SELECT queryid, query, calls, total_exec_time, mean_exec_time
			FROM pg_stat_statements
			WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel
			  AND query ~* $2 AND query !~* $3)
		SELECT queryid, query, calls FROM (
			(SELECT * FROM s ORDER BY total_exec_time DESC LIMIT $1)
			UNION
			(SELECT * FROM s ORDER BY mean_exec_time DESC LIMIT $1)) t
		ORDER BY total_exec_time DESC`, cfg.Top, explainableRE, internalRE)
	if err != nil {
		return nil, fmt.Errorf("advise: read pg_stat_statements: %w", err)
	}
	type top struct {
		QueryID int64
		Query   string
		Calls   int64
	}
	tops, err := pgx.CollectRows(rows, pgx.RowToStructByPos[top])
	if err != nil {
		return nil, fmt.Errorf("advise: read pg_stat_statements: %w", err)
	}
	for _, t := range tops {
		if !explainable.MatchString(t.Query) || internalSQL(t.Query) {
			continue
		}
		// pg_stat_statements replaced the text's constants by $n: the
		// same statement as a sample's when the shapes match.
		if i, ok := seen[shape(t.Query)]; ok {
			out[i].calls = max(out[i].calls, t.Calls)
			continue
		}
		label, ok := labels[shape(t.Query)]
		if !ok {
			label = nameComment(t.Query)
		}
		if label == "" {
			label = "queryid " + strconv.FormatInt(t.QueryID, 10)
		}
		seen[shape(t.Query)] = len(out)
		out = append(out, statement{label: label, sql: t.Query, calls: t.Calls})
	}
	return out, nil
}

// statStatements makes sure the pg_stat_statements view exists when the
// library is loaded, and reports whether it can be read.
func statStatements(ctx context.Context, c *pgx.Conn) (bool, error) {
	var loaded, created bool
	err := c.QueryRow(ctx, `SELECT current_setting('shared_preload_libraries') ~ '(^|,)\s*pg_stat_statements\s*(,|$)',
		EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')`).Scan(&loaded, &created)
	if err != nil {
		return false, fmt.Errorf("advise: look up pg_stat_statements: %w", err)
	}
	if !loaded {
		return false, nil
	}
	if !created {
		// Tolerated: an external database may not let us create it.
		if _, err := c.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
			return false, nil
		}
	}
	return true, nil
}

// internalSQL reports statements about the catalog or the advisor's own
// tools, which no index of ours serves.
func internalSQL(sql string) bool { return internal.MatchString(sql) }

// ResetStats empties pg_stat_statements (of every database), so that the
// next advice reflects only the workload run since.
func ResetStats(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
		return fmt.Errorf("reset pg_stat_statements: %w", err)
	}
	return nil
}

var constants = regexp.MustCompile(`\$\d+|'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b`)

// shape is sql with parameters and constants blanked and spaces
// collapsed: the text pg_stat_statements would record, compared loosely.
func shape(sql string) string {
	return strings.Join(strings.Fields(constants.ReplaceAllString(sql, "?")), " ")
}

func nameComment(sql string) string {
	s := strings.TrimSpace(sql)
	if !strings.HasPrefix(s, "-- name:") {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimPrefix(s, "-- name:"), "\n")
	if f := strings.Fields(line); len(f) > 0 {
		return f[0]
	}
	return ""
}
