//go:build cluster

package cluster

// Clients issuing and renewing against a cluster while a test kills nodes: what
// every client got, and when the first operations after a kill succeeded.

import (
	"sync"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
)

// load is workers clients, each pinned to a node and moving to the next node when
// a request fails (as a client behind a load balancer that drops a dead node
// would); a standby forwards to the active node, so a client does not need to
// know which node is active. Each round a client issues a key and renews one of
// its earlier leases, oldest first in turn, so leases issued before a kill are
// renewed after it.
type load struct {
	c     *harness.Cluster
	role  string
	pause time.Duration // between a client's rounds: a steady load, not a flood

	mu     sync.Mutex
	leases map[string]*harness.Creds // every lease a client got, by lease id
	issued map[string]time.Time      // when each was issued
	mark   time.Time                 // operations started after it count for the first* figures
	// Time from mark to the first success of an operation started after it.
	firstIssue, firstRenew time.Duration
	// Renewals, after mark, of leases issued before it.
	renewedAcross          int
	issues, renews, errors int
	lastErr                error

	stop func()
}

func startLoad(c *harness.Cluster, role string, workers int) *load {
	l := &load{c: c, role: role, pause: 100 * time.Millisecond,
		leases: map[string]*harness.Creds{}, issued: map[string]time.Time{}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.client(w, done)
		}()
	}
	l.stop = func() {
		close(done)
		wg.Wait()
	}
	return l
}

func (l *load) client(w int, done <-chan struct{}) {
	node := w%len(l.c.Nodes) + 1
	var mine []string
	next := 0
	fail := func(err error) {
		l.mu.Lock()
		l.errors++
		l.lastErr = err
		l.mu.Unlock()
		node = node%len(l.c.Nodes) + 1
	}
	for {
		select {
		case <-done:
			return
		case <-time.After(l.pause):
		}
		v := l.c.Node(node)
		start := time.Now()
		cr, err := harness.TryIssue(v, "openai", l.role, nil)
		if err != nil {
			fail(err)
			continue
		}
		l.c.AddSecret(cr.APIKey)
		l.mu.Lock()
		l.leases[cr.LeaseID] = cr
		l.issued[cr.LeaseID] = time.Now()
		l.issues++
		if !l.mark.IsZero() && start.After(l.mark) && l.firstIssue == 0 {
			l.firstIssue = time.Since(l.mark)
		}
		l.mu.Unlock()
		mine = append(mine, cr.LeaseID)
		if len(mine) < 2 {
			continue
		}
		id := mine[next%(len(mine)-1)] // never the one just issued
		next++
		start = time.Now()
		if _, err := v.Client.Sys().Renew(id, 600); err != nil {
			fail(err)
			continue
		}
		l.mu.Lock()
		l.renews++
		if !l.mark.IsZero() && start.After(l.mark) {
			if l.firstRenew == 0 {
				l.firstRenew = time.Since(l.mark)
			}
			if l.issued[id].Before(l.mark) {
				l.renewedAcross++
			}
		}
		l.mu.Unlock()
	}
}

// setMark starts the clock for the first* figures.
func (l *load) setMark(t time.Time) {
	l.mu.Lock()
	l.mark = t
	l.mu.Unlock()
}

// recovered reports whether an issue and a renewal started after the mark have
// both succeeded.
func (l *load) recovered() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstIssue > 0 && l.firstRenew > 0 && l.renewedAcross > 0
}

// snapshot copies every lease a client got.
func (l *load) snapshot() map[string]*harness.Creds {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]*harness.Creds, len(l.leases))
	for k, v := range l.leases {
		out[k] = v
	}
	return out
}

// ledger reads the whole issuance ledger through node v, paging.
func ledger(t *testing.T, v *harness.Vault) map[string]map[string]any {
	t.Helper()
	all := map[string]map[string]any{}
	after := ""
	for {
		f := map[string]string{"limit": "1000"}
		if after != "" {
			f["after"] = after
		}
		ids, info := harness.LedgerList(t, v, "openai", f)
		for _, id := range ids {
			all[id] = info[id]
		}
		if len(ids) < 1000 {
			return all
		}
		after = ids[len(ids)-1]
	}
}
