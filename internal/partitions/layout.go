// Package partitions lays the tables that grow with use out as hash
// partitions by org_id, moves an unpartitioned schema there online, and
// reports how evenly the organizations spread over the partitions.
//
// It reads the catalog only: a table's columns, keys, indexes, triggers and
// storage options are taken from its live definition, so columns that earlier
// migrations added carry over, and it never reads business columns except
// in the generic row copy of the online migration.
package partitions

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Key is the partition key of every partitioned table.
const Key = "org_id"

// DB is what the catalog reads and the DDL need: *sql.DB, *sql.Conn and
// *sql.Tx (goose hands a Go migration a *sql.Tx).
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Table states recorded in schema_settings under "partition_by_org.<table>".
const (
	StatePending     = "pending"     // to partition: hmp partitions migrate
	StatePartitioned = "partitioned" // partitioned by hash of org_id
)

const stateKey = "partition_by_org."

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// Count returns the partition count recorded when the schema was created
// (0: unpartitioned).
func Count(ctx context.Context, db DB) (int, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM schema_settings WHERE name = 'partitions'`).Scan(&v)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the partition count: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("partition count %q: %w", v, err)
	}
	return n, nil
}

func setState(ctx context.Context, db DB, table, state string) error {
	_, err := db.ExecContext(ctx, `
		INSERT INTO schema_settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, stateKey+table, state)
	if err != nil {
		return fmt.Errorf("record the state of %s: %w", table, err)
	}
	return nil
}

// States returns the tables to partition by org_id and their state, by
// name.
func States(ctx context.Context, db DB) ([]TableState, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT substr(s.name, length($1) + 1), s.value
		FROM schema_settings s WHERE s.name LIKE $1 || '%'
		ORDER BY s.name`, stateKey)
	if err != nil {
		return nil, fmt.Errorf("read the partitioned tables: %w", err)
	}
	defer rows.Close()
	var out []TableState
	for rows.Next() {
		var t TableState
		if err := rows.Scan(&t.Table, &t.State); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TableState is a table to partition by org_id and where it is.
type TableState struct {
	Table, State string
}

// isPartitioned tells whether table is a partitioned table.
func isPartitioned(ctx context.Context, db DB, table string) (bool, error) {
	var kind string
	err := db.QueryRowContext(ctx, `SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)`, table).Scan(&kind)
	if err != nil {
		return false, fmt.Errorf("look up table %s: %w", table, err)
	}
	return kind == "p", nil
}

// constraintDef is a constraint or index of the live table and the name it
// takes on the partitioned copy until the switch.
type constraintDef struct {
	name, temp string
	def        string // pg_get_constraintdef, or the index definition after USING
	unique     bool
	index      bool // a plain index, not a constraint
	keyIndex   bool // a primary key or unique constraint: it owns an index
}

// layout is a table's partitioned copy: built beside the table, filled,
// then switched in under the table's name.
type layout struct {
	table, copy string
	parts       int
	defs        []constraintDef
	identity    []string // identity columns
	keyCols     []string // primary key columns
	keyTypes    []string // their types
	triggers    []triggerDef
}

// triggerDef is a user trigger of the live table (the append-only guard of
// events, for one). The copy only gets it at the switch, once it has the
// table's name: the definition then applies verbatim, and the copy's fill
// (the online catch-up deletes and re-inserts rows) never trips it.
type triggerDef struct {
	name, def string
	enabled   string // pg_trigger.tgenabled: O (origin), D, R or A
	comment   sql.NullString
}

func (l *layout) partName(i int) string { return fmt.Sprintf("%s_p%d", l.table, i) }

// tempName is name's stand-in on the copy: index names are unique per
// schema, so the copy's cannot take the table's until the table is gone.
func tempName(name string) string {
	const suffix = "__part"
	if len(name)+len(suffix) > 63 {
		name = name[:63-len(suffix)]
	}
	return name + suffix
}

// plan reads table's definition.
func plan(ctx context.Context, db DB, table string, parts int) (*layout, error) {
	if parts < 1 {
		return nil, fmt.Errorf("partition count must be at least 1, got %d", parts)
	}
	l := &layout{table: table, copy: tempName(table), parts: parts}
	rows, err := db.QueryContext(ctx, `
		SELECT c.conname, c.contype::text, pg_get_constraintdef(c.oid)
		FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype IN ('p', 'u', 'c', 'f', 'x')
		ORDER BY c.contype = 'f', c.conname`, table)
	if err != nil {
		return nil, fmt.Errorf("read the constraints of %s: %w", table, err)
	}
	for rows.Next() {
		var d constraintDef
		var typ string
		if err := rows.Scan(&d.name, &typ, &d.def); err != nil {
			rows.Close()
			return nil, err
		}
		d.keyIndex = typ == "p" || typ == "u" || typ == "x"
		d.temp = d.name
		if d.keyIndex {
			d.temp = tempName(d.name)
		}
		l.defs = append(l.defs, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.QueryContext(ctx, `
		SELECT ci.relname, i.indisunique, pg_get_indexdef(i.indexrelid)
		FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid
		WHERE i.indrelid = to_regclass($1)
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
		ORDER BY ci.relname`, table)
	if err != nil {
		return nil, fmt.Errorf("read the indexes of %s: %w", table, err)
	}
	for rows.Next() {
		var d constraintDef
		var def string
		if err := rows.Scan(&d.name, &d.unique, &def); err != nil {
			rows.Close()
			return nil, err
		}
		// "CREATE [UNIQUE] INDEX name ON [ONLY] table USING method (...)":
		// everything from the access method on is the index itself.
		_, after, ok := strings.Cut(def, " USING ")
		if !ok {
			rows.Close()
			return nil, fmt.Errorf("index %s: unexpected definition %q", d.name, def)
		}
		d.def, d.index, d.temp = "USING "+after, true, tempName(d.name)
		l.defs = append(l.defs, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.QueryContext(ctx, `
		SELECT a.attname, a.attidentity <> '' FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, table)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	hasKey := false
	for rows.Next() {
		var name string
		var identity bool
		if err := rows.Scan(&name, &identity); err != nil {
			rows.Close()
			return nil, err
		}
		hasKey = hasKey || name == Key
		if identity {
			l.identity = append(l.identity, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !hasKey {
		return nil, fmt.Errorf("table %s has no %s column", table, Key)
	}
	if l.triggers, err = readTriggers(ctx, db, table); err != nil {
		return nil, err
	}
	keyRows, err := db.QueryContext(ctx, `
		SELECT a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_constraint c, unnest(c.conkey) WITH ORDINALITY k(attnum, n), pg_attribute a
		WHERE c.conrelid = to_regclass($1) AND c.contype = 'p' AND a.attrelid = c.conrelid AND a.attnum = k.attnum
		ORDER BY k.n`, table)
	if err != nil {
		return nil, fmt.Errorf("read the primary key of %s: %w", table, err)
	}
	for keyRows.Next() {
		var c, typ string
		if err := keyRows.Scan(&c, &typ); err != nil {
			keyRows.Close()
			return nil, err
		}
		l.keyCols = append(l.keyCols, c)
		l.keyTypes = append(l.keyTypes, typ)
	}
	keyRows.Close()
	if err := keyRows.Err(); err != nil {
		return nil, err
	}
	if len(l.keyCols) == 0 || l.keyCols[0] != Key {
		return nil, fmt.Errorf("the primary key of %s must start with %s, got %v", table, Key, l.keyCols)
	}
	return l, nil
}

// create makes the empty partitioned copy with its partitions, keys and
// indexes (under their temporary names).
func (l *layout) create(ctx context.Context, db DB) error {
	var opts sql.NullString
	err := db.QueryRowContext(ctx, `SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = to_regclass($1)`, l.table).Scan(&opts)
	if err != nil {
		return fmt.Errorf("read the storage options of %s: %w", l.table, err)
	}
	// A partitioned table stores nothing itself: its storage options
	// (fillfactor) go to every partition.
	with := ""
	if opts.Valid && opts.String != "" {
		with = " WITH (" + opts.String + ")"
	}
	stmts := []string{fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED
		INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS) PARTITION BY HASH (%s)`,
		ident(l.copy), ident(l.table), ident(Key))}
	for i := range l.parts {
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE %s PARTITION OF %s FOR VALUES WITH (MODULUS %d, REMAINDER %d)%s`,
			ident(l.partName(i)), ident(l.copy), l.parts, i, with))
	}
	for _, d := range l.defs {
		if d.index {
			unique := ""
			if d.unique {
				unique = "UNIQUE "
			}
			stmts = append(stmts, fmt.Sprintf(`CREATE %sINDEX %s ON %s %s`, unique, ident(d.temp), ident(l.copy), d.def))
		} else {
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s %s`, ident(l.copy), ident(d.temp), d.def))
		}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("partition %s: %s: %w", l.table, firstLine(s), err)
		}
	}
	return nil
}

// swap drops the table and gives its name, its constraints' and indexes'
// names, its identity sequences' positions and its triggers to the
// partitioned copy.
// The caller holds the table locked (or it is empty) and has copied every
// row.
func (l *layout) swap(ctx context.Context, db DB) error {
	var stmts []string
	for _, col := range l.identity {
		var oldSeq, newSeq string
		err := db.QueryRowContext(ctx, `SELECT pg_get_serial_sequence($1, $3), pg_get_serial_sequence($2, $3)`,
			ident(l.table), ident(l.copy), col).Scan(&oldSeq, &newSeq)
		if err != nil {
			return fmt.Errorf("identity of %s.%s: %w", l.table, col, err)
		}
		var last int64
		var called bool
		if err := db.QueryRowContext(ctx, `SELECT last_value, is_called FROM `+oldSeq).Scan(&last, &called); err != nil {
			return fmt.Errorf("identity of %s.%s: %w", l.table, col, err)
		}
		if _, err := db.ExecContext(ctx, `SELECT setval($1::regclass, $2, $3)`, newSeq, last, called); err != nil {
			return fmt.Errorf("identity of %s.%s: %w", l.table, col, err)
		}
		// The old sequence goes with its table; the new one takes its name.
		oldName := oldSeq[strings.LastIndex(oldSeq, ".")+1:]
		stmts = append(stmts, fmt.Sprintf(`ALTER SEQUENCE %s RENAME TO %s`, newSeq, oldName))
	}
	head := []string{
		fmt.Sprintf(`DROP TABLE %s`, ident(l.table)),
		fmt.Sprintf(`ALTER TABLE %s RENAME TO %s`, ident(l.copy), ident(l.table)),
	}
	stmts = append(head, stmts...)
	for _, d := range l.defs {
		if d.temp == d.name {
			continue
		}
		if d.index {
			stmts = append(stmts, fmt.Sprintf(`ALTER INDEX %s RENAME TO %s`, ident(d.temp), ident(d.name)))
		} else {
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s RENAME CONSTRAINT %s TO %s`, ident(l.table), ident(d.temp), ident(d.name)))
		}
	}
	stmts = append(stmts, l.triggerStmts()...)
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("switch %s to partitions: %s: %w", l.table, s, err)
		}
	}
	return PartitionTriggers(ctx, db, l.table)
}

// PartitionTriggers gives every partition of table the statement-level
// triggers of table it lacks, and answers nil for a table that is not
// partitioned. PostgreSQL clones row-level triggers to partitions but not
// statement-level ones, and a statement naming a partition fires only the
// partition's own: without a copy, TRUNCATE events_p3 passes the append-only
// guard of events. Idempotent; every path that partitions a table runs it,
// and 'hmp partitions migrate' runs it again for partitions attached by hand.
func PartitionTriggers(ctx context.Context, db DB, table string) error {
	done, err := isPartitioned(ctx, db, table)
	if err != nil || !done {
		return err
	}
	// tgtype bit 0 is ROW: a clear bit is a statement-level trigger.
	// pg_get_triggerdef names the table as format('%I.%I') does.
	rows, err := db.QueryContext(ctx, `
		SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text,
		       format('%I.%I', pn.nspname, pc.relname), format('%I.%I', n.nspname, c.relname)
		FROM pg_trigger t
		JOIN pg_class pc ON pc.oid = t.tgrelid
		JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		JOIN pg_partition_tree(to_regclass($1)) p ON p.level > 0
		JOIN pg_class c ON c.oid = p.relid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE t.tgrelid = to_regclass($1) AND NOT t.tgisinternal AND t.tgtype & 1 = 0
		  AND NOT EXISTS (SELECT 1 FROM pg_trigger x WHERE x.tgrelid = p.relid AND x.tgname = t.tgname)
		ORDER BY c.relname, t.tgname`, table)
	if err != nil {
		return fmt.Errorf("read the statement triggers of %s: %w", table, err)
	}
	var stmts []string
	for rows.Next() {
		var name, def, enabled, parent, part string
		if err := rows.Scan(&name, &def, &enabled, &parent, &part); err != nil {
			rows.Close()
			return fmt.Errorf("read the statement triggers of %s: %w", table, err)
		}
		on := " ON " + parent + " "
		if !strings.Contains(def, on) {
			rows.Close()
			return fmt.Errorf("trigger %s of %s: unexpected definition %q", name, table, def)
		}
		stmts = append(stmts, strings.Replace(def, on, " ON "+part+" ", 1))
		switch enabled {
		case "D":
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s DISABLE TRIGGER %s`, part, ident(name)))
		case "R":
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ENABLE REPLICA TRIGGER %s`, part, ident(name)))
		case "A":
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ENABLE ALWAYS TRIGGER %s`, part, ident(name)))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the statement triggers of %s: %w", table, err)
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("copy the statement triggers of %s to its partitions: %s: %w", table, s, err)
		}
	}
	return nil
}

// readTriggers reads the user triggers of table: not the internal ones
// (foreign keys recreate theirs) nor the change log of an interrupted
// online move (see track).
func readTriggers(ctx context.Context, db DB, table string) ([]triggerDef, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text, obj_description(t.oid, 'pg_trigger')
		FROM pg_trigger t
		WHERE t.tgrelid = to_regclass($1) AND NOT t.tgisinternal AND t.tgname <> $2
		ORDER BY t.tgname`, table, logTrigger)
	if err != nil {
		return nil, fmt.Errorf("read the triggers of %s: %w", table, err)
	}
	defer rows.Close()
	var out []triggerDef
	for rows.Next() {
		var d triggerDef
		if err := rows.Scan(&d.name, &d.def, &d.enabled, &d.comment); err != nil {
			return nil, fmt.Errorf("read the triggers of %s: %w", table, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the triggers of %s: %w", table, err)
	}
	return out, nil
}

// triggerStmts recreates the triggers of the table, as they were, on the
// partitioned table that now has its name. pg_get_triggerdef names the
// table schema-qualified, and the copy lives in the table's schema.
func (l *layout) triggerStmts() []string {
	var stmts []string
	for _, d := range l.triggers {
		stmts = append(stmts, d.def)
		switch d.enabled {
		case "D":
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s DISABLE TRIGGER %s`, ident(l.table), ident(d.name)))
		case "R":
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ENABLE REPLICA TRIGGER %s`, ident(l.table), ident(d.name)))
		case "A":
			stmts = append(stmts, fmt.Sprintf(`ALTER TABLE %s ENABLE ALWAYS TRIGGER %s`, ident(l.table), ident(d.name)))
		}
		if d.comment.Valid {
			stmts = append(stmts, fmt.Sprintf(`COMMENT ON TRIGGER %s ON %s IS %s`, ident(d.name), ident(l.table), quoteLiteral(d.comment.String)))
		}
	}
	return stmts
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
