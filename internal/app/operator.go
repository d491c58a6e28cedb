package app

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hmp/internal/httpapi"
	"hmp/internal/operator"
	"hmp/internal/ratelimit"
)

// adminTokenFile is where role all keeps the operator token it generated.
const adminTokenFile = "admin.token"

// adminToken returns the operator token in force and, when it was
// generated (role all without HMP_ADMIN_TOKEN), the file that holds it:
// made once with 32 random bytes, as the token secret is (tokenSecret),
// and read again on later starts.
func adminToken(cfg Config) (token, file string, err error) {
	if cfg.AdminToken != "" || cfg.Role != RoleAll {
		return cfg.AdminToken, "", nil
	}
	path := filepath.Join(cfg.DataDir, adminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if err := operator.ValidateToken(tok); err != nil {
			return "", "", fmt.Errorf("operator token in %s: %w", path, err)
		}
		return tok, path, nil
	}
	var buf [32]byte
	_, _ = rand.Read(buf[:])
	tok := hex.EncodeToString(buf[:])
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("write operator token: %w", err)
	}
	return tok, path, nil
}

// operatorGuard builds the one guard of the operator surface (the
// /v1/admin API and the dashboard share its budgets and its metric). Its
// budget of failures per address is limiter's operator_addr limit; a role
// without a limiter gets one holding only that limit (shared through
// Redis when configured).
func (a *App) operatorGuard(limiter *ratelimit.Limiter, reg prometheus.Registerer) (*operator.Guard, error) {
	if a.guard != nil {
		return a.guard, nil
	}
	if limiter == nil {
		var err error
		if limiter, err = a.limiterOf(a.cfg, map[string]ratelimit.Limit{ratelimit.OperatorAddr: a.cfg.RateLimits.OperatorPerAddr}, reg); err != nil {
			return nil, err
		}
	}
	proxies, err := operator.ParseProxies(a.cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	a.guard = operator.New(operator.Config{Token: a.cfg.AdminToken, Limiter: limiter, Proxies: proxies, Registerer: reg, Logger: a.logger})
	return a.guard, nil
}

func (a *App) newServer(handler http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(a.dash.Close)
	return srv
}

// listen serves handler on the configured address, and, with an operator
// address, its operator surface there instead (the API port then answers
// 404 for it).
func (a *App) listen(handler http.Handler) error {
	public := handler
	if a.cfg.OperatorAddr != "" {
		public = httpapi.PublicOnly(handler)
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	a.Addr, a.OperatorAddr = ln.Addr().String(), ln.Addr().String()
	if a.cfg.OperatorAddr != "" {
		oln, err := net.Listen("tcp", a.cfg.OperatorAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen on %s (operator): %w", a.cfg.OperatorAddr, err)
		}
		a.OperatorAddr = oln.Addr().String()
		a.opSrv = a.newServer(httpapi.OperatorOnly(handler))
		go func() { a.served <- a.opSrv.Serve(oln) }()
	}
	a.srv = a.newServer(public)
	go func() { a.served <- a.srv.Serve(ln) }()
	a.logOperator()
	return nil
}

// logOperator says where the dashboard is and how to log in (or that the
// operator surface is closed).
func (a *App) logOperator() {
	if !a.guard.On() {
		a.logger.Info("operator_surface_closed", "reason", "no operator token (HMP_ADMIN_TOKEN)")
		return
	}
	login := "the operator token (HMP_ADMIN_TOKEN)"
	if a.AdminTokenFile != "" {
		login = "the operator token in " + a.AdminTokenFile
	}
	a.logger.Info("operator_dashboard", "url", a.DashboardURL(), "login", login, "apart", a.cfg.OperatorAddr != "")
}

// DashboardURL is the dashboard's address on this instance.
func (a *App) DashboardURL() string {
	host, port, err := net.SplitHostPort(a.OperatorAddr)
	if err != nil {
		return "http://" + a.OperatorAddr + "/dashboard"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // listening everywhere: this machine's loopback reaches it
	}
	return "http://" + net.JoinHostPort(host, port) + "/dashboard"
}
