package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries are found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) were not found: install them with `apt-get install postgresql` (Debian/Ubuntu) or set HMP_DATABASE_URL to an existing server")

// LocalConfig describes a private PostgreSQL cluster run by this process.
type LocalConfig struct {
	// Dir holds the cluster (Dir/pgdata), its password and its log. Required.
	Dir string
	// BinDir holds initdb and postgres. Empty: the newest of
	// /usr/lib/postgresql/*/bin, then pg_config --bindir, then $PATH.
	BinDir string
	// Port to listen on at 127.0.0.1. Zero: a free port picked at start.
	Port int
	// Database is created on first start. Default "hmp".
	Database string
	// Ephemeral trades durability for speed (fsync off): for tests only.
	Ephemeral bool
	// Settings are extra server settings (name -> value), passed as -c.
	Settings map[string]string
	// Logger receives start and stop lines. Default: discard.
	Logger *slog.Logger
	// NoStatStatements leaves pg_stat_statements out. By default the
	// server preloads it when installed (contrib), and the database gets
	// the pg_stat_statements and hypopg extensions that are available:
	// the index advisor's server-side statistics and hypothetical indexes.
	NoStatStatements bool
}

// Local is a running private cluster.
type Local struct {
	// attached is set when the cluster was already running (another hmp
	// process started it): this Local uses it and never stops it.
	attached bool
	cfg      LocalConfig
	cmd      *exec.Cmd
	url      string
	done     chan struct{}
	exitErr  error
	stopOnce sync.Once
	stopErr  error
	// slot is a standby's physical replication slot on the primary at
	// primaryURL (see StartStandby); empty once dropped.
	slot       string
	primaryURL string
}

const localSuperuser = "hmp"

// localMaxConns is the private cluster's connection limit: the API's pool,
// the tools' and the load tests' together.
const localMaxConns = 400

// StartLocal initialises the cluster on first use, starts it and waits
// until it accepts connections. When this process runs as root the server
// runs as the unprivileged "postgres" user (PostgreSQL refuses root).
func StartLocal(ctx context.Context, cfg LocalConfig) (*Local, error) {
	if cfg.Dir == "" {
		return nil, errors.New("local cluster: Dir is required")
	}
	if cfg.Database == "" {
		cfg.Database = "hmp"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	bin, err := findBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	cfg.BinDir = bin
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("local cluster dir: %w", err)
	}
	cfg.Dir = dir
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	password, err := initCluster(ctx, cfg, cred)
	if err != nil {
		return nil, err
	}
	if l, err := settleRunning(ctx, cfg, password); err != nil || l != nil {
		if l != nil {
			cfg.Logger.Info("local_postgres_attached", "dir", dir)
		}
		return l, err
	}
	port := cfg.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	l := &Local{cfg: cfg, done: make(chan struct{})}
	l.url = (&url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(localSuperuser, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + cfg.Database,
		RawQuery: "sslmode=disable",
	}).String()
	if err := l.start(ctx, port, cred); err != nil {
		return nil, err
	}
	if err := l.ensureDatabase(ctx); err != nil {
		l.Stop()
		return nil, err
	}
	cfg.Logger.Info("local_postgres_started", "dir", dir, "port", port, "bin", bin)
	return l, nil
}

// URL is the connection string of the cluster's database.
func (l *Local) URL() string { return l.url }

// DatabaseURL returns the connection string of another database of the
// cluster.
func (l *Local) DatabaseURL(name string) string {
	u, _ := url.Parse(l.url)
	u.Path = "/" + name
	return u.String()
}

// BinDir is where the cluster's server binaries are (pgbench lives there too).
func (l *Local) BinDir() string { return l.cfg.BinDir }

// Stop shuts the server down (fast mode: running transactions are rolled
// back, everything committed is on disk) and waits for it. Safe to call
// twice.
func (l *Local) Stop() error {
	l.stopOnce.Do(func() {
		if l.attached {
			return
		}
		_ = l.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-l.done:
		case <-time.After(60 * time.Second):
			_ = l.cmd.Process.Signal(syscall.SIGQUIT)
			<-l.done
			l.stopErr = errors.New("local postgres did not stop in 60s; sent SIGQUIT")
		}
		l.cfg.Logger.Info("local_postgres_stopped", "dir", l.cfg.Dir)
	})
	return l.stopErr
}

// attachRunning returns the cluster of cfg.Dir if the server on port
// answers, so that `hmp reconcile` can run beside `hmp serve` on the
// embedded default.
func attachRunning(ctx context.Context, cfg LocalConfig, password string, port int) (*Local, bool) {
	l := &Local{attached: true, cfg: cfg, done: make(chan struct{})}
	l.url = (&url.URL{
		Scheme: "postgres", User: url.UserPassword(localSuperuser, password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/" + cfg.Database, RawQuery: "sslmode=disable",
	}).String()
	conn, err := pgx.Connect(ctx, l.url)
	if err != nil {
		return nil, false
	}
	conn.Close(ctx)
	return l, true
}

func (l *Local) start(ctx context.Context, port int, cred *syscall.Credential) error {
	args := []string{"-D", filepath.Join(l.cfg.Dir, "pgdata"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=",
		"-c", "max_connections=" + strconv.Itoa(localMaxConns),
		"-c", "max_wal_size=4GB",
		"-c", "checkpoint_timeout=15min",
		"-c", "log_min_messages=warning",
	}
	args = append(args, l.memoryArgs()...)
	// The configured settings come last: the last -c of a name wins.
	settings := l.statStatements()
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+settings[k])
	}
	logFile, err := os.OpenFile(filepath.Join(l.cfg.Dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open postgres log: %w", err)
	}
	cmd := exec.Command(filepath.Join(l.cfg.BinDir, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group: a terminal's Ctrl-C reaches hmp, which then stops
	// the server after draining, instead of both at once. Pdeathsig stops
	// the server if hmp dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT, Credential: cred}
	// Pdeathsig fires when the forking thread exits; keep this goroutine on
	// one thread while forking.
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		logFile.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	l.cmd = cmd
	if err := writeOwner(l.cfg.Dir); err != nil {
		l.cfg.Logger.Warn("local_postgres_owner", "error", err.Error())
	}
	go func() {
		l.exitErr = cmd.Wait()
		logFile.Close()
		close(l.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, l.DatabaseURL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-l.done:
			return fmt.Errorf("postgres exited at start (%v): %s", l.exitErr, l.logTail())
		case <-ctx.Done():
			l.Stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			l.Stop()
			return fmt.Errorf("postgres did not accept connections within 60s: %s", l.logTail())
		}
	}
}

func (l *Local) ensureDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.DatabaseURL("postgres"))
	if err != nil {
		return fmt.Errorf("connect local postgres: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", l.cfg.Database).Scan(&exists); err != nil {
		return fmt.Errorf("look up database: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{l.cfg.Database}.Sanitize()); err != nil {
			return fmt.Errorf("create database %s: %w", l.cfg.Database, err)
		}
	}
	if l.preloaded() {
		return l.adviceExtensions(ctx)
	}
	return nil
}

// memoryArgs are the memory settings of the server: small for a test's
// ephemeral cluster (tests start many side by side), sized from the
// machine's memory for a durable one.
func (l *Local) memoryArgs() []string {
	if l.cfg.Ephemeral {
		return []string{"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=128MB"}
	}
	mem, err := MachineMemory()
	if err != nil {
		mem = 4 << 30
	}
	sizing := SizeFor(mem, localMaxConns)
	var args []string
	for _, k := range []string{"shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem"} {
		args = append(args, "-c", k+"="+sizing.Settings[k])
	}
	l.cfg.Logger.Info("local_postgres_sized", "memory_mb", mem>>20, "shared_buffers", sizing.Settings["shared_buffers"],
		"effective_cache_size", sizing.Settings["effective_cache_size"], "work_mem", sizing.Settings["work_mem"])
	return args
}

// statStatements returns the server settings with pg_stat_statements
// added to shared_preload_libraries when it is installed and wanted.
func (l *Local) statStatements() map[string]string {
	if !l.preloaded() {
		return l.cfg.Settings
	}
	out := make(map[string]string, len(l.cfg.Settings)+1)
	for k, v := range l.cfg.Settings {
		out[k] = v
	}
	if v := out["shared_preload_libraries"]; v != "" {
		out["shared_preload_libraries"] = v + ",pg_stat_statements"
	} else {
		out["shared_preload_libraries"] = "pg_stat_statements"
	}
	return out
}

// preloaded reports whether the server loads pg_stat_statements: wanted,
// and its library installed beside the binaries (Debian's layout, where
// pg_config --pkglibdir is bin/../lib).
func (l *Local) preloaded() bool {
	if l.cfg.NoStatStatements {
		return false
	}
	_, err := os.Stat(filepath.Join(filepath.Dir(l.cfg.BinDir), "lib", "pg_stat_statements.so"))
	return err == nil
}

// adviceExtensions creates pg_stat_statements and, when installed,
// hypopg in the cluster's database: the index advisor reads the first and
// tries indexes with the second. Databases cloned from it inherit both.
func (l *Local) adviceExtensions(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.url)
	if err != nil {
		return fmt.Errorf("connect local postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return fmt.Errorf("create extension pg_stat_statements: %w", err)
	}
	var hypo bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')").Scan(&hypo); err != nil {
		return fmt.Errorf("look up extension hypopg: %w", err)
	}
	if hypo {
		if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS hypopg"); err != nil {
			return fmt.Errorf("create extension hypopg: %w", err)
		}
	}
	return nil
}

func (l *Local) logTail() string {
	b, _ := os.ReadFile(filepath.Join(l.cfg.Dir, "postgres.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// initCluster runs initdb once and returns the superuser password.
func initCluster(ctx context.Context, cfg LocalConfig, cred *syscall.Credential) (string, error) {
	pgdata := filepath.Join(cfg.Dir, "pgdata")
	pwPath := filepath.Join(cfg.Dir, "password")
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); err == nil {
		pw, err := os.ReadFile(pwPath)
		if err != nil {
			return "", fmt.Errorf("read local cluster password: %w", err)
		}
		return strings.TrimSpace(string(pw)), nil
	}
	if err := os.RemoveAll(pgdata); err != nil { // a half-made earlier attempt
		return "", fmt.Errorf("clean %s: %w", pgdata, err)
	}
	if err := os.MkdirAll(pgdata, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", pgdata, err)
	}
	var buf [24]byte
	_, _ = rand.Read(buf[:])
	password := hex.EncodeToString(buf[:])
	if err := os.WriteFile(pwPath, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write password: %w", err)
	}
	// initdb reads the password from a file the server user can read.
	pwFile := filepath.Join(pgdata, "..", ".initdb-pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write initdb password file: %w", err)
	}
	defer os.Remove(pwFile)
	if cred != nil {
		for _, p := range []string{pgdata, pwFile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return "", fmt.Errorf("hand %s to the postgres user: %w", p, err)
			}
		}
		if err := checkTraversable(cfg.Dir, cred); err != nil {
			return "", err
		}
	}
	args := []string{"-D", pgdata, "-U", localSuperuser, "--pwfile", pwFile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-instructions"}
	if cfg.Ephemeral {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(cfg.BinDir, "initdb"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return password, nil
}

// Reachable reports whether the server user (postgres, when this process
// runs as root) can reach dir, which need not exist yet.
func Reachable(dir string) error {
	cred, err := serverCredential()
	if err != nil || cred == nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for {
		if _, err := os.Stat(abs); err == nil {
			return checkTraversable(abs, cred)
		}
		if abs == filepath.Dir(abs) {
			return nil
		}
		abs = filepath.Dir(abs)
	}
}

// checkTraversable makes sure the server user can reach dir: a data folder
// under /root is a common way to fail.
func checkTraversable(dir string, cred *syscall.Credential) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && st.Uid != cred.Uid && fi.Mode().Perm()&0o001 == 0 && !(st.Gid == cred.Gid && fi.Mode().Perm()&0o010 != 0) {
			return fmt.Errorf("the postgres user cannot enter %s (mode %v); choose a data dir it can reach (HMP_DATA_DIR) or loosen that folder's permissions", p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// serverCredential returns the user to run the server as: nil (this
// process's user) unless running as root.
func serverCredential() (*syscall.Credential, error) {
	cred, err := ServerUser()
	if err != nil {
		return nil, fmt.Errorf("running as root, the local PostgreSQL must run as the unprivileged user \"postgres\", which does not exist: install the postgresql package or run hmp as a normal user: %w", err)
	}
	return cred, nil
}

// ServerUser is the user that a PostgreSQL server (or pg_ctl, or Patroni)
// started by this process runs as: nil, this process's own, unless this
// process is root, which the server refuses; then the unprivileged user
// "postgres". The error is user.Lookup's, unwrapped: callers say what
// they needed the user for.
func ServerUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// FindBinDir returns the folder of the PostgreSQL server binaries (and of
// pgbench, which ships beside them): explicit if it holds them, else the
// search StartLocal does. ErrNoBinaries when there are none.
func FindBinDir(explicit string) (string, error) { return findBinDir(explicit) }

func findBinDir(explicit string) (string, error) {
	has := func(d string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if explicit != "" {
		if has(explicit) {
			return explicit, nil
		}
		return "", fmt.Errorf("%w (looked in %s)", ErrNoBinaries, explicit)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if versionOf(d) >= 15 && has(d) {
			return d, nil
		}
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
