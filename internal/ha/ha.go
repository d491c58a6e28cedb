// Package ha starts PostgreSQL's failover topology on loopback, as
// production runs it: one etcd, two Patroni nodes each managing a
// PostgreSQL 15 server, in synchronous replication (or asynchronous, for
// the comparison), and injects the faults a primary suffers: a crash
// (SIGKILL of Patroni and its postmaster) and a freeze (SIGSTOP, SIGCONT
// later). The failover tests and `hmp chaos --ha` run on it.
//
// Everything runs in a temporary folder removed by Stop, as the postgres
// user when this process is root (PostgreSQL refuses root). A killed
// Patroni orphans its postmaster: this process makes itself a child
// subreaper so that the orphans are reparented to it, and reaps them by
// pid (PID 1 of a container often reaps nothing, and a zombie postmaster
// would look alive).
package ha

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"hmp/internal/postgres"
	"hmp/internal/proc"

	"golang.org/x/sys/unix"
)

// Config sets a topology up. The zero value of each field means its
// default.
type Config struct {
	// Async replicates asynchronously (Patroni's synchronous_mode off).
	// Default false: synchronous_mode on, a commit waits for the standby.
	Async bool
	// TTL, LoopWait and RetryTimeout are Patroni's leader-key TTL, loop
	// period and DCS/PostgreSQL retry timeout, in seconds. Zero: Patroni's
	// defaults (30, 10, 10). Patroni wants loop_wait + 2*retry_timeout <=
	// ttl.
	TTL, LoopWait, RetryTimeout int
	// BinDir holds the PostgreSQL server binaries. Default
	// /usr/lib/postgresql/15/bin.
	BinDir string
	// Database is created on the leader for the application. Default "hmp".
	Database string
	// TempDir is where the topology's folder is made; the postgres user
	// must be able to enter it. Default os.TempDir().
	TempDir string
	// StartTimeout bounds Start's wait for a leader and its standby.
	// Default 2 min.
	StartTimeout time.Duration
	// Log receives progress lines. Nil discards them.
	Log io.Writer
}

// WithDefaults returns a copy of c with zero fields at their defaults.
func (c Config) WithDefaults() Config {
	if c.TTL == 0 {
		c.TTL = 30
	}
	if c.LoopWait == 0 {
		c.LoopWait = 10
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = 10
	}
	if c.BinDir == "" {
		c.BinDir = "/usr/lib/postgresql/15/bin"
	}
	if c.Database == "" {
		c.Database = "hmp"
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 2 * time.Minute
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Validate reports every problem of a defaulted Config.
func (c Config) Validate() error {
	var errs []error
	if c.TTL < 1 || c.LoopWait < 1 || c.RetryTimeout < 1 {
		errs = append(errs, fmt.Errorf("ha: ttl %d, loop_wait %d and retry_timeout %d must be positive", c.TTL, c.LoopWait, c.RetryTimeout))
	}
	if c.LoopWait+2*c.RetryTimeout > c.TTL {
		errs = append(errs, fmt.Errorf("ha: loop_wait %d + 2*retry_timeout %d exceeds ttl %d (Patroni's rule)", c.LoopWait, c.RetryTimeout, c.TTL))
	}
	if _, err := os.Stat(filepath.Join(c.BinDir, "postgres")); err != nil {
		errs = append(errs, fmt.Errorf("ha: PostgreSQL binaries: %w", err))
	}
	for _, tool := range []string{"patroni", "etcd"} {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("ha: %s is not installed (scripts/deps.sh installs it): %w", tool, err))
		}
	}
	return errors.Join(errs...)
}

// Cluster is a running topology.
type Cluster struct {
	cfg   Config
	dir   string
	cred  *syscall.Credential
	etcd  *proc.Process
	dcs   string // etcd's client address
	nodes []*Node
	// async is the replication mode in force (SetSynchronous changes it).
	async atomic.Bool
	// stopReaper ends the postmaster reaper (set once the nodes exist).
	stopReaper func()

	stopOnce sync.Once
}

// Node is one Patroni-managed PostgreSQL server.
type Node struct {
	Name string
	// Port is PostgreSQL's, APIPort Patroni's REST API's (both on
	// 127.0.0.1).
	Port, APIPort int
	dir           string
	config        string

	mu      sync.Mutex
	patroni *proc.Process
	frozen  []int // pids stopped by Freeze
}

// Start starts etcd and two Patroni nodes and returns once a leader
// accepts writes with a streaming standby (synchronous unless cfg.Async)
// and the database exists. On error everything started is stopped.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Orphaned postmasters (their Patroni killed) must come to us, not to
	// a PID 1 that may never reap them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("ha: become a child subreaper: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "hmp-ha-")
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	c = &Cluster{cfg: cfg, dir: dir}
	c.async.Store(cfg.Async)
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return c, fmt.Errorf("ha: %w", err)
	}
	if c.cred, err = postgres.ServerUser(); err != nil {
		return c, fmt.Errorf("ha: running as root, PostgreSQL must run as the postgres user: %w", err)
	}
	if err := c.startEtcd(ctx); err != nil {
		return c, err
	}
	for i := range 2 {
		n, err := c.newNode(fmt.Sprintf("node%d", i+1))
		if err != nil {
			return c, err
		}
		c.nodes = append(c.nodes, n)
	}
	reapCtx, stopReaper := context.WithCancel(context.WithoutCancel(ctx))
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		c.reapPostmasters(reapCtx)
	}()
	c.stopReaper = func() { stopReaper(); <-reaped }
	// The first node bootstraps alone, so the second clones from it
	// instead of racing it for the initialize key.
	if err := c.startPatroni(c.nodes[0]); err != nil {
		return c, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	leader, err := c.waitLeader(ctx)
	if err != nil {
		return c, err
	}
	if err := c.startPatroni(c.nodes[1]); err != nil {
		return c, err
	}
	if _, err := c.WaitHealthy(ctx); err != nil {
		return c, err
	}
	if err := c.createDatabase(ctx, leader); err != nil {
		return c, err
	}
	c.logf("topology ready: leader %s, %s", leader.Name, c.mode())
	return c, nil
}

func (c *Cluster) mode() string {
	if c.async.Load() {
		return "asynchronous"
	}
	return "synchronous"
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.cfg.Log, "ha: "+format+"\n", args...)
}

// Nodes returns the nodes, in the order of the URL's hosts.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Dir is the topology's folder (configs, data, logs), removed by Stop.
func (c *Cluster) Dir() string { return c.dir }

// URL is the multi-host URL of the database that an application uses:
// every node, the one accepting writes chosen at connect time.
func (c *Cluster) URL() string {
	hosts := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		hosts[i] = "127.0.0.1:" + strconv.Itoa(n.Port)
	}
	return "postgres://postgres@" + strings.Join(hosts, ",") + "/" + url.PathEscape(c.cfg.Database) + "?sslmode=disable&target_session_attrs=read-write"
}

// NodeURL is the URL of one node's server (primary or standby).
func (c *Cluster) NodeURL(n *Node, database string) string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(n.Port) + "/" + url.PathEscape(database) + "?sslmode=disable&connect_timeout=2"
}

// Stop stops every process (thawing frozen ones first) within bounded
// time and removes the folder. Safe to call twice.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		for _, n := range c.nodes {
			c.Thaw(n)
		}
		var wg sync.WaitGroup
		for _, n := range c.nodes {
			wg.Go(func() { c.stopNode(n, 30*time.Second) })
		}
		wg.Wait()
		if c.stopReaper != nil {
			c.stopReaper()
		}
		if c.etcd != nil {
			c.etcd.Stop(10 * time.Second)
		}
		if err := os.RemoveAll(c.dir); err != nil {
			c.logf("remove %s: %v", c.dir, err)
		}
	})
}

// stopNode asks Patroni to stop (it stops PostgreSQL first), then kills
// whatever is left after grace.
func (c *Cluster) stopNode(n *Node, grace time.Duration) {
	n.mu.Lock()
	p := n.patroni
	n.mu.Unlock()
	if p != nil && p.Running() {
		p.Stop(grace)
	}
	// A postmaster whose Patroni died without stopping it.
	c.killTree(n, 0)
}

// startEtcd starts the DCS with the v2 API on (Debian's python3-etcd,
// Patroni's etcd client, speaks v2).
func (c *Cluster) startEtcd(ctx context.Context) error {
	client, err := freePort()
	if err != nil {
		return err
	}
	peer, err := freePort()
	if err != nil {
		return err
	}
	c.dcs = "127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	c.etcd = &proc.Process{Name: "etcd", Dir: os.TempDir(), Log: filepath.Join(c.dir, "etcd.log"), Args: []string{
		"etcd", "--name", "hmp-ha", "--data-dir", filepath.Join(c.dir, "etcd"),
		"--listen-client-urls", "http://" + c.dcs, "--advertise-client-urls", "http://" + c.dcs,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "hmp-ha=" + peerURL, "--enable-v2",
	}}
	if err := c.etcd.Start(); err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	if err := c.etcd.WaitHTTP(ctx, "http://"+c.dcs+"/health", time.Minute); err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	return nil
}

// newNode prepares a node's folder and Patroni configuration.
func (c *Cluster) newNode(name string) (*Node, error) {
	n := &Node{Name: name, dir: filepath.Join(c.dir, name)}
	var err error
	if n.Port, err = freePort(); err != nil {
		return nil, err
	}
	if n.APIPort, err = freePort(); err != nil {
		return nil, err
	}
	if err := os.Mkdir(n.dir, 0o700); err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(n.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, fmt.Errorf("ha: %w", err)
		}
	}
	n.config = filepath.Join(n.dir, "patroni.yml")
	if err := os.WriteFile(n.config, []byte(c.patroniConfig(n)), 0o644); err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	return n, nil
}

// patroniConfig is the node's Patroni 3 configuration. Loopback trusts
// every connection (a test topology; production uses passwords or
// certificates). pg_rewind lets a killed primary rejoin as a standby.
func (c *Cluster) patroniConfig(n *Node) string {
	return fmt.Sprintf(`scope: hmp
namespace: /service/
name: %[1]s
log:
  level: INFO
restapi:
  listen: 127.0.0.1:%[2]d
  connect_address: 127.0.0.1:%[2]d
etcd:
  host: %[3]s
bootstrap:
  dcs:
    ttl: %[4]d
    loop_wait: %[5]d
    retry_timeout: %[6]d
    maximum_lag_on_failover: 1048576
    synchronous_mode: %[7]t
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        max_connections: 200
        shared_buffers: 128MB
        fsync: "on"
  initdb:
    - encoding: UTF8
    - locale: C
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:%[8]d
  connect_address: 127.0.0.1:%[8]d
  data_dir: %[9]s
  bin_dir: %[10]s
  pgpass: %[11]s
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: postgres
      password: postgres
    rewind:
      username: postgres
      password: postgres
  parameters:
    unix_socket_directories: '%[12]s'
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
`, n.Name, n.APIPort, c.dcs, c.cfg.TTL, c.cfg.LoopWait, c.cfg.RetryTimeout, !c.cfg.Async,
		n.Port, filepath.Join(n.dir, "data"), c.cfg.BinDir, filepath.Join(n.dir, "pgpass"), n.dir)
}

// startPatroni starts (or restarts) a node's Patroni.
func (c *Cluster) startPatroni(n *Node) error {
	p := &proc.Process{Name: "patroni " + n.Name, Dir: os.TempDir(), Log: filepath.Join(n.dir, "patroni.log"), Args: []string{"patroni", n.config}, Cred: c.cred}
	if err := p.Start(); err != nil {
		return fmt.Errorf("ha: %w", err)
	}
	n.mu.Lock()
	n.patroni = p
	n.mu.Unlock()
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ha: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
