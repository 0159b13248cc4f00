//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// kill -9 between the two creates of a scoped issue: the bare account exists
// at the fake, its key was never asked for, and Vault (plugin included) dies
// at the crashpoint issue.after_bare_account (backend/scoped_create.go). The
// issue fails, Vault holds no lease after a restart, and one rollback tick
// later the fake holds no account and no key: the WAL entry written before
// the first create covered both calls.
//
// A second case kills Vault while the key create is in flight at the fake
// (held there, then completed after Vault died, as a request that reached
// OpenAI would be): the account then carries a scoped key nobody holds, and
// rollback deletes both.
func TestKillBetweenScopedCreatesLeavesNoAccount(t *testing.T) {
	t.Parallel()
	t.Run("crashpoint", func(t *testing.T) {
		t.Parallel()
		killAtScopedCrashpoint(t)
	})
	t.Run("key_create_in_flight", func(t *testing.T) {
		t.Parallel()
		killDuringScopedKeyCreate(t)
	})
}

func killAtScopedCrashpoint(t *testing.T) {
	const point = "issue.after_bare_account"
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v, append([]string{"OPENAI_PLUGIN_CRASHPOINT=" + point}, rollbackSoon...)...)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, rollbackSoonConfig)
	// The role write's probe passes its own crashpoint (probe.after_bare_account), not this one.
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "10m", "max_ttl": "30m", "scopes": scopeModelRead})
	if n := len(f.LiveAccounts()); n != 0 {
		t.Fatalf("%d account(s) at the fake after the role write's probe, want 0", n)
	}

	issued := make(chan error, 1)
	go func() {
		_, err := tryIssue(v, "openai", "r", nil)
		issued <- err
	}()
	waitFor(t, time.Minute, "the plugin to stop at "+point, func() bool {
		return strings.Contains(v.Log(), "crashpoint "+point+" reached")
	})
	atCrash := f.LiveAccounts()
	keysAtCrash := len(f.LiveKeys())
	if len(atCrash) != 1 || keysAtCrash != 0 {
		t.Fatalf("between the creates the fake holds %d account(s) and %d key(s), want the bare account alone", len(atCrash), keysAtCrash)
	}
	if ids := f.AccountKeyIDs(atCrash[0].ProjectID, atCrash[0].ID); len(ids) != 0 {
		t.Fatalf("the bare account has keys %v", ids)
	}
	v.Kill()
	if err := <-issued; err == nil {
		t.Fatalf("the issue succeeded although Vault was killed between its creates")
	}

	restartAndWaitForRollback(t, v, f)
}

// restartAndWaitForRollback restarts the killed Vault and waits for one
// rollback tick to leave the fake without accounts or keys.
func restartAndWaitForRollback(t *testing.T, v *Vault, f *Fake) {
	t.Helper()
	before := f.LiveAccounts()
	killed := time.Now()
	v.Restart()
	if leases := leasesUnder(t, v, "openai/creds/r/"); len(leases) != 0 {
		t.Fatalf("Vault holds leases %v after the restart", leases)
	}
	took := waitFor(t, 3*time.Minute, "rollback to delete the bare account", func() bool {
		return strings.Contains(v.Log(), "rolled back service account") && len(f.LiveAccounts()) == 0
	})
	t.Logf("the interrupted issue's account was rolled back %s after the restart (%s after the kill)",
		took.Round(time.Second), time.Since(killed).Round(time.Second))
	if n := len(f.LiveKeys()); n != 0 {
		t.Errorf("%d key(s) at the fake after rollback, want 0", n)
	}
	for _, a := range before {
		if f.Has(a.ID) {
			t.Errorf("the interrupted issue's account %s is still at the fake", a.ID)
		}
	}
}

func killDuringScopedKeyCreate(t *testing.T) {
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v, rollbackSoon...)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, rollbackSoonConfig)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "10m", "max_ttl": "30m", "scopes": scopeModelRead})

	fired := make(chan struct{}, 1)
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccountKey}, Kind: fakeopenai.FaultHold,
		Count: 1, Hold: 2 * time.Second,
		OnFire: func(fakeopenai.Op) { fired <- struct{}{} },
	}}})
	issued := make(chan error, 1)
	go func() {
		_, err := tryIssue(v, "openai", "r", nil)
		issued <- err
	}()
	select {
	case <-fired:
	case <-time.After(time.Minute):
		t.Fatal("the scoped issue's key create never reached the fake")
	}
	v.Kill()
	if err := <-issued; err == nil {
		t.Fatalf("the issue succeeded although Vault was killed during its key create")
	}
	// The held create completes at the fake after Vault died.
	waitFor(t, 30*time.Second, "the held key create to complete at the fake", func() bool {
		return len(f.LiveKeys()) == 1
	})
	live := f.LiveAccounts()
	if len(live) != 1 {
		t.Fatalf("%d account(s) at the fake after the kill, want the one the issue made", len(live))
	}
	if k := f.LiveKeys()[0]; k.AccountID != live[0].ID || len(k.Scopes) != 1 || k.Scopes[0] != scopeModelRead {
		t.Fatalf("the orphaned key is %+v, want the scoped key of account %s", k, live[0].ID)
	}
	restartAndWaitForRollback(t, v, f)
}
