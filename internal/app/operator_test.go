package app_test

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"hmp/internal/apptest"
	"hmp/internal/config"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func operatorGet(t *testing.T, base, path, token string, cookie *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOperatorListener: with HMP_OPERATOR_ADDR and no HMP_ADMIN_TOKEN, the
// instance generates an operator token into its data dir and says where,
// with the dashboard's address; the API port serves the API, its document
// and the health checks but not /metrics, /dashboard or /v1/admin, which
// the operator port serves.
func TestOperatorListener(t *testing.T) {
	env := apptest.Start(t, cluster, func(c *config.Config) { c.OperatorAddr = "127.0.0.1:0" })
	a := env.App
	if a.OperatorAddr == a.Addr || a.AdminTokenFile == "" {
		t.Fatalf("operator addr %s (api %s), token file %q", a.OperatorAddr, a.Addr, a.AdminTokenFile)
	}
	b, err := os.ReadFile(a.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if logs := env.Logs.String(); !strings.Contains(logs, "operator_dashboard") || !strings.Contains(logs, "http://"+a.OperatorAddr+"/dashboard") ||
		!strings.Contains(logs, a.AdminTokenFile) || strings.Contains(logs, token) {
		t.Fatalf("the start log does not say where the dashboard and its token are (or holds the token):\n%s", logs)
	}
	api, op := "http://"+a.Addr, "http://"+a.OperatorAddr
	for _, tc := range []struct {
		base, path string
		want       int
	}{
		{api, "/v1/admin/alerts", 404}, {api, "/v1/admin/settings", 404}, {api, "/dashboard", 404}, {api, "/metrics", 404},
		{api, "/healthz", 200}, {api, "/readyz", 200}, {api, "/openapi.json", 200},
		{op, "/v1/admin/alerts", 200}, {op, "/v1/admin/settings", 200}, {op, "/dashboard", 200}, {op, "/metrics", 200},
		{op, "/healthz", 200}, {op, "/v1/properties", 404},
	} {
		if got := operatorGet(t, tc.base, tc.path, token, nil); got != tc.want {
			t.Errorf("GET %s%s: %d, want %d", tc.base, tc.path, got, tc.want)
		}
	}
	env.Signup("Public Only") // the API itself is on the API port
}

// TestDashboardLogoutEveryInstance: two instances on one bus share the
// dashboard's sessions: a login on one is valid on the other, and a logout
// on either ends it on both at once.
func TestDashboardLogoutEveryInstance(t *testing.T) {
	natsURL := startNATS(t)
	db := cluster.NewDatabase(t)
	shared := func(c *config.Config) { c.DatabaseURL, c.NATSURL = db, natsURL }
	a := apptest.Start(t, cluster, admin, shared)
	b := apptest.Start(t, cluster, admin, shared)
	resp, err := noRedirect.PostForm(a.BaseURL+"/dashboard/login", url.Values{"token": {testAdminToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if resp.StatusCode != 303 || len(cs) != 1 {
		t.Fatalf("login: %d %v", resp.StatusCode, cs)
	}
	if got := operatorGet(t, b.BaseURL, "/dashboard", "", cs[0]); got != 200 {
		t.Fatalf("the other instance with the cookie: %d", got)
	}
	req, _ := http.NewRequest("POST", b.BaseURL+"/dashboard/logout", nil)
	req.AddCookie(cs[0])
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	for _, env := range []*apptest.Env{a, b} {
		if got := operatorGet(t, env.BaseURL, "/dashboard", "", cs[0]); got != 401 {
			t.Fatalf("%s after the logout: %d", env.BaseURL, got)
		}
	}
}
