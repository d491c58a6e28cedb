package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"hmp/internal/app"
	"hmp/internal/loadtest"
)

// splitDeployment is a split deployment a load test starts in this
// process: a NATS server with JetStream on a loopback port, n finance and
// n reports instances, and one gateway, all on the run's database.
type splitDeployment struct {
	URL  string
	ns   *server.Server
	apps []*app.App
}

// startSplit starts a split deployment from base (the config role all
// would run with).
func startSplit(ctx context.Context, base app.Config, dir string, n int, logger *slog.Logger) (_ *splitDeployment, err error) {
	d := &splitDeployment{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	ns, err := server.NewServer(&server.Options{ServerName: "hmp-loadtest", Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(dir, "nats-split"), NoSigs: true, NoLog: true, MaxPayload: 8 << 20})
	if err != nil {
		return nil, fmt.Errorf("nats for the split deployment: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats for the split deployment did not start in 30s")
	}
	d.ns = ns
	start := func(role string, i int) (*app.App, error) {
		cfg := base
		cfg.Role, cfg.NATSURL, cfg.HTTPAddr = role, ns.ClientURL(), "127.0.0.1:0"
		cfg.DataDir = filepath.Join(dir, fmt.Sprintf("app-%s-%d", role, i))
		a, err := app.Start(ctx, cfg, logger)
		if err != nil {
			return nil, fmt.Errorf("start %s %d: %w", role, i, err)
		}
		d.apps = append(d.apps, a)
		return a, nil
	}
	for _, role := range []string{app.RoleFinance, app.RoleReports} {
		for i := range n {
			if _, err := start(role, i); err != nil {
				return nil, err
			}
		}
	}
	gw, err := start(app.RoleGateway, 0)
	if err != nil {
		return nil, err
	}
	d.URL = "http://" + gw.Addr
	return d, nil
}

// Close stops the instances (the gateway first), then NATS.
func (d *splitDeployment) Close() {
	for i := len(d.apps) - 1; i >= 0; i-- {
		d.apps[i].Close()
	}
	d.apps = nil
	if d.ns != nil {
		d.ns.Shutdown()
		d.ns.WaitForShutdown()
		d.ns = nil
	}
}

// runSplit runs the workload through a split deployment started with
// cfg, labelled "<profile> via gateway (N+N)".
func (f *mixedFlags) runSplit(ctx context.Context, cfg app.Config, dir, profile string, postmaster int, logger *slog.Logger, stderr io.Writer) (*loadtest.MixedResult, error) {
	fmt.Fprintf(stderr, "mixed: profile %s through a gateway to %d finance and %d reports instances\n", orDefault(profile), f.split, f.split)
	d, err := startSplit(ctx, cfg, dir, f.split, logger)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	r, err := f.runOn(ctx, d.URL, profile, postmaster, logger)
	if err != nil {
		return nil, err
	}
	r.Profile = fmt.Sprintf("%s via gateway (%d+%d)", orDefault(profile), f.split, f.split)
	return r, nil
}
