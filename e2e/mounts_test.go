//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Two mounts of the plugin, served by one multiplexed process, with different
// configs stay isolated: each talks only to its own Admin API with its own key.
func TestTwoMountsIsolated(t *testing.T) {
	t.Parallel()
	v := startVault(t, VaultOptions{})
	fa, fb := newFake(t), newFake(t)
	fb.AddProject("proj_only_b", "only at B", "active")
	registerPlugin(t, v)
	mountPlugin(t, v, "openai-a")
	mountPlugin(t, v, "openai-b")
	writeConfig(t, v, "openai-a", fa, nil)
	writeConfig(t, v, "openai-b", fb, nil)

	// The role check runs against the mount's own Admin API: B's project is unknown to A.
	_, err := v.Client.Logical().Write("openai-a/roles/r", map[string]any{"project_id": "proj_only_b"})
	if code, msg := responseError(err); code != http.StatusBadRequest || !strings.Contains(msg, "proj_only_b") {
		t.Errorf("role on A with B's project: status %d %q, want 400 naming the project", code, msg)
	}
	writeRole(t, v, "openai-a", "r", map[string]any{"ttl": "10m"})
	writeRole(t, v, "openai-b", "r", map[string]any{"ttl": "10m", "project_id": "proj_only_b"})

	for _, m := range []string{"openai-a", "openai-b"} {
		s, err := v.Client.Logical().Read(m + "/config")
		if err != nil || s == nil {
			t.Fatalf("reading %s/config: %v", m, err)
		}
		want := fa
		if m == "openai-b" {
			want = fb
		}
		if s.Data["admin_api_key_id"] != want.AdminKeyID() || s.Data["base_url"] != want.URL {
			t.Errorf("%s/config: admin_api_key_id=%v base_url=%v, want %s %s",
				m, s.Data["admin_api_key_id"], s.Data["base_url"], want.AdminKeyID(), want.URL)
		}
	}

	ca := issue(t, v, "openai-a", "r", nil)
	cb := issue(t, v, "openai-b", "r", nil)
	if ca.ProjectID != fakeopenai.ProjectActive || cb.ProjectID != "proj_only_b" {
		t.Errorf("projects: A %s, B %s", ca.ProjectID, cb.ProjectID)
	}
	if !fa.Has(ca.ServiceAccountID) || fa.Has(cb.ServiceAccountID) || len(fa.LiveAccounts()) != 1 {
		t.Errorf("fake A should hold exactly A's account")
	}
	if !fb.Has(cb.ServiceAccountID) || fb.Has(ca.ServiceAccountID) || len(fb.LiveAccounts()) != 1 {
		t.Errorf("fake B should hold exactly B's account")
	}

	// Multiplexing: both mounts are served by a single plugin process.
	if pids := v.PluginPIDs(); len(pids) != 1 {
		t.Errorf("%d plugin processes serve two mounts, want 1 (multiplexed)", len(pids))
	}

	// Revoking A's lease touches only A; deleting A's config leaves B working.
	if err := v.Client.Sys().Revoke(ca.LeaseID); err != nil {
		t.Fatalf("revoking A's lease: %v", err)
	}
	if fa.Has(ca.ServiceAccountID) || !fb.Has(cb.ServiceAccountID) {
		t.Errorf("after revoking A's lease: A still has it %t, B lost its own %t",
			fa.Has(ca.ServiceAccountID), !fb.Has(cb.ServiceAccountID))
	}
	if _, err := v.Client.Logical().Delete("openai-a/config"); err != nil {
		t.Fatalf("deleting A's config: %v", err)
	}
	if _, err := tryIssue(v, "openai-a", "r", nil); err == nil {
		t.Errorf("A issued a key without config")
	}
	cb2 := issue(t, v, "openai-b", "r", nil)
	if !fb.Has(cb2.ServiceAccountID) || len(fa.LiveAccounts()) != 0 {
		t.Errorf("B's issue after A's config delete: at B %t, A holds %d", fb.Has(cb2.ServiceAccountID), len(fa.LiveAccounts()))
	}
	if fb.Calls()[fakeopenai.OpCreateServiceAccount] != 2 || fa.Calls()[fakeopenai.OpCreateServiceAccount] != 1 {
		t.Errorf("create calls: A %d (want 1), B %d (want 2)",
			fa.Calls()[fakeopenai.OpCreateServiceAccount], fb.Calls()[fakeopenai.OpCreateServiceAccount])
	}
}
