package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"hmp/internal/app"
	"hmp/internal/config"
)

// registerOperator adds the operator surface's flags to hmp serve.
func registerOperator(fs *flag.FlagSet, cfg *config.Config) {
	fs.StringVar(&cfg.OperatorAddr, "operator-addr", "", "address of the operator surface (/metrics, /dashboard, /v1/admin, /debug/pprof) apart from the API; empty: on the API's port (HMP_OPERATOR_ADDR)")
	fs.Func("trusted-proxies", "comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed by the operator guard and the dashboard cookie; empty: none (HMP_TRUSTED_PROXIES)", func(s string) error {
		cfg.TrustedProxies = nil
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
		}
		return nil
	})
	fs.DurationVar(&cfg.DashboardSessionTTL, "dashboard-session-ttl", 0, "how long a dashboard login lasts; 0: default 12h (HMP_DASHBOARD_SESSION_TTL)")
	fs.Var((*limitFlag)(&cfg.RateLimits.OperatorPerAddr), "ratelimit-operator-addr", "failed operator authentications per client address, then 429 for every attempt, default 10/10m; COUNT/PERIOD or off (HMP_RATELIMIT_OPERATOR_ADDR)")
}

// printOperator tells whoever started hmp serve in a terminal (make run)
// where the dashboard is and how to log in. Piped output stays log lines
// only; the log says the same as operator_dashboard.
func printOperator(w io.Writer, a *app.App) {
	if f, ok := w.(*os.File); !ok || !isTerminal(f) {
		return
	}
	if a.Config.AdminToken == "" {
		fmt.Fprintln(w, "hmp: the operator surface (dashboard, /v1/admin) is closed: set HMP_ADMIN_TOKEN (openssl rand -hex 32)")
		return
	}
	fmt.Fprintf(w, "hmp: API on http://%s; dashboard on %s\n", a.Addr, a.DashboardURL())
	if a.AdminTokenFile != "" {
		fmt.Fprintf(w, "hmp: log in with the operator token in %s (cat %s); set HMP_ADMIN_TOKEN to choose your own\n", a.AdminTokenFile, a.AdminTokenFile)
		return
	}
	fmt.Fprintln(w, "hmp: log in with the operator token you set (HMP_ADMIN_TOKEN)")
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
