package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pgbench measures what PostgreSQL alone does on the same cluster, as the
// baseline the API's figures are compared with.
type Pgbench struct {
	// BinDir holds the pgbench binary. Empty: looked up in $PATH.
	BinDir string
	// DatabaseURL is the database to run in (the API's own).
	DatabaseURL string
	// Clients is pgbench -c. Default 8.
	Clients int
	// Threads is pgbench -j. Default 2.
	Threads int
	// Mode is the query protocol: simple, extended or prepared. Default
	// prepared (the API's driver also prepares its statements once per
	// connection).
	Mode string
	// Script is the transaction to run; default TwoInsertScript. Prepare
	// creates the tables of the default script.
	Script string
	// Orgs and Properties spread the default script's rows like the API
	// run's tenants. Default 10 and 5.
	Orgs, Properties int
	// Dir receives the script and pgbench's per-transaction logs. Required.
	Dir string
	// Postmaster is the PID of the cluster whose CPU to account for; 0:
	// unknown.
	Postmaster int
}

// pgbenchSchema holds copies of the API's write tables, made with LIKE ...
// INCLUDING ALL: the same columns, defaults, checks and indexes (foreign
// keys aside), so that the baseline writes what the API writes. It is the
// only place outside finance and eventstore that names their tables, and
// only to copy their shape.
const pgbenchSchema = "hmp_pgbench"

const pgbenchSetup = `
DROP SCHEMA IF EXISTS hmp_pgbench CASCADE;
CREATE SCHEMA hmp_pgbench;
CREATE TABLE hmp_pgbench.transactions (LIKE public.transactions INCLUDING ALL);
CREATE TABLE hmp_pgbench.events (LIKE public.events INCLUDING ALL);
-- Time-ordered ids like the API's UUIDv7, so both index alike.
CREATE FUNCTION hmp_pgbench.uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS
$$ SELECT (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
           || substr(md5(random()::text), 1, 20))::uuid $$;
`

// TwoInsertScript is the default pgbench transaction: the row and the
// event an ADMIN's revenue create commits, in one transaction. :orgs and
// :properties are set with -D.
const TwoInsertScript = `\set org random(1, :orgs)
\set prop random(1, :properties)
\set amount random(1, 10000000)
BEGIN;
INSERT INTO hmp_pgbench.transactions (org_id, id, kind, property_id, source, category, amount_cents, currency,
	payment_mode, occurred_at, business_date, bank_reference, description, status, version,
	created_by, created_at, updated_by, updated_at, reviewed_by, reviewed_at)
VALUES (md5(:org::text)::uuid, hmp_pgbench.uuid7(), 'revenue', md5('p' || :org::text || '-' || :prop::text)::uuid, 'room', NULL, :amount, 'INR',
	'cash', now(), current_date, NULL, NULL, 'approved', 1,
	md5('u' || :org::text)::uuid, now(), md5('u' || :org::text)::uuid, now(), md5('u' || :org::text)::uuid, now());
INSERT INTO hmp_pgbench.events (org_id, id, event_type, entity_type, entity_id, aggregate_version,
	property_id, user_id, occurred_at, metadata)
VALUES (md5(:org::text)::uuid, hmp_pgbench.uuid7(), 'revenue_added', 'revenue', hmp_pgbench.uuid7(), 1,
	md5('p' || :org::text || '-' || :prop::text)::uuid, md5('u' || :org::text)::uuid, now(),
	'{"propertyId":"0197a5c2-3a41-7c2e-9d1b-5f6e7a8b9c0d","status":"approved","amountCents":4242,"currency":"INR","paymentMode":"cash","businessDate":"2026-01-15","source":"room","affectedReportDates":["2026-01-15"]}');
END;
`

func (p Pgbench) withDefaults() Pgbench {
	if p.Clients <= 0 {
		p.Clients = 8
	}
	if p.Threads <= 0 {
		p.Threads = 2
	}
	if p.Mode == "" {
		p.Mode = "prepared"
	}
	if p.Script == "" {
		p.Script = TwoInsertScript
	}
	if p.Orgs <= 0 {
		p.Orgs = 10
	}
	if p.Properties <= 0 {
		p.Properties = 5
	}
	return p
}

// Binary returns the pgbench executable to run, or an error saying what
// to install.
func (p Pgbench) Binary() (string, error) {
	if p.BinDir != "" {
		b := filepath.Join(p.BinDir, "pgbench")
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("pgbench not found in %s: %w", p.BinDir, err)
		}
		return b, nil
	}
	b, err := exec.LookPath("pgbench")
	if err != nil {
		return "", errors.New("pgbench not found: install postgresql-contrib (or the server package) or name its folder")
	}
	return b, nil
}

// Prepare creates the tables the default script writes, in the schema
// hmp_pgbench of the API's database (replacing an earlier one).
func (p Pgbench) Prepare(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, p.DatabaseURL)
	if err != nil {
		return fmt.Errorf("pgbench setup: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, pgbenchSetup); err != nil {
		return fmt.Errorf("pgbench setup: %w", err)
	}
	return nil
}

// Cleanup drops what Prepare made.
func (p Pgbench) Cleanup(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, p.DatabaseURL)
	if err != nil {
		return fmt.Errorf("pgbench cleanup: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgbenchSchema+" CASCADE"); err != nil {
		return fmt.Errorf("pgbench cleanup: %w", err)
	}
	return nil
}

var tpsLine = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)

// Run runs pgbench for warmup+duration and measures, from its
// per-transaction log, the transactions that completed after the warm-up:
// the same window the API phases measure.
func (p Pgbench) Run(ctx context.Context, warmup, duration time.Duration) (Result, error) {
	p = p.withDefaults()
	bin, err := p.Binary()
	if err != nil {
		return Result{}, err
	}
	if p.Dir == "" {
		return Result{}, errors.New("pgbench: Dir is required")
	}
	run, err := os.MkdirTemp(p.Dir, "pgbench-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(run)
	script := filepath.Join(run, "script.sql")
	if err := os.WriteFile(script, []byte(p.Script), 0o644); err != nil {
		return Result{}, err
	}
	secs := int((warmup + duration + time.Second - 1) / time.Second)
	args := []string{"-n", "-c", strconv.Itoa(p.Clients), "-j", strconv.Itoa(p.Threads), "-T", strconv.Itoa(secs),
		"-M", p.Mode, "-f", script, "-D", "orgs=" + strconv.Itoa(p.Orgs), "-D", "properties=" + strconv.Itoa(p.Properties),
		"-l", "--log-prefix", filepath.Join(run, "log"), p.DatabaseURL}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = run
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cpuFrom := sampleCPU(p.Postmaster)
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("pgbench: %w: %s", err, tail(out.String(), 1500))
	}
	cpuTo := sampleCPU(p.Postmaster)
	r := Result{Name: "pgbench", Mode: "pgbench", Clients: p.Clients}
	all, err := readPgbenchLogs(run, warmup, &r)
	if err != nil {
		return Result{}, err
	}
	r.CPU = cpuBetween(cpuFrom, cpuTo, all) // the whole run, warm-up included
	if r.OK == 0 {
		return Result{}, fmt.Errorf("pgbench measured no transaction: %s", tail(out.String(), 1500))
	}
	if m := tpsLine.FindStringSubmatch(out.String()); m != nil {
		if tps, err := strconv.ParseFloat(m[1], 64); err == nil {
			r.Name = fmt.Sprintf("pgbench (its own tps over %ds: %.0f)", secs, tps)
		}
	}
	return r, nil
}

// readPgbenchLogs reads the per-transaction logs (one file per thread):
// "client txn latency_us script epoch_s epoch_us ...". A latency that is
// not a number is a failed or skipped transaction. It returns the number
// of successful transactions of the whole run.
func readPgbenchLogs(dir string, warmup time.Duration, r *Result) (uint64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "log.*"))
	if err != nil || len(files) == 0 {
		return 0, fmt.Errorf("pgbench wrote no transaction log in %s", dir)
	}
	type txn struct {
		done time.Time
		lat  time.Duration
		ok   bool
	}
	var txns []txn
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 6 {
				continue
			}
			sec, err1 := strconv.ParseInt(fs[4], 10, 64)
			usec, err2 := strconv.ParseInt(fs[5], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			t := txn{done: time.Unix(sec, usec*1000)}
			if us, err := strconv.ParseInt(fs[2], 10, 64); err == nil {
				t.lat, t.ok = time.Duration(us)*time.Microsecond, true
			}
			txns = append(txns, t)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return 0, fmt.Errorf("read %s: %w", f, err)
		}
	}
	if len(txns) == 0 {
		return 0, nil
	}
	sort.Slice(txns, func(i, j int) bool { return txns[i].done.Before(txns[j].done) })
	first := txns[0].done.Add(-txns[0].lat)
	from := first.Add(warmup)
	var (
		h    Histogram
		last time.Time
		all  uint64
	)
	for _, t := range txns {
		if t.ok {
			all++
		}
		if t.done.Before(from) {
			continue
		}
		if t.ok {
			r.OK++
			h.Record(t.lat)
		} else {
			r.Failed++
		}
		last = t.done
	}
	r.Elapsed = last.Sub(from)
	if r.Elapsed > 0 {
		r.Throughput = float64(r.OK) / r.Elapsed.Seconds()
	}
	r.Latency = h.Summary()
	r.hist = &h
	return all, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// ServerSettings reads the settings that decide what a commit costs, for
// the report.
func ServerSettings(ctx context.Context, url string) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("read server settings: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `
		SELECT name, setting || COALESCE(unit, '') FROM pg_settings
		WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method',
		               'shared_buffers', 'max_connections', 'commit_delay', 'wal_level')`)
	if err != nil {
		return nil, fmt.Errorf("read server settings: %w", err)
	}
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// Durable reports whether settings make every commit wait for its WAL to
// reach disk.
func Durable(settings map[string]string) bool {
	sc := settings["synchronous_commit"]
	return settings["fsync"] == "on" && sc != "off" && sc != ""
}
