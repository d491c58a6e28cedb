package partitions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultPartitions is the count a schema created unpartitioned is moved to
// when none is asked for (the scaling guide's).
const DefaultPartitions = 16

// MigrateConfig tunes the online move of the pending tables.
type MigrateConfig struct {
	// Partitions is the count to create; 0: the count recorded when the
	// schema was created, or DefaultPartitions if that was 0.
	Partitions int
	// Batch is the rows per copy statement (default 5,000): each is its
	// own short transaction, so the application keeps writing.
	Batch int
	// LockTimeout bounds the wait for the switch's table lock (default
	// 5 s); the switch then catches up again and retries, Attempts times
	// (default 20).
	LockTimeout time.Duration
	Attempts    int
	// Logger reports progress (nil: none).
	Logger *slog.Logger
	// BeforeSwitch, if set, runs after the bulk copy and before the
	// switch (tests write through it to exercise the catch-up).
	BeforeSwitch func(ctx context.Context, table string) error
}

func (c MigrateConfig) withDefaults() MigrateConfig {
	if c.Batch <= 0 {
		c.Batch = 5000
	}
	if c.LockTimeout <= 0 {
		c.LockTimeout = 5 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Moved is what the move of one table did.
type Moved struct {
	Table string `json:"table"`
	// Rows copied in bulk, in Batches statements; CaughtUp rows re-copied
	// because they changed during the copy.
	Rows     int64 `json:"rows"`
	Batches  int   `json:"batches"`
	CaughtUp int64 `json:"caughtUp"`
	// Orgs verified (count and sum of row hashes equal in both tables),
	// online and, for those that changed during the copy, under the lock.
	OrgsVerified       int64 `json:"orgsVerified"`
	OrgsVerifiedLocked int64 `json:"orgsVerifiedLocked"`
	// Locked is how long writes to the table waited for the switch.
	Locked time.Duration `json:"lockedNanos"`
	// Already is set when the table was partitioned before.
	Already bool `json:"already"`
}

// Migrate moves every table still pending (see Migration) to hash
// partitions by org_id while the application serves: for each table it
// builds the partitioned copy beside it, records the keys of every row
// changed from then on (a trigger), copies the rows in keyset batches,
// re-copies the changed ones, verifies every organization (row count and
// sum of row hashes) online, then under a short EXCLUSIVE lock (reads go
// on, writes wait) catches up the last changes, verifies the
// organizations that changed during the copy, drops the table and gives
// its name, keys and indexes to the copy. An interrupted run leaves the
// table as it was; the next run starts that table over.
func Migrate(ctx context.Context, db *sql.DB, cfg MigrateConfig) ([]Moved, error) {
	cfg = cfg.withDefaults()
	parts := cfg.Partitions
	if parts <= 0 {
		n, err := Count(ctx, db)
		if err != nil {
			return nil, err
		}
		parts = n
	}
	if parts <= 0 {
		parts = DefaultPartitions
	}
	states, err := States(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []Moved
	for _, st := range states {
		m, err := moveTable(ctx, db, st.Table, parts, cfg)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	_, err = db.ExecContext(ctx, `
		UPDATE schema_settings SET value = $1
		WHERE name = 'partitions' AND NOT EXISTS (SELECT 1 FROM schema_settings WHERE name LIKE $2 || '%' AND value <> $3)`,
		fmt.Sprint(parts), stateKey, StatePartitioned)
	if err != nil {
		return out, fmt.Errorf("record the partition count: %w", err)
	}
	return out, nil
}

// move is the scratch state of one table's move.
type move struct {
	*layout
	log, orgs, fn string
}

func (m *move) keyList(prefix string) string {
	cols := make([]string, len(m.keyCols))
	for i, c := range m.keyCols {
		cols[i] = prefix + ident(c)
	}
	return strings.Join(cols, ", ")
}

func (m *move) overriding() string {
	if len(m.identity) > 0 {
		return " OVERRIDING SYSTEM VALUE"
	}
	return ""
}

func moveTable(ctx context.Context, db *sql.DB, table string, parts int, cfg MigrateConfig) (Moved, error) {
	res := Moved{Table: table}
	done, err := isPartitioned(ctx, db, table)
	if err != nil {
		return res, err
	}
	if done {
		// A partition attached by hand since gets the guards here.
		res.Already = true
		if err := PartitionTriggers(ctx, db, table); err != nil {
			return res, err
		}
		return res, setState(ctx, db, table, StatePartitioned)
	}
	l, err := plan(ctx, db, table, parts)
	if err != nil {
		return res, err
	}
	m := &move{layout: l, log: table + "__partlog", orgs: table + "__partorgs", fn: table + "__partlog_fn"}
	if err := m.cleanup(ctx, db); err != nil {
		return res, err
	}
	if err := m.create(ctx, db); err != nil {
		_ = m.cleanup(context.WithoutCancel(ctx), db)
		return res, err
	}
	if err := m.track(ctx, db); err != nil {
		_ = m.cleanup(context.WithoutCancel(ctx), db)
		return res, err
	}
	cfg.Logger.Info("partitions_copy_started", "table", table, "partitions", parts, "batch", cfg.Batch)
	if err := m.copyAll(ctx, db, cfg, &res); err != nil {
		_ = m.cleanup(context.WithoutCancel(ctx), db)
		return res, err
	}
	if cfg.BeforeSwitch != nil {
		if err := cfg.BeforeSwitch(ctx, table); err != nil {
			_ = m.cleanup(context.WithoutCancel(ctx), db)
			return res, err
		}
	}
	if err := m.switchOver(ctx, db, cfg, &res); err != nil {
		_ = m.cleanup(context.WithoutCancel(ctx), db)
		return res, err
	}
	if _, err := db.ExecContext(ctx, `ANALYZE `+ident(table)); err != nil {
		return res, fmt.Errorf("analyze %s: %w", table, err)
	}
	cfg.Logger.Info("partitions_switched", "table", table, "rows", res.Rows, "caught_up", res.CaughtUp,
		"orgs_verified", res.OrgsVerified+res.OrgsVerifiedLocked, "locked", res.Locked)
	return res, nil
}

// cleanup removes what an earlier, interrupted move left.
func (m *move) cleanup(ctx context.Context, db DB) error {
	for _, s := range []string{
		fmt.Sprintf(`DROP TRIGGER IF EXISTS %s ON %s`, logTrigger, ident(m.table)),
		fmt.Sprintf(`DROP FUNCTION IF EXISTS %s()`, ident(m.fn)),
		fmt.Sprintf(`DROP TABLE IF EXISTS %s, %s, %s`, ident(m.log), ident(m.orgs), ident(m.copy)),
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("clean up the move of %s: %w", m.table, err)
		}
	}
	return nil
}

// logTrigger is the trigger that logs the changes to a table being moved;
// it is not one of the table's own and does not carry over.
const logTrigger = "partition_log"

// track starts recording the key of every row inserted, updated or
// deleted from now on. CREATE TRIGGER waits for the transactions already
// writing the table, so no change escapes both the copy and the log.
func (m *move) track(ctx context.Context, db DB) error {
	newVals := make([]string, len(m.keyCols))
	oldVals := make([]string, len(m.keyCols))
	for i, c := range m.keyCols {
		newVals[i], oldVals[i] = "NEW."+ident(c), "OLD."+ident(c)
	}
	for _, s := range []string{
		fmt.Sprintf(`CREATE TABLE %s AS SELECT %s FROM %s WITH NO DATA`, ident(m.log), m.keyList(""), ident(m.table)),
		fmt.Sprintf(`ALTER TABLE %s ADD COLUMN log_seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`, ident(m.log)),
		fmt.Sprintf(`CREATE TABLE %s AS SELECT %s FROM %s WITH NO DATA`, ident(m.orgs), ident(Key), ident(m.table)),
		fmt.Sprintf(`ALTER TABLE %s ADD PRIMARY KEY (%s)`, ident(m.orgs), ident(Key)),
		fmt.Sprintf(`CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
	IF TG_OP <> 'INSERT' THEN INSERT INTO %s (%s) VALUES (%s); END IF;
	IF TG_OP <> 'DELETE' THEN INSERT INTO %s (%s) VALUES (%s); END IF;
	RETURN NULL;
END $fn$`, ident(m.fn), ident(m.log), m.keyList(""), strings.Join(oldVals, ", "), ident(m.log), m.keyList(""), strings.Join(newVals, ", ")),
		fmt.Sprintf(`CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s()`, logTrigger, ident(m.table), ident(m.fn)),
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("track the changes of %s: %s: %w", m.table, firstLine(s), err)
		}
	}
	return nil
}

// copyAll copies the table in key order, one batch per statement, and
// re-copies the changed rows every few batches and at the end.
func (m *move) copyAll(ctx context.Context, db *sql.DB, cfg MigrateConfig, res *Moved) error {
	casts := make([]string, len(m.keyCols))
	texts := make([]string, len(m.keyCols))
	for i := range m.keyCols {
		casts[i] = fmt.Sprintf("$%d::%s", i+2, m.keyTypes[i])
		texts[i] = ident(m.keyCols[i]) + "::text"
	}
	where := fmt.Sprintf("WHERE (%s) > (%s)", m.keyList(""), strings.Join(casts, ", "))
	stmt := func(where string) string {
		return fmt.Sprintf(`
			WITH b AS (SELECT * FROM %s %s ORDER BY %s LIMIT $1),
			     ins AS (INSERT INTO %s%s SELECT * FROM b ON CONFLICT DO NOTHING)
			SELECT count(*) OVER (), %s FROM b ORDER BY %s LIMIT 1`,
			ident(m.table), where, m.keyList(""), ident(m.copy), m.overriding(), strings.Join(texts, ", "), descList(m.keyCols))
	}
	first, next := stmt(""), stmt(where)
	var cursor []any
	for {
		q, args := first, []any{cfg.Batch}
		if cursor != nil {
			q, args = next, append([]any{cfg.Batch}, cursor...)
		}
		vals := make([]string, len(m.keyCols))
		dest := []any{new(int64)}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		err := db.QueryRowContext(ctx, q, args...).Scan(dest...)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", m.table, err)
		}
		res.Rows += *dest[0].(*int64)
		res.Batches++
		cursor = cursor[:0]
		for _, v := range vals {
			cursor = append(cursor, v)
		}
		if res.Batches%20 == 0 {
			cfg.Logger.Info("partitions_copy_progress", "table", m.table, "rows", res.Rows)
			if err := m.catchUpOnline(ctx, db, res); err != nil {
				return err
			}
		}
	}
	// Catch up until what is left is small enough for the lock.
	for range 10 {
		n, err := m.pending(ctx, db)
		if err != nil {
			return err
		}
		if n <= int64(cfg.Batch) {
			break
		}
		if err := m.catchUpOnline(ctx, db, res); err != nil {
			return err
		}
	}
	return nil
}

func descList(cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = ident(c) + " DESC"
	}
	return strings.Join(out, ", ")
}

func (m *move) pending(ctx context.Context, db DB) (int64, error) {
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+ident(m.log)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the changes to %s: %w", m.table, err)
	}
	return n, nil
}

// catchUpOnline re-copies the rows changed so far in one REPEATABLE READ
// transaction: the log rows it consumes are exactly those whose changes
// its snapshot sees, so a change committed meanwhile stays logged.
func (m *move) catchUpOnline(ctx context.Context, db *sql.DB, res *Moved) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return fmt.Errorf("catch up %s: %w", m.table, err)
	}
	defer tx.Rollback()
	if err := m.catchUp(ctx, tx, res); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catch up %s: %w", m.table, err)
	}
	return nil
}

// catchUp replaces the copy's version of every logged key with the
// table's (none if deleted), records the organizations as changed and
// consumes the log.
func (m *move) catchUp(ctx context.Context, tx *sql.Tx, res *Moved) error {
	var upto int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(log_seq), 0) FROM `+ident(m.log)).Scan(&upto); err != nil {
		return fmt.Errorf("catch up %s: %w", m.table, err)
	}
	if upto == 0 {
		return nil
	}
	match := make([]string, len(m.keyCols))
	for i, c := range m.keyCols {
		match[i] = fmt.Sprintf("d.%s = l.%s", ident(c), ident(c))
	}
	stmts := []string{
		fmt.Sprintf(`DELETE FROM %s d USING (SELECT DISTINCT %s FROM %s WHERE log_seq <= $1) l WHERE %s`,
			ident(m.copy), m.keyList(""), ident(m.log), strings.Join(match, " AND ")),
		fmt.Sprintf(`INSERT INTO %s%s SELECT s.* FROM %s s WHERE (%s) IN (SELECT %s FROM %s WHERE log_seq <= $1)`,
			ident(m.copy), m.overriding(), ident(m.table), m.keyList("s."), m.keyList(""), ident(m.log)),
		fmt.Sprintf(`INSERT INTO %s SELECT DISTINCT %s FROM %s WHERE log_seq <= $1 ON CONFLICT DO NOTHING`,
			ident(m.orgs), ident(Key), ident(m.log)),
		fmt.Sprintf(`DELETE FROM %s WHERE log_seq <= $1`, ident(m.log)),
	}
	for i, s := range stmts {
		r, err := tx.ExecContext(ctx, s, upto)
		if err != nil {
			return fmt.Errorf("catch up %s: %s: %w", m.table, firstLine(s), err)
		}
		if i == 1 {
			n, _ := r.RowsAffected()
			res.CaughtUp += n
		}
	}
	return nil
}

// verify compares, per organization matching cond (on alias t), the row
// count and the sum of row hashes of the table and its copy, and returns
// how many organizations it compared.
func (m *move) verify(ctx context.Context, db DB, cond string) (int64, error) {
	side := func(table string) string {
		return fmt.Sprintf(`SELECT t.%s AS org, count(*) AS n, sum(hashtextextended(t::text, 0)::numeric) AS h
			FROM %s t WHERE %s GROUP BY 1`, ident(Key), ident(table), cond)
	}
	var orgs, bad int64
	var example sql.NullString
	err := db.QueryRowContext(ctx, fmt.Sprintf(`
		WITH a AS (%s), b AS (%s)
		SELECT count(*), count(*) FILTER (WHERE a.n IS DISTINCT FROM b.n OR a.h IS DISTINCT FROM b.h),
		       min(coalesce(a.org, b.org)::text) FILTER (WHERE a.n IS DISTINCT FROM b.n OR a.h IS DISTINCT FROM b.h)
		FROM a FULL JOIN b USING (org)`, side(m.table), side(m.copy))).Scan(&orgs, &bad, &example)
	if err != nil {
		return 0, fmt.Errorf("verify %s: %w", m.table, err)
	}
	if bad > 0 {
		return orgs, fmt.Errorf("verify %s: %d organizations differ between the table and its partitioned copy (e.g. %s)", m.table, bad, example.String)
	}
	return orgs, nil
}

// switchOver verifies online what did not change, then locks, catches
// up, verifies what changed and swaps the tables.
func (m *move) switchOver(ctx context.Context, db *sql.DB, cfg MigrateConfig, res *Moved) error {
	unchanged := fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM %s o WHERE o.%s = t.%s) AND NOT EXISTS (SELECT 1 FROM %s l WHERE l.%s = t.%s)`,
		ident(m.orgs), ident(Key), ident(Key), ident(m.log), ident(Key), ident(Key))
	changed := fmt.Sprintf(`t.%s IN (SELECT %s FROM %s)`, ident(Key), ident(Key), ident(m.orgs))
	err := func() error {
		// One snapshot for the table, the copy and the log.
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback()
		n, err := m.verify(ctx, tx, unchanged)
		res.OrgsVerified = n
		return err
	}()
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		err := m.switchOnce(ctx, db, cfg, res, changed)
		var pe *pgconn.PgError
		retry := errors.As(err, &pe) && (pe.Code == "55P03" || pe.Code == "40P01") // lock timeout, deadlock
		if !retry || attempt >= cfg.Attempts {
			return err
		}
		cfg.Logger.Warn("partitions_switch_retry", "table", m.table, "attempt", attempt, "error", err.Error())
		if err := m.catchUpOnline(ctx, db, res); err != nil {
			return err
		}
	}
}

func (m *move) switchOnce(ctx context.Context, db *sql.DB, cfg MigrateConfig, res *Moved, changed string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, cfg.LockTimeout.Milliseconds())); err != nil {
		return err
	}
	start := time.Now()
	// EXCLUSIVE: reads go on while the last changes are copied and
	// checked; the DROP then needs the readers gone for a moment.
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+ident(m.table)+` IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock %s: %w", m.table, err)
	}
	// The triggers as they are now (none can change under the lock) go to
	// the copy with the table's name.
	if m.triggers, err = readTriggers(ctx, tx, m.table); err != nil {
		return err
	}
	if err := m.catchUp(ctx, tx, res); err != nil {
		return err
	}
	n, err := m.verify(ctx, tx, changed)
	if err != nil {
		return err
	}
	for _, s := range []string{
		fmt.Sprintf(`DROP TRIGGER %s ON %s`, logTrigger, ident(m.table)),
		fmt.Sprintf(`DROP FUNCTION %s()`, ident(m.fn)),
		fmt.Sprintf(`DROP TABLE %s, %s`, ident(m.log), ident(m.orgs)),
	} {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("switch %s: %w", m.table, err)
		}
	}
	if err := m.swap(ctx, tx); err != nil {
		return err
	}
	if err := setState(ctx, tx, m.table, StatePartitioned); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("switch %s: %w", m.table, err)
	}
	res.OrgsVerifiedLocked = n
	res.Locked = time.Since(start)
	return nil
}
