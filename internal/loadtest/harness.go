package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"hmp/internal/app"
	"hmp/internal/bus"
	"hmp/internal/config"
	"hmp/internal/postgres"
	"hmp/internal/ratelimit"
	"hmp/internal/seed"
	"hmp/internal/tools"
)

// HarnessConfig says where a load test runs the HMP it measures.
type HarnessConfig struct {
	// DatabaseURL is an existing database to use; empty starts a durable
	// PostgreSQL cluster (fsync on) under DataDir.
	DatabaseURL string
	// DataDir keeps the cluster and its seed record for a later run;
	// empty: the run's temporary folder.
	DataDir string
	// BinDir is the folder of initdb, postgres and pgbench; empty searches.
	BinDir string
	Logger *slog.Logger
}

// Harness is the local environment of one load test: a temporary folder,
// the database (started here unless given), and the APIs and buses
// started on it. Close stops them all, in reverse order, and removes the
// folder.
type Harness struct {
	// Dir is the run's scratch folder, removed by Close.
	Dir string
	// DataDir holds the cluster and its seed record: Dir unless the
	// config named one.
	DataDir string
	// DatabaseURL and BinDir are the database and the PostgreSQL tools.
	DatabaseURL, BinDir string
	// Postmaster is the PID of the cluster started here (0 when given a
	// database): the reports count its CPU.
	Postmaster int

	secret string
	logger *slog.Logger
	stop   []func()
}

// TempDir makes a temporary folder open to the cluster's user (it runs as
// postgres when we are root).
func TempDir() (string, error) {
	dir, err := os.MkdirTemp("", "hmp-loadtest-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// StartHarness makes the run's folder and starts (or opens) its database.
func StartHarness(ctx context.Context, cfg HarnessConfig) (_ *Harness, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := TempDir()
	if err != nil {
		return nil, err
	}
	h := &Harness{Dir: dir, DataDir: dir, DatabaseURL: cfg.DatabaseURL, BinDir: cfg.BinDir, logger: cfg.Logger}
	h.defer_(func() { os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	h.secret = hex.EncodeToString(secret[:])
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, err
		}
		h.DataDir = cfg.DataDir
	}
	if h.DatabaseURL != "" {
		return h, nil
	}
	local, err := postgres.StartLocal(ctx, postgres.LocalConfig{Dir: filepath.Join(h.DataDir, "postgres"), BinDir: cfg.BinDir, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	h.defer_(func() { _ = local.Stop() })
	h.DatabaseURL, h.BinDir = local.URL(), local.BinDir()
	h.Postmaster = PostmasterPID(ctx, h.DatabaseURL)
	return h, nil
}

// defer_ adds a step to Close.
func (h *Harness) defer_(stop func()) { h.stop = append(h.stop, stop) }

// Close stops what the harness started, the last first.
func (h *Harness) Close() {
	for i := len(h.stop) - 1; i >= 0; i-- {
		h.stop[i]()
	}
	h.stop = nil
}

// ErrDataMismatch is a reused data folder seeded with another data set
// than the run asks for.
var ErrDataMismatch = errors.New("the data folder holds another data set")

// Seed seeds the database with cfg, or reuses what an earlier run (or
// hmp seed --data-dir) seeded into the data folder. The data set's
// Password is the seeded users' (the record's when reused).
func (h *Harness) Seed(ctx context.Context, cfg seed.Config) (*DataSet, error) {
	if rec, ok, err := seed.ReadRecord(h.DataDir); err != nil {
		return nil, err
	} else if ok {
		if rec.Orgs != cfg.Orgs {
			return nil, fmt.Errorf("%w: --data %s holds %d seeded organizations, not --orgs %d", ErrDataMismatch, h.DataDir, rec.Orgs, cfg.Orgs)
		}
		ds := dataSet(rec)
		ds.Reused = true
		return ds, nil
	}
	// Opened and migrated as hmp seed does.
	db, err := tools.OpenTool(ctx, config.Config{DatabaseURL: h.DatabaseURL}, h.logger, tools.ToolOptions{Conns: cfg.WithDefaults().Workers + 2})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res, err := seed.Run(ctx, db.Pool, cfg)
	if err != nil {
		return nil, err
	}
	if err := seed.WriteRecord(h.DataDir, res); err != nil {
		return nil, err
	}
	return dataSet(res), nil
}

func dataSet(r seed.Result) *DataSet {
	return &DataSet{Orgs: r.Orgs, Days: r.Days, Density: r.Density, Rows: r.TotalRows, SeedSeconds: r.Elapsed.Seconds(),
		RowsPerSecond: r.RowsPerSecond, DatabaseBytes: r.DatabaseBytes, Password: r.Password}
}

// API is an HMP the harness started: role all, or a split deployment
// behind its gateway.
type API struct {
	URL  string
	stop []func()
}

// Close stops the API (a split deployment's gateway first, its bus
// last). A second call does nothing: the harness closes what its caller
// did not.
func (a *API) Close() {
	for i := len(a.stop) - 1; i >= 0; i-- {
		a.stop[i]()
	}
	a.stop = nil
}

// APIConfig completes cfg for an API of this run: a loopback port, a data
// folder (DataDir/app unless set), the run's database and token secret,
// a cheap password hash, and no login or signup budgets (one client
// address signs up and logs in every organization; write budgets stay
// the profile's, phase3 measures them).
func (h *Harness) APIConfig(cfg config.Config) config.Config {
	cfg.HTTPAddr = "127.0.0.1:0"
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(h.DataDir, "app")
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = h.DatabaseURL
	}
	if cfg.TokenSecret == "" {
		cfg.TokenSecret = h.secret
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = 4
	}
	cfg.RateLimits = config.RateLimits{
		LoginPerEmail: ratelimit.Limit{Count: -1},
		LoginPerAddr:  ratelimit.Limit{Count: -1},
		SignupPerAddr: ratelimit.Limit{Count: -1},
	}
	return cfg
}

// StartAPI starts role all in this process with APIConfig(cfg). The
// harness stops it at Close unless the caller closes it first.
func (h *Harness) StartAPI(ctx context.Context, cfg config.Config) (*API, error) {
	a, err := app.Start(ctx, h.APIConfig(cfg), h.logger)
	if err != nil {
		return nil, err
	}
	api := &API{URL: "http://" + a.Addr, stop: []func(){a.Close}}
	h.defer_(api.Close)
	return api, nil
}

// StartSplit starts a split deployment with APIConfig(cfg): a NATS server
// with JetStream on a loopback port, n finance and n reports instances,
// and one gateway, whose URL the API has.
func (h *Harness) StartSplit(ctx context.Context, cfg config.Config, n int) (_ *API, err error) {
	api := &API{}
	defer func() {
		if err != nil {
			api.Close()
		}
	}()
	ns, err := startNATS(filepath.Join(h.DataDir, "nats-split"))
	if err != nil {
		return nil, err
	}
	api.stop = append(api.stop, func() { ns.Shutdown(); ns.WaitForShutdown() })
	base := h.APIConfig(cfg)
	start := func(role string, i int) (*app.App, error) {
		c := base
		c.Role, c.NATSURL = role, ns.ClientURL()
		c.DataDir = filepath.Join(h.DataDir, fmt.Sprintf("app-%s-%d", role, i))
		a, err := app.Start(ctx, c, h.logger)
		if err != nil {
			return nil, fmt.Errorf("start %s %d: %w", role, i, err)
		}
		api.stop = append(api.stop, a.Close)
		return a, nil
	}
	for _, role := range []string{config.RoleFinance, config.RoleReports} {
		for i := range n {
			if _, err := start(role, i); err != nil {
				return nil, err
			}
		}
	}
	gw, err := start(config.RoleGateway, 0)
	if err != nil {
		return nil, err
	}
	api.URL = "http://" + gw.Addr
	h.defer_(api.Close)
	return api, nil
}

func startNATS(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{ServerName: "hmp-loadtest", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: dir, NoSigs: true, NoLog: true, MaxPayload: 8 << 20})
	if err != nil {
		return nil, fmt.Errorf("nats for the split deployment: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats for the split deployment did not start in 30s")
	}
	return ns, nil
}

// StartBus opens an embedded JetStream in the run's folder, closed at
// Close.
func (h *Harness) StartBus(ctx context.Context) (*bus.Bus, error) {
	b, err := bus.Open(ctx, bus.Config{StoreDir: filepath.Join(h.Dir, "nats")}, h.logger)
	if err != nil {
		return nil, err
	}
	h.defer_(b.Close)
	return b, nil
}
