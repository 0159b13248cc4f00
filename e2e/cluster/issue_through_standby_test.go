//go:build cluster

package cluster

import (
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// A standby forwards a creds read to the active node, which runs the engine: a key
// issued through either works at the fake, its lease is one the active node holds,
// and revoking it through the standby deletes its account.
func TestIssueThroughStandbyAndActive(t *testing.T) {
	f := harness.NewFake(t)
	c := harness.StartCluster(t, f, harness.ClusterOptions{})
	active := c.WaitLeader(time.Minute)
	standby := c.Standby()
	if got := len(c.Voters(active)); got != 3 {
		t.Fatalf("autopilot counts %d voters after start, want 3", got)
	}
	for _, tc := range []struct {
		name string
		node int
	}{{"active", active}, {"standby", standby}} {
		v := c.Node(tc.node)
		cr := harness.Issue(t, v, "openai", "demo", nil)
		if !f.Has(cr.ServiceAccountID) {
			t.Fatalf("%s (node %d): issued %s but the fake has no such account", tc.name, tc.node, cr)
		}
		if a := f.ListModels(t, cr.APIKey); a.Status != 200 {
			t.Fatalf("%s (node %d): the issued key does not work at the fake: %d %s", tc.name, tc.node, a.Status, a.Body)
		}
		// The lease lives in the cluster's storage: the active node knows it.
		if _, _, ok := harness.LeaseTTL(c.Node(active), cr.LeaseID); !ok {
			t.Fatalf("%s (node %d): the active node does not know lease %s", tc.name, tc.node, cr.LeaseID)
		}
		if err := c.Node(standby).Client.Sys().Revoke(cr.LeaseID); err != nil {
			t.Fatalf("revoking %s through the standby: %v", cr.LeaseID, err)
		}
		harness.WaitFor(t, time.Minute, "the revoked key's account gone at the fake", func() bool {
			return !f.Has(cr.ServiceAccountID)
		})
		t.Logf("%s (node %d): issued %s, worked at the fake, revoked through node %d", tc.name, tc.node, cr, standby)
	}
}
