//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// auditEntry is the part of a file audit device line the test reads.
type auditEntry struct {
	Type    string `json:"type"`
	Request struct {
		Operation string         `json:"operation"`
		Path      string         `json:"path"`
		Data      map[string]any `json:"data"`
	} `json:"request"`
	Response struct {
		Data map[string]any `json:"data"`
	} `json:"response"`
}

// With a file audit device on, the config write and the issue are audited, and the
// admin key and the issued key appear only as HMACs.
func TestAudit(t *testing.T) {
	t.Parallel()
	v := startVault(t, VaultOptions{})
	f := newFake(t)
	auditPath := enableFileAudit(t, v)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, nil)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "1m"})
	c := issue(t, v, "openai", "r", nil)
	if err := v.Client.Sys().Revoke(c.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}

	raw, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	text := string(raw)
	for name, secret := range map[string]string{"the admin key": f.AdminKey(), "the issued key": c.APIKey} {
		if strings.Contains(text, secret) {
			t.Errorf("%s appears in plain text in the audit log", name)
		}
		if strings.Contains(v.Log(), secret) {
			t.Errorf("%s appears in the Vault server log (which includes the plugin's log)", name)
		}
	}

	var entries []auditEntry
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		var e auditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line is not JSON: %v", err)
		}
		entries = append(entries, e)
	}

	// Vault's HMAC of a value, as the audit device computes it.
	hash := func(in string) string {
		t.Helper()
		s, err := v.Client.Logical().Write("sys/audit-hash/file", map[string]any{"input": in})
		if err != nil {
			t.Fatalf("sys/audit-hash: %v", err)
		}
		h, _ := s.Data["hash"].(string)
		if !strings.HasPrefix(h, "hmac-sha256:") {
			t.Fatalf("sys/audit-hash returned %q", h)
		}
		return h
	}
	adminHash, keyHash := hash(f.AdminKey()), hash(c.APIKey)

	var sawConfig, sawIssueReq, sawIssueResp bool
	for _, e := range entries {
		switch {
		case e.Type == "request" && e.Request.Path == "openai/config" &&
			(e.Request.Operation == "create" || e.Request.Operation == "update"):
			sawConfig = true
			if got := e.Request.Data["admin_api_key"]; got != adminHash {
				t.Errorf("config write audited admin_api_key as %v, want its HMAC", got)
			}
		case e.Request.Path == "openai/creds/r" && e.Request.Operation == "read":
			if e.Type == "request" {
				sawIssueReq = true
			}
			if e.Type == "response" {
				sawIssueResp = true
				if got := e.Response.Data["api_key"]; got != keyHash {
					t.Errorf("issue response audited api_key as %v, want its HMAC", got)
				}
				if got, _ := e.Response.Data["service_account_id"].(string); !strings.HasPrefix(got, "hmac-sha256:") {
					t.Errorf("issue response audited service_account_id as %q, want an HMAC (Vault's default)", got)
				}
			}
		}
	}
	if !sawConfig || !sawIssueReq || !sawIssueResp {
		t.Errorf("audit log lacks entries: config write %t, issue request %t, issue response %t (of %d entries)",
			sawConfig, sawIssueReq, sawIssueResp, len(entries))
	}
}
