//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Role names the path pattern admits but Vault's storage refuses ("..") are a
// 400 naming the field through a real Vault and its CLI, on every path that
// takes a role name; they were a 500 ("internal error", "relative paths not
// supported"). Names the pattern does not admit are never a 500 either.
func TestRoleNamesStorageRefusesAre400(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, nil)
	for _, args := range [][]string{
		{"write", "openai/roles/bad..name", "project_id=" + fakeopenai.ProjectActive},
		{"read", "openai/roles/bad..name"},
		{"delete", "openai/roles/bad..name"},
		{"read", "openai/creds/bad..name"},
		{"write", "openai/creds/bad..name", "ttl=5m"},
		{"write", "openai/roles/" + strings.Repeat("n", 200), "project_id=" + fakeopenai.ProjectActive},
	} {
		_, stderr, code := v.CLI(args...)
		label := strings.Join(args[:2], " ")
		if len(label) > 60 {
			label = label[:60] + "..."
		}
		if code == 0 || !strings.Contains(stderr, "Code: 400") || !strings.Contains(stderr, "name") {
			t.Errorf("vault %s: exit %d, want a 400 naming the field; stderr: %s", label, code, stderr)
		}
	}
	for _, args := range [][]string{
		{"read", "openai/roles/.."},
		{"write", "openai/roles/a/..", "project_id=" + fakeopenai.ProjectActive},
		{"read", "openai/creds/.."},
	} {
		_, stderr, code := v.CLI(args...)
		if code == 0 || strings.Contains(stderr, "Code: 500") {
			t.Errorf("vault %s: exit %d, want a 4xx; stderr: %s", strings.Join(args, " "), code, stderr)
		}
	}
	if n := len(f.LiveAccounts()); n != 0 {
		t.Errorf("%d accounts created", n)
	}
}
