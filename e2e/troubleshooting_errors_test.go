//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// troubleshootingStrings are the "you see" column of the README's
// Troubleshooting table. TestTroubleshootingStringsExist (backend) checks
// that each still appears in the file the table names; this test provokes
// each on a real Vault and checks that a user actually sees it, through the
// API and, where the CLI is how users meet it, through `vault`.
var troubleshootingStrings = map[string]string{
	"sha":          "checksums did not match",
	"denied":       "permission denied",
	"unconfigured": "the OpenAI engine is not configured",
	"unknownRole":  "unknown role",
	"notFound":     "was not found in the OpenAI organization",
	"archived":     "service accounts can only be created in an active project",
	"keyRejected":  "was rejected by OpenAI",
	"issueAuth":    "OpenAI rejected the engine's admin key",
	"unreachable":  "OpenAI unreachable",
	"rateLimited":  "rate limited by OpenAI",
	"scope":        "OpenAI refused a key with scopes",
	"cap":          "keys are live",
	"budget":       "can no longer be renewed; request a new key",
	"expiryMove":   "renew: could not move the OpenAI-side expiry",
}

// wantError fails unless err is a refusal whose message contains the
// table's string for key; it returns the HTTP status.
func wantError(t *testing.T, key string, err error) int {
	t.Helper()
	want := troubleshootingStrings[key]
	if err == nil {
		t.Errorf("%s: the call succeeded; want an error containing %q", key, want)
		return 0
	}
	status, msg := responseError(err)
	if !strings.Contains(msg, want) {
		t.Errorf("%s: HTTP %d %q does not contain the README's %q", key, status, msg, want)
	} else {
		t.Logf("%s: HTTP %d: %s", key, status, msg)
	}
	return status
}

// wantCLI runs vault args and fails unless it exits non-zero with the
// table's string for key on stderr.
func wantCLI(t *testing.T, v *Vault, key string, args ...string) {
	t.Helper()
	want := troubleshootingStrings[key]
	_, stderr, code := v.CLI(args...)
	if code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("%s: vault %s: exit %d, stderr %q; want a failure containing %q", key, strings.Join(args, " "), code, v.redact(stderr), want)
	}
}

func TestTroubleshootingErrorsSeenOnRealVault(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, nil)
	l := v.Client.Logical()
	// Config changes below are made on the main mount without force: no key
	// is live there when they happen, except where noted.

	// Token budget first, on a mount of its own: the kill happens on a
	// periodic tick (about a minute), checked last.
	fb := newFake(t)
	mountPlugin(t, v, "openai-budget")
	writeConfig(t, v, "openai-budget", fb, nil)
	writeRole(t, v, "openai-budget", "b", map[string]any{"max_tokens_per_key": 100})
	overBudget := issue(t, v, "openai-budget", "b", nil)
	if err := fb.AddUsage(fakeopenai.Usage{APIKeyID: overBudget.APIKeyID, ProjectID: fakeopenai.ProjectActive, InputTokens: 500, OutputTokens: 50, Requests: 1}); err != nil {
		t.Fatal(err)
	}

	// SHA mismatch at enable: registered with a SHA-256 that is not the
	// binary's (registration does not read the file).
	if _, stderr, code := v.CLI("plugin", "register", "-sha256="+strings.Repeat("ab", 32),
		"-version=v0.0.1", "-command=vault-plugin-openai", "secret", "vault-plugin-openai"); code != 0 {
		t.Fatalf("plugin register with another SHA-256: exit %d: %s", code, stderr)
	}
	wantCLI(t, v, "sha", "secrets", "enable", "-path=openai-badsha", "-plugin-version=v0.0.1", "vault-plugin-openai")
	wantError(t, "sha", v.Client.Sys().Mount("openai-badsha2", &api.MountInput{Type: "vault-plugin-openai", Config: api.MountConfigInput{PluginVersion: "v0.0.1"}}))

	// Permission denied: an app token whose policy names role app reads
	// another role's creds.
	writeRole(t, v, "openai", "app", nil)
	if err := v.Client.Sys().PutPolicy("app", `path "openai/creds/app" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"app"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	v.AddSecret(tok.Auth.ClientToken)
	app, err := v.Client.Clone()
	if err != nil {
		t.Fatal(err)
	}
	app.SetToken(tok.Auth.ClientToken)
	_, err = app.Logical().Read("openai/creds/r")
	if wantError(t, "denied", err) != 403 {
		t.Errorf("denied: want HTTP 403")
	}

	// Unknown role.
	_, err = l.Read("openai/creds/nope")
	wantError(t, "unknownRole", err)
	wantCLI(t, v, "unknownRole", "read", "openai/creds/nope")

	// Missing config: a mount never configured.
	mountPlugin(t, v, "openai-bare")
	_, err = l.Write("openai-bare/roles/app", map[string]any{"project_id": fakeopenai.ProjectActive})
	wantError(t, "unconfigured", err)
	wantCLI(t, v, "unconfigured", "write", "-f", "openai-bare/config/rotate-root")

	// Project unknown and archived (role write).
	_, err = l.Write("openai/roles/x", map[string]any{"project_id": "proj_nope"})
	wantError(t, "notFound", err)
	_, err = l.Write("openai/roles/x", map[string]any{"project_id": fakeopenai.ProjectArchived})
	wantError(t, "archived", err)

	// A scope OpenAI refuses (role write's probe).
	f.SetRejectedScopes(fakeopenai.ProjectActive, "api.bogus")
	_, err = l.Write("openai/roles/s", map[string]any{"project_id": fakeopenai.ProjectActive, "scopes": "api.bogus"})
	wantError(t, "scope", err)
	f.SetRejectedScopes(fakeopenai.ProjectActive)

	// Admin key rejected at config write; nothing stored.
	_, err = l.Write("openai/config", map[string]any{"admin_api_key": "sk-admin-not-a-real-key-0000"})
	wantError(t, "keyRejected", err)

	// Rate limited: OpenAI answers 429 to every create; one retry only.
	if _, err := l.Write("openai/config", map[string]any{"max_retries": 1}); err != nil {
		t.Fatal(err)
	}
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.Fault429, Rate: 1, RetryAfter: 1}}})
	_, err = l.Read("openai/creds/r")
	if status := wantError(t, "rateLimited", err); status != http.StatusTooManyRequests {
		t.Errorf("a throttled issue answered HTTP %d; want 429 (retry later)", status)
	}

	// The stored admin key rejected at issue (OpenAI answers 401).
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.Fault401, Rate: 1}}})
	_, err = l.Read("openai/creds/r")
	wantError(t, "issueAuth", err)
	f.SetFaults(fakeopenai.Faults{})

	// OpenAI unreachable: config pointing at a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("http://%s/v1", ln.Addr())
	ln.Close()
	mountPlugin(t, v, "openai-dead")
	_, err = l.Write("openai-dead/config", map[string]any{
		"admin_api_key": f.AdminKey(), "base_url": dead, "max_retries": 0, "request_timeout": "2s",
	})
	wantError(t, "unreachable", err)

	// The live-key cap.
	writeRole(t, v, "openai", "one", map[string]any{"max_live_keys": 1})
	first := issue(t, v, "openai", "one", nil)
	_, err = l.Read("openai/creds/one")
	wantError(t, "cap", err)
	wantCLI(t, v, "cap", "read", "openai/creds/one")
	if err := v.Client.Sys().RevokeWithContext(t.Context(), first.LeaseID); err != nil {
		t.Errorf("revoking %s: %v", first.LeaseID, err)
	}

	// A renewal whose key expiry OpenAI will not move (the key was deleted
	// at OpenAI, as from the dashboard): the lease is not extended.
	moved := issue(t, v, "openai", "r", nil)
	if !f.DeleteKey(fakeopenai.ProjectActive, moved.APIKeyID) {
		t.Errorf("expiryMove: the fake has no key %s", moved.APIKeyID)
	}
	_, err = v.Client.Sys().Renew(moved.LeaseID, 600)
	wantError(t, "expiryMove", err)

	// The budget-killed key's renewal, once the periodic check has
	// killed it (its ledger entry says revoked_by budget).
	took := waitFor(t, 150*time.Second, "the budget check to kill the over-budget key", func() bool {
		s, err := l.Read("openai-budget/keys/" + overBudget.APIKeyID)
		return err == nil && s != nil && s.Data["revoked_by"] == "budget"
	})
	t.Logf("budget: key killed %s after the usage was recorded", took.Round(time.Second))
	if fb.Has(overBudget.ServiceAccountID) {
		t.Errorf("budget: the killed key's service account is still live at the fake")
	}
	_, err = v.Client.Sys().Renew(overBudget.LeaseID, 600)
	wantError(t, "budget", err)
	wantCLI(t, v, "budget", "lease", "renew", overBudget.LeaseID)
}

// TestTroubleshootingTableRowsAreProvoked: every row of the README's
// Troubleshooting table (rows as TestTroubleshootingStringsExist parses
// them: a line starting "| `" whose first cell's backticked text is what
// the user sees) is one TestTroubleshootingErrorsSeenOnRealVault provokes,
// so no row's string goes unasserted against real behaviour.
func TestTroubleshootingTableRowsAreProvoked(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(suite.repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n## Troubleshooting\n")
	if start < 0 {
		t.Fatal("README.md has no Troubleshooting section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	provoked := map[string]bool{}
	for _, s := range troubleshootingStrings {
		provoked[s] = true
	}
	code := regexp.MustCompile("`([^`]+)`")
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cells) < 4 {
			continue
		}
		rows++
		if seen := code.FindStringSubmatch(cells[0]); seen == nil || !provoked[seen[1]] {
			t.Errorf("README Troubleshooting row is not provoked by TestTroubleshootingErrorsSeenOnRealVault: %s", cells[0])
		}
	}
	if rows == 0 {
		t.Error("no rows parsed from the README's Troubleshooting table")
	}
}
