//go:build cluster

package cluster

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// rollbackAge shortens the engine's WAL rollback age (OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE,
// default 5m) so that the orphans of creates cut off by a kill are rolled back
// within the test; rollbackConfig keeps retry_budget + request_timeout below it,
// as the engine requires.
const (
	rollbackAge    = 20 * time.Second
	rollbackConfig = "retry_budget=8s request_timeout=5s"
	clients        = 16
)

// kill -9 of the active node while 16 clients issue and renew: a standby takes
// over; the first issue and renewal after the kill are timed (FIGURES); every
// lease a client got survives on the new leader, renews and revokes there; leases
// from before the kill also expire there; creates the kill cut off are rolled back
// by the new leader (no orphan at the fake); the killed node rejoins as a standby
// and every node gives the same answers.
func TestFailoverUnderLoad(t *testing.T) {
	f := harness.NewFake(t)
	c := harness.StartCluster(t, f, harness.ClusterOptions{
		Env:        []string{"OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=" + rollbackAge.String()},
		ConfigArgs: rollbackConfig,
		RoleTTL:    "10m",
		RoleMaxTTL: "1h",
	})
	killed := c.WaitLeader(time.Minute)
	if got := len(c.Voters(killed)); got != 3 {
		t.Fatalf("autopilot counts %d voters before the kill, want 3", got)
	}

	// Leases from before the failover: half to renew and revoke on the new leader,
	// half to renew there for a short increment and let expire.
	var before []*harness.Creds
	for i := 0; i < 8; i++ {
		cr := harness.Issue(t, c.Node(killed), "openai", "demo", nil)
		c.AddSecret(cr.APIKey)
		before = append(before, cr)
	}

	ld := startLoad(c, "demo", clients)
	stopped := false
	defer func() {
		if !stopped {
			ld.stop()
		}
	}()
	time.Sleep(5 * time.Second)
	if len(ld.snapshot()) == 0 {
		t.Fatalf("no client issued a key in 5s before the kill (last error: %v)", ld.lastErr)
	}
	issuedBefore := len(ld.snapshot())

	c.Kill(killed)
	killAt := time.Now()
	ld.setMark(killAt)
	leader := c.WaitLeader(2 * time.Minute)
	toLeader := time.Since(killAt)
	if leader == killed {
		t.Fatalf("node %d, killed, reported active", killed)
	}
	harness.WaitFor(t, 2*time.Minute, "an issue and a renewal (of a lease from before the kill) after the kill", ld.recovered)
	time.Sleep(3 * time.Second)
	ld.stop()
	stopped = true
	got := ld.snapshot()
	harness.Figures(t, "cluster failover",
		"kill_to_leader_seen", toLeader,
		"kill_to_first_issue", ld.firstIssue,
		"kill_to_first_renew", ld.firstRenew,
		"clients", clients,
		"issued_before_kill", issuedBefore,
		"issued", ld.issues, "renewed", ld.renews,
		"renewed_across_kill", ld.renewedAcross,
		"failed_requests", ld.errors)
	if ld.lastErr != nil {
		t.Logf("last failed client request: %s", c.Redact(ld.lastErr.Error()))
	}
	active := c.Node(leader)

	// Zero leases lost: every lease a client got is known to the new leader, and
	// its account is live at the fake.
	var lost, missingAccount []string
	for id, cr := range got {
		if _, _, ok := harness.LeaseTTL(active, id); !ok {
			lost = append(lost, id)
		}
		if !f.Has(cr.ServiceAccountID) {
			missingAccount = append(missingAccount, cr.String())
		}
	}
	if len(lost) > 0 || len(missingAccount) > 0 {
		t.Fatalf("of %d leases clients got: %d unknown to the new leader %v; %d whose account is gone at the fake %v",
			len(got), len(lost), lost, len(missingAccount), missingAccount)
	}

	// Leases from before the kill renew on the new leader; half are revoked there,
	// half renewed for 15s and left to expire.
	for i, cr := range before {
		inc := 600
		if i >= len(before)/2 {
			inc = 15
		}
		s, err := active.Client.Sys().Renew(cr.LeaseID, inc)
		if err != nil {
			t.Fatalf("renewing %s (issued before the kill) on the new leader: %v", cr, err)
		}
		if s.LeaseDuration > inc || s.LeaseDuration < inc-5 {
			t.Fatalf("renewal of %s for %ds gave a %ds lease", cr, inc, s.LeaseDuration)
		}
	}
	for _, cr := range before[:len(before)/2] {
		if err := active.Client.Sys().Revoke(cr.LeaseID); err != nil {
			t.Fatalf("revoking %s on the new leader: %v", cr, err)
		}
	}
	harness.WaitFor(t, time.Minute, "the accounts of leases revoked on the new leader gone at the fake", func() bool {
		for _, cr := range before[:len(before)/2] {
			if f.Has(cr.ServiceAccountID) {
				return false
			}
		}
		return true
	})

	// The killed node comes back on its data, rejoins as a standby; three voters again.
	restartAt := time.Now()
	c.Restart(killed)
	rejoin := time.Since(restartAt)
	if now := c.WaitLeader(time.Minute); now != leader {
		t.Logf("leadership moved from node %d to node %d during the restart", leader, now)
		leader, active = now, c.Node(now)
	}
	if h, err := c.Node(killed).Client.Sys().Health(); err != nil || !h.Standby || h.Sealed {
		t.Fatalf("node %d after restart: health %+v, %v; want an unsealed standby", killed, h, err)
	}
	for i := range c.Nodes {
		if v := c.Voters(i + 1); len(v) != 3 {
			t.Fatalf("autopilot through node %d counts voters %v after the rejoin, want 3", i+1, v)
		}
	}
	harness.Figures(t, "cluster rejoin", "restart_to_forwarding_standby", rejoin)
	consistent(t, c, "after the rejoin")

	// The short-renewed leases from before the kill expire on the new leader.
	harness.WaitFor(t, 2*time.Minute, "leases from before the kill expiring on the new leader", func() bool {
		for _, cr := range before[len(before)/2:] {
			if _, _, ok := harness.LeaseTTL(active, cr.LeaseID); ok || f.Has(cr.ServiceAccountID) {
				return false
			}
		}
		return true
	})
	for _, cr := range before[len(before)/2:] {
		e := ledgerEntry(t, active, cr.APIKeyID)
		if e["state"] != "revoked" || e["revoked_by"] != "expiry" {
			t.Fatalf("ledger entry of %s after expiry: state %v revoked_by %v", cr, e["state"], e["revoked_by"])
		}
	}

	// Every client lease revoked on the new leader; then, past the rollback age,
	// no orphan may be left at the fake: every live account there is claimed by a
	// live ledger record. An account without one is an orphan of a create the
	// kill cut off before its record, which the new leader must roll back. An
	// account with a live record but no lease is the window README "Limits" names
	// (a kill between the engine's record write and Vault's lease write): its
	// record keeps rollback off it, its OpenAI-side expiry and the sweep end it.
	if _, err := active.Client.Logical().Write("sys/leases/revoke-prefix/openai/creds/demo", map[string]any{"sync": true}); err != nil {
		t.Fatalf("revoking every lease under openai/creds/demo on the new leader: %v", err)
	}
	if l := harness.LeasesUnder(t, active, "openai/creds/demo/"); len(l) != 0 {
		t.Fatalf("%d leases left after revoke-prefix: %v", len(l), l)
	}
	for _, cr := range got {
		if f.Has(cr.ServiceAccountID) {
			t.Fatalf("%s still live at the fake after its lease was revoked", cr)
		}
	}
	var orphans0 int
	var claimed map[string]string // account id -> ledger key id, live records
	revokedAt := time.Now()
	harness.WaitFor(t, 3*time.Minute, "every live account at the fake claimed by a live ledger record (orphans rolled back)", func() bool {
		claimed = map[string]string{}
		for id, e := range ledger(t, active) {
			if e["state"] == "live" {
				sa, _ := e["service_account_id"].(string)
				claimed[sa] = id
			}
		}
		live := f.LiveIDs()
		orphans := 0
		for id := range live {
			if _, ok := claimed[id]; !ok {
				orphans++
			}
		}
		if orphans0 == 0 {
			orphans0 = orphans
		}
		if len(live) != len(claimed) {
			return false
		}
		return orphans == 0
	})
	for sa, keyID := range claimed {
		k, ok := f.Key(keyID)
		if !ok || k.AccountID != sa || k.ExpiresAt == 0 || time.Until(time.Unix(k.ExpiresAt, 0)) > 2*time.Hour {
			t.Fatalf("account %s, live with a record and no lease: its key %s at the fake %+v (%v); want one expiring within max_ttl plus the grace", sa, keyID, k, ok)
		}
	}
	harness.Figures(t, "cluster orphans", "orphans_after_revoking_all", orphans0,
		"rolled_back_within", time.Since(revokedAt), "rollback_age", rollbackAge,
		"record_but_no_lease", len(claimed))
	consistent(t, c, "after revoking everything")
}

// consistent asks every node for the leases under openai/creds/ and the issuance
// ledger and fails unless all answer, the same.
func consistent(t *testing.T, c *harness.Cluster, when string) {
	t.Helper()
	type view struct {
		leases []string
		ledger map[string]string // id -> state
	}
	var first view
	for i, v := range c.Nodes {
		var w view
		w.leases = harness.LeasesUnder(t, v, "openai/creds/demo/")
		w.ledger = map[string]string{}
		for id, e := range ledger(t, v) {
			w.ledger[id], _ = e["state"].(string)
		}
		if i == 0 {
			first = w
			continue
		}
		if !reflect.DeepEqual(w, first) {
			t.Fatalf("%s: node %d sees %d leases and %d ledger entries, node 1 %d and %d (or they differ)",
				when, i+1, len(w.leases), len(w.ledger), len(first.leases), len(first.ledger))
		}
	}
	states := map[string]int{}
	for _, s := range first.ledger {
		states[s]++
	}
	keys := make([]string, 0, len(states))
	for s, n := range states {
		keys = append(keys, s+"="+strconv.Itoa(n))
	}
	sort.Strings(keys)
	t.Logf("%s: all %d nodes see %d leases and the same ledger (%s)", when, len(c.Nodes), len(first.leases), strings.Join(keys, " "))
}

func ledgerEntry(t *testing.T, v *harness.Vault, keyID string) map[string]any {
	t.Helper()
	s, err := v.Client.Logical().Read("openai/keys/" + keyID)
	if err != nil || s == nil {
		t.Fatalf("reading openai/keys/%s: %v", keyID, err)
	}
	return s.Data
}
