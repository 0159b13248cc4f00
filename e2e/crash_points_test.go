//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// An issue writes two storage entries on its path (WAL entry, then the
// account record, committed) and deletes the WAL entry after the response.
// Vault is killed (kill -9, plugin included) at each step, restarted, and
// left one rollback tick; the plugin is built with tag crashpoints, which
// stops it at the named step (backend/crashpoint_on.go).
//
// What each crash must leave:
//   - issue.after_wal: the create never ran: no account, no lease;
//   - issue.after_create: an account nobody holds: rollback deletes it;
//   - issue.after_record: the record claims the account for a lease Vault
//     never wrote (Vault writes leases after the plugin answers). Rollback
//     keeps it, as it must for every committed issue; the key dies at its
//     OpenAI expiry (max_ttl here) and tidy deletes the account an hour after
//     that. The same window existed before records were written committed
//     (between the WAL delete and the lease write) and no plugin can close
//     it: the test pins its bound, the key's expiry;
//   - issue.before_wal_delete: the lease exists: rollback keeps its account
//     and drops the entry, and revoking the lease deletes the account.
func TestCrashAtEachIssueStep(t *testing.T) {
	t.Parallel()
	for _, point := range []string{"issue.after_wal", "issue.after_create", "issue.after_record", "issue.before_wal_delete"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			crashAtIssueStep(t, point)
		})
	}
}

func crashAtIssueStep(t *testing.T, point string) {
	const maxTTL = 30 * time.Minute
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v, append([]string{"OPENAI_PLUGIN_CRASHPOINT=" + point}, rollbackSoon...)...)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, rollbackSoonConfig)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "10m", "max_ttl": maxTTL.String()})

	issued := make(chan *Creds, 1)
	go func() {
		c, _ := tryIssue(v, "openai", "r", nil)
		issued <- c
	}()
	waitForCrashpoint(t, v, point, 0)
	var lease *Creds
	if point == "issue.before_wal_delete" {
		// The worker stops after the response: the issue completes.
		select {
		case lease = <-issued:
		case <-time.After(30 * time.Second):
		}
		if lease == nil {
			t.Fatal("the issue did not complete although only the WAL delete after it was stopped")
		}
	}
	atCrash := f.LiveAccounts()
	v.Kill()
	if point != "issue.before_wal_delete" {
		if c := <-issued; c != nil {
			t.Fatalf("the issue succeeded although Vault was killed at %s", point)
		}
	}
	t.Logf("%s: %d account(s) at the fake when Vault was killed", point, len(atCrash))

	v.Restart()
	leases := leasesUnder(t, v, "openai/creds/r/")
	if (lease != nil) != (len(leases) == 1) || len(leases) > 1 {
		t.Fatalf("%s: Vault holds leases %v after the restart", point, leases)
	}
	waitFor(t, 3*time.Minute, "rollback to settle the interrupted issue's WAL entry", func() bool {
		return strings.Contains(v.Log(), "settled the WAL entry of an issue") ||
			strings.Contains(v.Log(), "rolled back service account")
	})
	live := f.LiveAccounts()

	switch point {
	case "issue.after_wal":
		if len(atCrash) != 0 || len(live) != 0 {
			t.Errorf("create never ran, yet %d account(s) at the crash and %d after rollback", len(atCrash), len(live))
		}
	case "issue.after_create":
		if len(atCrash) != 1 || len(live) != 0 {
			t.Errorf("want the orphan created and rolled back, have %d at the crash and %d after rollback", len(atCrash), len(live))
		}
	case "issue.after_record":
		if len(atCrash) != 1 || len(live) != 1 {
			t.Fatalf("want the recorded account kept by rollback, have %d at the crash and %d after", len(atCrash), len(live))
		}
		if a := live[0]; a.KeyExpiresAt == 0 || a.KeyExpiresAt > a.CreatedAt+int64(maxTTL.Seconds()) {
			t.Errorf("the kept account's key expires at %d, created %d: want within max_ttl %s", a.KeyExpiresAt, a.CreatedAt, maxTTL)
		}
	case "issue.before_wal_delete":
		if len(live) != 1 || live[0].ID != lease.ServiceAccountID {
			t.Fatalf("want the leased account %s kept by rollback, have %+v", lease.ServiceAccountID, live)
		}
		if err := v.Client.Sys().Revoke(lease.LeaseID); err != nil {
			t.Fatalf("revoke after the restart: %v", err)
		}
		waitFor(t, 30*time.Second, "the revoked lease's account to go", func() bool { return !f.Has(lease.ServiceAccountID) })
	}

	// Whatever the crash left, the engine issues again, once the plugin runs
	// without its stopping point.
	reloadPlugin(t, v, rollbackSoon...)
	c := issue(t, v, "openai", "r", nil)
	if !f.Has(c.ServiceAccountID) {
		t.Errorf("post-crash issue not at the fake")
	}
}

// crashpointMarker is the line a plugin built with tag crashpoints logs
// when it stops at point (backend/crashpoint_on.go).
func crashpointMarker(point string) string { return "crashpoint " + point + " reached" }

// waitForCrashpoint waits until the plugin has stopped at point more than
// seen times (Vault's log outlives restarts: a test that stops twice at
// the same point counts).
func waitForCrashpoint(t testing.TB, v *Vault, point string, seen int) {
	t.Helper()
	waitFor(t, time.Minute, "the plugin to stop at "+point, func() bool {
		return strings.Count(v.Log(), crashpointMarker(point)) > seen
	})
}

// reloadPlugin registers the plugin again with env (a crashpoint, or none)
// and reloads it: the mount's plugin process restarts with the new env.
func reloadPlugin(t testing.TB, v *Vault, env ...string) {
	t.Helper()
	registerPlugin(t, v, env...)
	if _, err := v.Client.Sys().ReloadPlugin(&api.ReloadPluginInput{Plugin: pluginName}); err != nil {
		t.Fatalf("reload the plugin with env %v: %v", env, err)
	}
}
