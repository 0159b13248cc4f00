//go:build cluster

package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// kill -9 of the active node in the middle of a create: the fake has created
// the account and holds its answer, so the engine on the active node never
// learns of it. The issue was sent through a standby, which forwarded it. After
// failover the new leader's WAL rollback deletes the orphan, once; the client
// got an error, never a lease; no lease exists for it; the old leader never
// got to roll anything back.
func TestKillActiveMidCreate(t *testing.T) {
	f, reqs := harness.NewRecordingFake(t)
	c := harness.StartCluster(t, f, harness.ClusterOptions{
		Env:        []string{"OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=" + rollbackAge.String()},
		ConfigArgs: rollbackConfig,
	})
	killed := c.WaitLeader(time.Minute)
	if got := len(c.Voters(killed)); got != 3 {
		t.Fatalf("autopilot counts %d voters before the kill, want 3", got)
	}
	via := c.Standby()

	fired := make(chan struct{}, 1)
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultHoldAnswer,
		Count: 1, Hold: 10 * time.Minute, OnFire: func(fakeopenai.Op) { fired <- struct{}{} },
	}}})
	type result struct {
		cr  *harness.Creds
		err error
	}
	issued := make(chan result, 1)
	go func() {
		cr, err := harness.TryIssue(c.Node(via), "openai", "demo", nil)
		issued <- result{cr, err}
	}()
	select {
	case <-fired:
	case r := <-issued:
		t.Fatalf("the issue through node %d ended before its create reached the fake: %v", via, r.err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the create did not reach the fake within 2 minutes")
	}
	var orphan fakeopenai.Account
	harness.WaitFor(t, 30*time.Second, "the held create's account to exist at the fake", func() bool {
		live := f.LiveAccounts()
		if len(live) == 1 {
			orphan = live[0]
		}
		return len(live) == 1
	})

	c.Kill(killed)
	killAt := time.Now()
	var r result
	select {
	case r = <-issued:
	case <-time.After(2 * time.Minute):
		t.Fatal("the client's issue did not end within 2 minutes of the kill")
	}
	if r.err == nil {
		c.AddSecret(r.cr.APIKey)
		t.Fatalf("the issue succeeded although the active node was killed before its create was answered: %s", r.cr)
	}
	t.Logf("the client's issue through node %d (%s; node %d, killed, was %s): %s",
		via, c.Node(via).Addr, killed, c.Node(killed).Addr, c.Redact(r.err.Error()))
	f.SetFaults(fakeopenai.Faults{})

	leader := c.WaitLeader(2 * time.Minute)
	toLeader := time.Since(killAt)
	if leader == killed {
		t.Fatalf("node %d, killed, reported active", killed)
	}
	active := c.Node(leader)
	if l := harness.LeasesUnder(t, active, "openai/creds/demo/"); len(l) != 0 {
		t.Fatalf("the new leader holds leases %v for an issue that never completed", l)
	}
	harness.WaitFor(t, 4*time.Minute, "the new leader's rollback to delete the orphan "+orphan.ID, func() bool {
		return !f.Has(orphan.ID)
	})
	rolledBack := time.Since(killAt)
	if n := reqs.PerID(fakeopenai.OpDeleteServiceAccount)[orphan.ID]; n != 1 {
		t.Fatalf("the orphan %s was deleted %d times, want once", orphan.ID, n)
	}
	if !rolledBackBy(active, orphan.ID) {
		t.Fatalf("the new leader (node %d) does not log rolling back %s", leader, orphan.ID)
	}
	if rolledBackBy(c.Node(killed), orphan.ID) {
		t.Fatalf("the killed node %d logs rolling back %s, which it could not have done", killed, orphan.ID)
	}

	// The engine issues on the new leader, through every live node.
	for i := range c.Nodes {
		if i+1 == killed {
			continue
		}
		cr := harness.Issue(t, c.Node(i+1), "openai", "demo", nil)
		c.AddSecret(cr.APIKey)
		if !f.Has(cr.ServiceAccountID) || cr.ServiceAccountID == orphan.ID {
			t.Fatalf("issue through node %d after the failover: %s not a new live account", i+1, cr)
		}
	}
	harness.Figures(t, "cluster kill mid-create",
		"kill_to_leader_seen", toLeader,
		"kill_to_orphan_deleted", rolledBack,
		"rollback_age", rollbackAge,
		"orphan_deletes", 1)
}

// rolledBackBy reports whether node v's log shows the engine rolling back the
// service account id from an interrupted issue.
func rolledBackBy(v *harness.Vault, id string) bool {
	for _, line := range harness.GrepLines(v.Log(), "rolled back service account") {
		if strings.Contains(line, id) {
			return true
		}
	}
	return false
}
