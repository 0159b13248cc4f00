//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// Leases outlive a plugin reload and a Vault restart on file storage: they still
// revoke (and renew) afterwards.
func TestReloadAndRestart(t *testing.T) {
	t.Parallel()
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, nil)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "30m", "max_ttl": "2h"})

	beforeReload := issue(t, v, "openai", "r", nil)
	pids := v.PluginPIDs()
	if len(pids) != 1 {
		t.Fatalf("%d plugin processes before reload, want 1", len(pids))
	}

	if _, err := v.Client.Sys().ReloadPlugin(&api.ReloadPluginInput{Plugin: pluginName}); err != nil {
		t.Fatalf("vault plugin reload: %v", err)
	}
	// The reload replaces the process (it starts again on the next request).
	afterReload := issue(t, v, "openai", "r", nil)
	if now := v.PluginPIDs(); len(now) != 1 || now[0] == pids[0] {
		t.Errorf("plugin processes after reload %v, before %v: want one new process", now, pids)
	}
	if err := v.Client.Sys().Revoke(beforeReload.LeaseID); err != nil {
		t.Fatalf("revoking a pre-reload lease: %v", err)
	}
	if f.Has(beforeReload.ServiceAccountID) {
		t.Errorf("pre-reload lease revoked but its account is still live")
	}

	beforeRestart := issue(t, v, "openai", "r", nil)
	v.Restart()

	if _, err := v.Client.Sys().Renew(beforeRestart.LeaseID, 600); err != nil {
		t.Errorf("renewing a pre-restart lease: %v", err)
	}
	for _, c := range []*Creds{afterReload, beforeRestart} {
		if !f.Has(c.ServiceAccountID) {
			t.Fatalf("account %s vanished across the restart", c.ServiceAccountID)
		}
		if err := v.Client.Sys().Revoke(c.LeaseID); err != nil {
			t.Fatalf("revoking a lease after restart: %v", err)
		}
		if f.Has(c.ServiceAccountID) {
			t.Errorf("lease %s revoked after restart but its account is still live", c.LeaseID)
		}
	}
	// The engine works after the restart, config and role intact.
	c := issue(t, v, "openai", "r", nil)
	if !f.Has(c.ServiceAccountID) {
		t.Errorf("post-restart issue not at the fake")
	}
}

// Crash safety: Vault dies (kill -9, plugin included) while OpenAI is creating the
// service account. After restart and unseal, the WAL entry written before the create
// lets Vault's rollback delete the orphan that no lease owns.
func TestCrashMidIssue(t *testing.T) {
	t.Parallel()
	// Vault's rollback manager ticks once a minute and skips WAL entries younger than
	// the engine's WALRollbackMinAge (minutes by default); lower the age so the test
	// waits for one tick, not for minutes.
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v, rollbackSoon...)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, rollbackSoonConfig)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "10m"})

	const hold = 4 * time.Second
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultHold, Count: 1, Hold: hold,
	}}})
	issueErr := make(chan error, 1)
	go func() {
		_, err := tryIssue(v, "openai", "r", nil)
		issueErr <- err
	}()
	waitFor(t, 30*time.Second, "the create call to reach the fake", func() bool {
		return f.Calls()[fakeopenai.OpCreateServiceAccount] == 1
	})
	v.Kill()
	if err := <-issueErr; err == nil {
		t.Fatalf("the issue succeeded although Vault was killed mid-request")
	}

	// The request had reached OpenAI: the account is created with nobody to own it.
	waitFor(t, hold+10*time.Second, "the held create to complete at the fake", func() bool {
		return len(f.LiveAccounts()) == 1
	})
	orphan := f.LiveAccounts()[0]
	f.SetFaults(fakeopenai.Faults{})

	v.Restart()
	if leases := leasesUnder(t, v, "openai/creds/r/"); len(leases) != 0 {
		t.Errorf("Vault holds leases %v for an issue that never completed", leases)
	}
	took := waitFor(t, 3*time.Minute, "WAL rollback to delete the orphaned account", func() bool {
		return !f.Has(orphan.ID)
	})
	t.Logf("orphan %s deleted by rollback %s after restart", orphan.ID, took.Round(time.Second))
	if len(f.LiveAccounts()) != 0 {
		t.Errorf("%d accounts live after rollback, want 0", len(f.LiveAccounts()))
	}
	// It was the WAL rollback (not, say, a tidy sweep) that removed it.
	if len(grepLines(v.Log(), "rolled back")) == 0 || len(grepLines(v.Log(), orphan.ID)) == 0 {
		t.Errorf("the Vault log does not show the engine rolling back %s", orphan.ID)
	}

	// Rollback done, the engine keeps working.
	c := issue(t, v, "openai", "r", nil)
	if !f.Has(c.ServiceAccountID) {
		t.Errorf("post-crash issue not at the fake")
	}
	if err := v.Client.Sys().Revoke(c.LeaseID); err != nil {
		t.Errorf("post-crash revoke: %v", err)
	}
}
