package config

// The secrets a data dir keeps when none is configured: role all then
// runs with nothing to set, and keeps them across restarts.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"hmp/internal/operator"
)

// adminTokenFile is where role all keeps the operator token it generated.
const adminTokenFile = "admin.token"

// OperatorToken returns the operator token in force and, when it was
// generated (role all without HMP_ADMIN_TOKEN), the file that holds it:
// made once with 32 random bytes, as the token secret is (Secret), and
// read again on later starts.
func (cfg Config) OperatorToken() (token, file string, err error) {
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

// Secret returns the token secret in force: the configured one, or one
// generated once and kept in the data dir (DataDir/token.key).
func (cfg Config) Secret() ([]byte, error) {
	if cfg.TokenSecret != "" {
		return []byte(cfg.TokenSecret), nil
	}
	path := filepath.Join(cfg.DataDir, "token.key")
	if b, err := os.ReadFile(path); err == nil {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	var buf [32]byte
	_, _ = rand.Read(buf[:])
	secret := hex.EncodeToString(buf[:])
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write token secret: %w", err)
	}
	return []byte(secret), nil
}
