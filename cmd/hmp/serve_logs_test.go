package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"hmp/internal/logtest"
)

var startedAddr = regexp.MustCompile(`"?msg"?[=:]"?hmp_started"?.*?"?addr"?[=:]"?(127\.0\.0\.1:\d+)`)

// startServe runs hmp serve with args until the test ends and returns its
// address and its log output.
func startServe(t *testing.T, args ...string) (string, *logtest.Buffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &logtest.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve", "--http-addr", "127.0.0.1:0"}, args...), out, out) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hmp serve: %v\n%s", err, out.String())
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if m := startedAddr.FindStringSubmatch(out.String()); m != nil {
			return m[1], out, stop
		}
		select {
		case err := <-done:
			t.Fatalf("hmp serve ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("hmp serve did not start:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeLogs runs hmp serve with JSON logs at debug level, signs up,
// logs in and writes with the bearer token, and checks the log: every line
// JSON, requests carrying their request and organization ids, and no
// token, password or operator token anywhere. Then --log-format text
// serves with key=value lines.
func TestServeLogs(t *testing.T) {
	dir := t.TempDir()
	const admin = "operator-secret-token-0123456789"
	const password = "hunter2-correct-horse"
	addr, logs, stop := startServe(t, "--data-dir", dir, "--log-format", "json", "--log-level", "debug", "--admin-token", admin, "--bcrypt-cost", "4")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	call := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, signup := call("POST", "/v1/auth/signup", "", fmt.Sprintf(`{"orgName":"Logs Inn","email":"logs@example.test","password":%q,"displayName":"Log Admin"}`, password))
	if status != 201 {
		t.Fatalf("signup: %d %v", status, signup)
	}
	token, _ := signup["accessToken"].(string)
	orgID, _ := signup["orgId"].(string)
	if status, _ := call("POST", "/v1/auth/login", "", fmt.Sprintf(`{"email":"logs@example.test","password":%q}`, password)); status != 200 {
		t.Fatalf("login: %d", status)
	}
	if status, _ := call("POST", "/v1/auth/login", "", `{"email":"logs@example.test","password":"wrong-guess-pass"}`); status != 401 {
		t.Fatalf("bad login: %d", status)
	}
	if status, _ := call("POST", "/v1/properties", token, `{"name":"Logged","type":"hotel"}`); status != 201 {
		t.Fatalf("property: %d", status)
	}
	if status, _ := call("GET", "/v1/admin/alerts", admin, ""); status != 200 {
		t.Fatalf("alerts: %d", status)
	}
	stop()

	text := logs.String()
	for _, secret := range []string{token, password, "wrong-guess-pass", admin} {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("the log holds a secret %q", secret)
		}
	}
	var withOrg, requests int
	for line := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not a JSON log line: %q", line)
			continue
		}
		if rec["msg"] == "http_request" {
			requests++
			if id, _ := rec["request_id"].(string); id == "" {
				t.Errorf("request logged without request_id: %s", line)
			}
			if rec["org_id"] == orgID {
				withOrg++
			}
		}
	}
	if requests < 5 || withOrg < 1 {
		t.Errorf("%d requests logged, %d with the organization id %s, want >= 5 and >= 1:\n%s", requests, withOrg, orgID, text)
	}

	_, textLogs, stop := startServe(t, "--data-dir", dir, "--log-format", "text")
	stop()
	if !strings.Contains(textLogs.String(), "level=INFO msg=hmp_started addr=127.0.0.1:") {
		t.Errorf("text logs:\n%s", textLogs.String())
	}
}
