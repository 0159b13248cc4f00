//go:build cluster

package cluster

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// upgradeClients issue keys throughout the upgrade, three through each node.
const upgradeClients = 9

// A rolling plugin upgrade as README "Running in production" gives it, with
// clients issuing through every node throughout: the new binary copied into
// every node's plugin directory, registered by SHA-256 and version, the mount
// tuned to it, `vault plugin reload -scope=global`. Failed requests may only
// overlap the reload (its window is measured: FIGURES); none before or after.
// Afterwards the mount runs v0.2.0 on whichever node is active (leadership is
// moved until every node has been active), every lease a client got is known,
// and leases from before the upgrade renew and revoke on v0.2.0, their
// accounts gone at the fake.
func TestRollingUpgradeUnderLoad(t *testing.T) {
	const v2 = "v0.2.0"
	v1 := harness.Suite.Version
	if v1 == v2 {
		t.Fatalf("the suite's plugin is already %s", v2)
	}
	f := harness.NewFake(t)
	c := harness.StartCluster(t, f, harness.ClusterOptions{RoleTTL: "10m", RoleMaxTTL: "1h"})
	bin2 := harness.PluginName + "_" + v2
	built := filepath.Join(t.TempDir(), bin2)
	sha2 := harness.BuildPlugin(t, built, v2, harness.Build{Race: raceEnabled, Tags: "crashpoints"})
	active := c.WaitLeader(time.Minute)
	runsVersion(t, c, active, v1)

	var before []*harness.Creds
	for i := 0; i < 6; i++ {
		cr := harness.Issue(t, c.Node(i%len(c.Nodes)+1), "openai", "demo", nil)
		c.AddSecret(cr.APIKey)
		before = append(before, cr)
	}

	ld := startIssuers(c, upgradeClients)
	defer ld.stop()
	harness.WaitFor(t, 2*time.Minute, "every client to issue a key before the upgrade", ld.allIssued)

	// Step 1, node by node: the binary into each plugin directory. Nothing runs it yet.
	for i := range c.Nodes {
		harness.CopyExecutable(t, built, filepath.Join(c.PluginDir(i+1), bin2))
	}
	// Steps 2-4, on the active node (catalog and mount table are cluster-wide).
	av := c.Node(active)
	cli := func(args ...string) string {
		t.Helper()
		out, stderr, code := av.CLI(args...)
		if code != 0 {
			t.Fatalf("vault %s: exit %d: %s", strings.Join(args, " "), code, c.Redact(stderr))
		}
		return out + stderr
	}
	cli("plugin", "register", "-sha256="+sha2, "-version="+v2, "-command="+bin2, "secret", harness.PluginName)
	cli("secrets", "tune", "-plugin-version="+v2, "openai/")
	ld.mark("reload")
	reloadStart := time.Now()
	out := cli("plugin", "reload", "-type=secret", "-plugin="+harness.PluginName, "-scope=global")
	reloadReturned := time.Since(reloadStart)
	t.Logf("vault plugin reload -scope=global: %s", strings.TrimSpace(out))
	// The reload is asynchronous across nodes: its status lists the nodes that
	// have done it, with an error if one failed. On Community Edition only the
	// active node runs the engine, so the mount's running version (below) is
	// the proof; the status is read for errors and reported.
	statusNodes, statusErr := -1, error(nil)
	if m := regexp.MustCompile(`(?i)reload[ _]id:?\s+([0-9a-f-]{36})`).FindStringSubmatch(out); m != nil {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && statusNodes < 1; time.Sleep(500 * time.Millisecond) {
			var st *api.ReloadStatusResponse
			st, statusErr = av.Client.Sys().ReloadPluginStatus(&api.ReloadPluginStatusInput{ReloadID: m[1]})
			if statusErr != nil || st == nil {
				continue
			}
			for node, r := range st.Results {
				if r != nil && r.Error != "" {
					t.Fatalf("the reload failed on %s: %s", node, r.Error)
				}
			}
			statusNodes = len(st.Results)
		}
		t.Logf("sys/plugins/reload/backend/status: %d node results (last error: %v)", statusNodes, statusErr)
	} else {
		t.Errorf("vault plugin reload -scope=global printed no reload id: %s", out)
	}
	harness.WaitFor(t, 2*time.Minute, "the active node to run "+v2+" and a key to be issued on it", func() bool {
		m, err := av.Client.Sys().GetMount("openai")
		return err == nil && m.RunningVersion == v2 && ld.issuedSince(time.Now())
	})
	reloadDone := time.Since(reloadStart)
	ld.mark("after")
	harness.WaitFor(t, 2*time.Minute, "every client to issue a key after the reload", ld.allIssuedAfterMark)
	time.Sleep(3 * time.Second) // a steady stretch after the reload, where no failure may fall
	ld.stop()

	fails, firstFail, lastFail := ld.failures(reloadStart, reloadStart.Add(reloadDone))
	window := time.Duration(0)
	if !firstFail.IsZero() {
		window = lastFail.Sub(firstFail)
	}
	harness.Figures(t, "cluster rolling upgrade",
		"clients", upgradeClients,
		"reload_command", reloadReturned,
		"reload_to_v2_confirmed", reloadDone,
		"failed_window", window,
		"failed_in_window", len(ld.failed)-len(fails),
		"failed_outside_window", len(fails),
		"issued", ld.issued,
		"reload_status_nodes", statusNodes)
	if len(fails) > 0 {
		t.Fatalf("%d requests failed outside the reload (first: %s)", len(fails), c.Redact(fails[0]))
	}

	// Every lease a client got, during the reload too, is known to the cluster.
	for id := range ld.leases {
		if _, _, ok := harness.LeaseTTL(av, id); !ok {
			t.Fatalf("lease %s, issued during the upgrade, unknown to the active node", id)
		}
	}

	// Leases from before the upgrade renew and revoke on v0.2.0.
	for _, cr := range before {
		s, err := c.Node(2).Client.Sys().Renew(cr.LeaseID, 300)
		if err != nil || s.LeaseDuration != 300 {
			t.Fatalf("renewing %s (issued on %s) on %s: %v", cr, v1, v2, err)
		}
		if err := c.Node(3).Client.Sys().Revoke(cr.LeaseID); err != nil {
			t.Fatalf("revoking %s (issued on %s) on %s: %v", cr, v1, v2, err)
		}
	}
	harness.WaitFor(t, time.Minute, "the accounts of the leases from before the upgrade gone at the fake", func() bool {
		for _, cr := range before {
			if f.Has(cr.ServiceAccountID) {
				return false
			}
		}
		return true
	})

	// Every node runs v0.2.0 when active: leadership moves until each has been.
	seen := map[int]bool{}
	for step := 0; len(seen) < len(c.Nodes); step++ {
		if step == 12 {
			t.Fatalf("after 12 step-downs only nodes %v have been active", seen)
		}
		now := c.WaitLeader(time.Minute)
		runsVersion(t, c, now, v2)
		cr := harness.Issue(t, c.Node(now), "openai", "demo", nil)
		c.AddSecret(cr.APIKey)
		seen[now] = true
		if len(seen) == len(c.Nodes) {
			break
		}
		// A step-down hands leadership on, but Raft may elect the same node
		// again; then it is killed and restarted (the failover TestFailoverUnderLoad proves).
		if err := c.Node(now).Client.Sys().StepDown(); err != nil {
			t.Fatalf("step-down of node %d: %v", now, err)
		}
		moved := false
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !moved; time.Sleep(200 * time.Millisecond) {
			i, ok := c.Leader()
			moved = ok && i != now
		}
		if !moved {
			t.Logf("node %d is active again after its step-down: killing and restarting it", now)
			c.Kill(now)
			harness.WaitFor(t, 2*time.Minute, "another node to be active", func() bool {
				i, ok := c.Leader()
				return ok && i != now
			})
			c.Restart(now)
		}
	}
	t.Logf("nodes %v each ran %s when active", seen, v2)
}

// runsVersion fails unless node i is active and runs openai/ at version, in a
// process of that version's binary (standbys run none on Community Edition).
func runsVersion(t *testing.T, c *harness.Cluster, i int, version string) {
	t.Helper()
	var m *api.MountOutput
	var exes []string
	harness.WaitFor(t, time.Minute, fmt.Sprintf("node %d to run openai/ at %s", i, version), func() bool {
		var err error
		if m, err = c.Node(i).Client.Sys().GetMount("openai"); err != nil {
			return false
		}
		exes = c.PluginExes(i)
		return m.RunningVersion == version && len(exes) == 1
	})
	sum, err := harness.FileSHA256(filepath.Join(c.PluginDir(i), exes[0]))
	if err != nil || sum != m.RunningSha256 {
		t.Fatalf("node %d runs %s, whose sha256 %.12s is not the mount's %.12s (%v)", i, exes[0], sum, m.RunningSha256, err)
	}
}

// issuers are clients each pinned to one node (round robin), issuing keys in a
// loop: an upgrade kills no node, so a client never moves. Every request's
// start, end and error is kept.
type issuers struct {
	c *harness.Cluster

	mu        sync.Mutex
	marks     map[string]time.Time
	lastOK    []time.Time // per client, end of its last successful issue
	leases    map[string]*harness.Creds
	failed    []failure
	issued    int
	afterMark time.Time

	stop func()
}

type failure struct {
	start, end time.Time
	err        string
}

func startIssuers(c *harness.Cluster, n int) *issuers {
	l := &issuers{c: c, marks: map[string]time.Time{}, lastOK: make([]time.Time, n), leases: map[string]*harness.Creds{}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := c.Node(w%len(c.Nodes) + 1)
			for {
				select {
				case <-done:
					return
				case <-time.After(100 * time.Millisecond):
				}
				start := time.Now()
				cr, err := harness.TryIssue(v, "openai", "demo", nil)
				end := time.Now()
				l.mu.Lock()
				if err != nil {
					l.failed = append(l.failed, failure{start, end, err.Error()})
				} else {
					c.AddSecret(cr.APIKey)
					l.leases[cr.LeaseID] = cr
					l.lastOK[w] = end
					l.issued++
				}
				l.mu.Unlock()
			}
		}()
	}
	var once sync.Once
	l.stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
	return l
}

func (l *issuers) mark(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marks[name] = time.Now()
	l.afterMark = l.marks[name]
}

// allIssued: every client has issued at least one key.
func (l *issuers) allIssued() bool { return l.allSince(time.Time{}) }

// allIssuedAfterMark: every client has issued a key since the last mark.
func (l *issuers) allIssuedAfterMark() bool {
	l.mu.Lock()
	m := l.afterMark
	l.mu.Unlock()
	return l.allSince(m)
}

func (l *issuers) allSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ok := range l.lastOK {
		if !ok.After(t) || ok.IsZero() {
			return false
		}
	}
	return true
}

// issuedSince: some client's issue ended successfully after t minus a second
// (a request started then ran on the reloaded plugin).
func (l *issuers) issuedSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ok := range l.lastOK {
		if ok.After(t.Add(-time.Second)) {
			return true
		}
	}
	return false
}

// failures returns the failed requests that did not overlap [from, to], and the
// first start and last end of all failed requests.
func (l *issuers) failures(from, to time.Time) (outside []string, first, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.failed {
		if first.IsZero() || f.start.Before(first) {
			first = f.start
		}
		if f.end.After(last) {
			last = f.end
		}
		if f.end.Before(from) || f.start.After(to) {
			outside = append(outside, fmt.Sprintf("%s (started %s after the reload began)", f.err, f.start.Sub(from).Round(time.Millisecond)))
		}
	}
	return outside, first, last
}
