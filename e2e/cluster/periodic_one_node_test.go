//go:build cluster

package cluster

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// minRotationGap: with rotation_period=1m two rotations of one key are at
// least a minute apart whoever runs them; two closer together are one
// rotation run twice (by two nodes, or again by a new leader that missed the
// old one's commit). The slack covers the request's own time.
const minRotationGap = 45 * time.Second

// The engine's periodic work (WAL rollback, the tidy sweep, scheduled admin-key
// rotation, static-role rotation) runs on the active node only, and a failover
// neither repeats nor loses any of it. The active node is killed right after
// it has rotated both keys and while three orphans of lost create answers wait
// for rollback; the new leader rolls them back and rotates both keys again.
// At the fake: every account and key deleted exactly once, no two rotations
// of a key closer than its period, at most two static keys live at once; in
// the nodes' logs, each rotation and rollback once, by a node that was active
// (never the killed one after the kill).
// Takes about 5 minutes: rotation_period is at least 1m and Vault ticks once
// a minute.
func TestPeriodicWorkOnOneNode(t *testing.T) {
	start := time.Now()
	f, reqs := harness.NewRecordingFake(t)
	c := harness.StartCluster(t, f, harness.ClusterOptions{
		Env:        []string{"OPENAI_PLUGIN_WAL_ROLLBACK_MIN_AGE=" + rollbackAge.String()},
		ConfigArgs: rollbackConfig + " rotation_period=1m tidy_interval=1m",
	})
	first := c.WaitLeader(time.Minute)
	old := c.Node(first)
	if _, err := old.Client.Logical().Write("openai/static-roles/s", map[string]any{
		"project_id": fakeopenai.ProjectActive, "rotation_period": "1m", "overlap": "30s",
	}); err != nil {
		t.Fatalf("static role: %v", err)
	}
	s, err := old.Client.Logical().Read("openai/static-roles/s")
	if err != nil || s == nil {
		t.Fatalf("reading the static role: %v", err)
	}
	staticAccount, _ := harness.DataString(s, "service_account_id")
	if staticAccount == "" {
		t.Fatalf("static role without service_account_id: %v", s.Data)
	}
	staticCreates := func() []harness.FakeRequest {
		var out []harness.FakeRequest
		for _, q := range reqs.Of(fakeopenai.OpCreateServiceAccountKey) {
			if strings.Contains(q.Path, "/service_accounts/"+staticAccount+"/") {
				out = append(out, q)
			}
		}
		return out
	}
	// The key the role write made is not a scheduled rotation.
	firstStatic := len(staticCreates())
	maxStaticKeys := watchMax(t, func() int { return len(f.AccountKeyIDs(fakeopenai.ProjectActive, staticAccount)) })

	var leases []*harness.Creds
	for i := 0; i < 4; i++ {
		cr := harness.Issue(t, old, "openai", "demo", nil)
		c.AddSecret(cr.APIKey)
		leases = append(leases, cr)
	}

	harness.WaitFor(t, 4*time.Minute, "the first leader to rotate the admin key and the static key", func() bool {
		return len(reqs.Of(fakeopenai.OpCreateAdminKey)) >= 1 && len(staticCreates()) > firstStatic
	})
	adminBefore, staticBefore := len(reqs.Of(fakeopenai.OpCreateAdminKey)), len(staticCreates())

	// Three orphans, left to WAL rollback, then the kill before they are old enough.
	f.SetFaults(fakeopenai.Faults{Rules: []fakeopenai.FaultRule{{
		Ops: []fakeopenai.Op{fakeopenai.OpCreateServiceAccount}, Kind: fakeopenai.FaultLostResponse, Count: 3,
	}}})
	known := map[string]bool{}
	for _, cr := range leases {
		known[cr.ServiceAccountID] = true
	}
	// The engine retries a create whose answer was lost: the issue may succeed
	// on a second account, the first left to rollback.
	for i := 0; i < 10 && f.FaultCounts()[fakeopenai.FaultLostResponse] < 3; i++ {
		if cr, err := harness.TryIssue(old, "openai", "demo", nil); err == nil {
			c.AddSecret(cr.APIKey)
			leases = append(leases, cr)
			known[cr.ServiceAccountID] = true
		}
	}
	f.SetFaults(fakeopenai.Faults{})
	var orphans []string
	for id := range f.LiveIDs() {
		if !known[id] && id != staticAccount {
			orphans = append(orphans, id)
		}
	}
	if len(orphans) != 3 {
		t.Fatalf("%d orphans at the fake after 3 lost create answers, want 3", len(orphans))
	}
	// Leadership may have moved since the start on a loaded machine: kill
	// the node active now.
	killed := c.WaitLeader(time.Minute)
	c.Kill(killed)
	killAt := time.Now()
	leader := c.WaitLeader(2 * time.Minute)
	if leader == killed {
		t.Fatalf("node %d, killed, reported active", killed)
	}
	active := c.Node(leader)

	harness.WaitFor(t, 4*time.Minute, "the new leader to roll back the orphans and rotate both keys", func() bool {
		for _, id := range orphans {
			if f.Has(id) {
				return false
			}
		}
		return len(reqs.Of(fakeopenai.OpCreateAdminKey)) > adminBefore && len(staticCreates()) > staticBefore
	})
	took := time.Since(killAt)

	// Leases revoked on the new leader: their accounts deleted once too.
	if _, err := active.Client.Logical().Write("sys/leases/revoke-prefix/openai/creds/demo", map[string]any{"sync": true}); err != nil {
		t.Fatalf("revoke-prefix on the new leader: %v", err)
	}
	for _, cr := range leases {
		if f.Has(cr.ServiceAccountID) {
			t.Fatalf("%s still live after revoke-prefix", cr)
		}
	}

	// At the fake: each deletion once, rotations a period apart.
	var problems []string
	for _, op := range []fakeopenai.Op{fakeopenai.OpDeleteServiceAccount, fakeopenai.OpDeleteProjectKey, fakeopenai.OpDeleteAdminKey} {
		for id, n := range reqs.PerID(op) {
			if n != 1 {
				problems = append(problems, fmt.Sprintf("%s %s: %d requests", op, id, n))
			}
		}
	}
	for _, id := range append(orphans, ids(leases)...) {
		if reqs.PerID(fakeopenai.OpDeleteServiceAccount)[id] != 1 {
			problems = append(problems, "account "+id+" not deleted exactly once")
		}
	}
	adminGaps := gaps(reqs.Of(fakeopenai.OpCreateAdminKey))
	staticGaps := gaps(staticCreates()[firstStatic:])
	for _, g := range append(append([]time.Duration{}, adminGaps...), staticGaps...) {
		if g < minRotationGap {
			problems = append(problems, fmt.Sprintf("two rotations %s apart (admin gaps %v, static gaps %v)", g, adminGaps, staticGaps))
		}
	}
	if n := maxStaticKeys(); n > 2 {
		problems = append(problems, fmt.Sprintf("the static account held %d keys at once", n))
	}

	// In the logs: each orphan rolled back by exactly one node, never the
	// killed one, and only by a node that was active at some point; each
	// rotation logged once, by a node that was active. On a loaded machine
	// Raft may move leadership again after the failover (heartbeat timeouts
	// with performance_multiplier 1), so "the new leader" can be more than
	// one node in turn; the fake's checks above (every delete once, rotations
	// a period apart) are what rule out two nodes doing the same work.
	wasActive := map[int]bool{}
	for i, v := range c.Nodes {
		wasActive[i+1] = len(harness.GrepLines(v.Log(), "acquired lock, enabling active operation")) > 0
	}
	for _, id := range orphans {
		var by []int
		for i, v := range c.Nodes {
			if rolledBackBy(v, id) {
				by = append(by, i+1)
			}
		}
		if len(by) != 1 || by[0] == killed || !wasActive[by[0]] {
			problems = append(problems, fmt.Sprintf("orphan %s: rolled back by nodes %v (killed %d, active at some point %v)", id, by, killed, wasActive))
		}
	}
	rot, rotations := map[int]int{}, 0
	for i, v := range c.Nodes {
		rot[i+1] = len(harness.GrepLines(v.Log(), "admin key rotated by the engine"))
		rotations += rot[i+1]
		if rot[i+1] > 0 && !wasActive[i+1] {
			problems = append(problems, fmt.Sprintf("node %d, never active, logged %d admin rotations", i+1, rot[i+1]))
		}
	}
	if rotations != len(reqs.Of(fakeopenai.OpCreateAdminKey)) || rotations-rot[killed] < 1 {
		problems = append(problems, fmt.Sprintf("admin rotations logged per node %v (killed %d, first leader after the kill %d) for %d keys created at the fake",
			rot, killed, leader, len(reqs.Of(fakeopenai.OpCreateAdminKey))))
	}
	if len(problems) > 0 {
		t.Fatalf("periodic work across the failover:\n%s", strings.Join(problems, "\n"))
	}
	harness.Figures(t, "cluster periodic work on one node",
		"kill_to_rollback_and_rotations", took,
		"admin_rotations", len(adminGaps)+1, "admin_min_gap", minGap(adminGaps),
		"static_rotations", len(staticGaps)+1, "static_min_gap", minGap(staticGaps),
		"accounts_deleted", len(reqs.PerID(fakeopenai.OpDeleteServiceAccount)),
		"keys_deleted", len(reqs.PerID(fakeopenai.OpDeleteProjectKey)),
		"admin_keys_deleted", len(reqs.PerID(fakeopenai.OpDeleteAdminKey)),
		"double_deletes", 0,
		"test_took", time.Since(start))
}

// watchMax samples n every 200ms until the test ends and returns a function
// giving the largest value seen.
func watchMax(t *testing.T, n func() int) func() int {
	var mu sync.Mutex
	most := n()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			v := n()
			mu.Lock()
			most = max(most, v)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return most
	}
}

func gaps(qs []harness.FakeRequest) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(qs); i++ {
		out = append(out, qs[i].At.Sub(qs[i-1].At).Round(time.Second))
	}
	return out
}

func minGap(g []time.Duration) time.Duration {
	if len(g) == 0 {
		return 0
	}
	m := g[0]
	for _, d := range g[1:] {
		m = min(m, d)
	}
	return m
}

func ids(cs []*harness.Creds) []string {
	var out []string
	for _, cr := range cs {
		out = append(out, cr.ServiceAccountID)
	}
	return out
}
