//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// An issued key is a live service account at the Admin API, and the response and
// lease say what they should.
func TestIssue(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{"ttl": "2m", "max_ttl": "10m"})

	before := time.Now()
	c := issue(t, v, "openai", "r", nil)

	if c.APIKey == "" || c.APIKeyID == "" || c.ServiceAccountID == "" || c.ServiceAccountName == "" {
		t.Fatalf("missing fields in %v (api_key empty: %t)", c, c.APIKey == "")
	}
	if c.ProjectID != fakeopenai.ProjectActive {
		t.Errorf("project_id = %q, want %q", c.ProjectID, fakeopenai.ProjectActive)
	}
	if !strings.HasPrefix(c.LeaseID, "openai/creds/r/") {
		t.Errorf("lease id %q is not under openai/creds/r/", c.LeaseID)
	}
	if c.LeaseDuration != 120 || !c.Renewable {
		t.Errorf("lease_duration=%d renewable=%t, want 120 and true", c.LeaseDuration, c.Renewable)
	}

	live := f.LiveAccounts()
	if len(live) != 1 {
		t.Fatalf("fake holds %d live accounts, want 1", len(live))
	}
	a := live[0]
	if a.ID != c.ServiceAccountID || a.Name != c.ServiceAccountName || a.ProjectID != c.ProjectID || a.KeyID != c.APIKeyID {
		t.Errorf("fake account {id=%s name=%s project=%s key=%s} does not match the response {id=%s name=%s project=%s key=%s}",
			a.ID, a.Name, a.ProjectID, a.KeyID, c.ServiceAccountID, c.ServiceAccountName, c.ProjectID, c.APIKeyID)
	}
	// OpenAI itself expires the key at the lease's first end plus config's
	// expiry_grace (default 5m), within max_ttl: expiry_follows_lease is the
	// default (key_expiry_follows_lease_test.go covers renewals).
	if got := a.KeyExpiresAt - a.CreatedAt; got < 420-2 || got > 420+2 {
		t.Errorf("key expires %ds after creation at the Admin API, want the lease's ttl plus the default grace (120s + 300s)", got)
	}
	if a.CreatedAt < before.Unix()-1 {
		t.Errorf("account created at %d, before the request (%d)", a.CreatedAt, before.Unix())
	}
	if n := f.Calls()[fakeopenai.OpCreateServiceAccount]; n != 1 {
		t.Errorf("issuing made %d create calls, want exactly 1", n)
	}

	ttl, _, ok := leaseTTL(v, c.LeaseID)
	if !ok || ttl <= 0 || ttl > 120*time.Second {
		t.Errorf("lease lookup: ok=%t ttl=%s, want a live lease of at most 2m", ok, ttl)
	}

	// The version stamped at build time is what Vault runs.
	m, err := v.Client.Sys().GetMount("openai")
	if err != nil {
		t.Fatalf("reading the mount: %v", err)
	}
	if m.RunningVersion != suite.version {
		t.Errorf("running plugin version %q, want %q", m.RunningVersion, suite.version)
	}
}

// A lease that expires is revoked by Vault on its own, deleting the account.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{"ttl": "3s", "max_ttl": "1m"})

	c := issue(t, v, "openai", "r", nil)
	if c.LeaseDuration != 3 {
		t.Errorf("lease_duration = %d, want 3", c.LeaseDuration)
	}
	if !f.Has(c.ServiceAccountID) {
		t.Fatalf("account %s not at the fake after issue", c.ServiceAccountID)
	}
	took := waitFor(t, 60*time.Second, "Vault to revoke the expired lease at the fake", func() bool {
		return !f.Has(c.ServiceAccountID)
	})
	t.Logf("account gone %s after issue (ttl 3s)", took.Round(100*time.Millisecond))
	// Vault deletes the lease just after the engine's revoke returns, so wait
	// for that rather than look once.
	waitFor(t, 30*time.Second, "Vault to forget the expired lease", func() bool {
		_, _, ok := leaseTTL(v, c.LeaseID)
		return !ok
	})
	if n := f.Calls()[fakeopenai.OpDeleteServiceAccount]; n != 1 {
		t.Errorf("expiry made %d delete calls, want 1", n)
	}
}

// leaseTimes reads Vault's issue and expire time of a lease.
func leaseTimes(t *testing.T, v *Vault, leaseID string) (issued, expire time.Time, ok bool) {
	t.Helper()
	s, err := v.Client.Sys().Lookup(leaseID)
	if err != nil || s == nil {
		return time.Time{}, time.Time{}, false
	}
	issued, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(s.Data["issue_time"]))
	expire, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(s.Data["expire_time"]))
	if err1 != nil || err2 != nil {
		t.Fatalf("lease lookup times: %v %v (%v)", err1, err2, s.Data)
	}
	return issued, expire, true
}

// Renewal extends within max_ttl and is capped at it.
func TestRenew(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{"ttl": "10s", "max_ttl": "60s"})

	c := issue(t, v, "openai", "r", nil)
	// Every bound below is on Vault's own clock (its issue_time and
	// expire_time), never the test's: the two differ by up to a second.
	issued, _, ok := leaseTimes(t, v, c.LeaseID)
	if !ok {
		t.Fatal("no lease after issue")
	}

	s, err := v.Client.Sys().Renew(c.LeaseID, 30)
	if err != nil {
		t.Fatalf("renew within max_ttl: %v", err)
	}
	if s.LeaseDuration != 30 {
		t.Errorf("renew for 30s gave lease_duration %d, want 30", s.LeaseDuration)
	}

	s, err = v.Client.Sys().Renew(c.LeaseID, 3600)
	if err != nil {
		t.Fatalf("renew beyond max_ttl: %v", err)
	}
	// Capped: what remains of the 60s maximum, not an hour. Vault's expire
	// time is its issue time plus max_ttl (to the second it rounds TTLs to).
	_, expire, ok := leaseTimes(t, v, c.LeaseID)
	if !ok {
		t.Fatalf("lease gone after renewal")
	}
	if max := issued.Add(60 * time.Second); expire.After(max.Add(2*time.Second)) || expire.Before(max.Add(-2*time.Second)) {
		t.Errorf("after renewing for 1h the lease expires at %s, want issue_time + max_ttl = %s", expire, max)
	}
	if s.LeaseDuration > 60 || s.LeaseDuration <= 0 {
		t.Errorf("renew for 1h gave lease_duration %d, want what remains of the 60s max_ttl", s.LeaseDuration)
	}
	if !f.Has(c.ServiceAccountID) {
		t.Errorf("account %s gone after renewals", c.ServiceAccountID)
	}
	// Renewal is Vault bookkeeping; it must not create or delete anything upstream.
	calls := f.Calls()
	if calls[fakeopenai.OpCreateServiceAccount] != 1 || calls[fakeopenai.OpDeleteServiceAccount] != 0 {
		t.Errorf("after renewals: %d creates, %d deletes; want 1 and 0",
			calls[fakeopenai.OpCreateServiceAccount], calls[fakeopenai.OpDeleteServiceAccount])
	}
}

// `vault lease revoke -prefix` over 200 leases deletes all 200 accounts.
func TestRevokePrefix200(t *testing.T) {
	t.Parallel()
	const n = 200
	v, f := setupEngine(t, map[string]any{"ttl": "1h", "max_ttl": "2h"})

	var (
		mu   sync.Mutex
		ids  = map[string]bool{}
		errs []error
		wg   sync.WaitGroup
		work = make(chan int)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, err := tryIssue(v, "openai", "r", nil)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ids[c.ServiceAccountID] = true
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d issues failed, first: %v", len(errs), n, errs[0])
	}
	t.Logf("issued %d keys in %s", n, time.Since(start).Round(time.Millisecond))
	if len(ids) != n {
		t.Fatalf("%d distinct service accounts for %d issues", len(ids), n)
	}
	live := f.LiveIDs()
	for id := range ids {
		if _, ok := live[id]; !ok {
			t.Fatalf("issued account %s not live at the fake", id)
		}
	}
	if got := len(leasesUnder(t, v, "openai/creds/r/")); got != n {
		t.Fatalf("Vault holds %d leases under openai/creds/r/, want %d", got, n)
	}

	start = time.Now()
	out, errOut, code := v.CLI("lease", "revoke", "-prefix", "openai/creds/r")
	if code != 0 {
		t.Fatalf("vault lease revoke -prefix: exit %d: %s%s", code, out, errOut)
	}
	waitFor(t, 2*time.Minute, fmt.Sprintf("all %d accounts to be deleted", n), func() bool {
		return len(f.LiveAccounts()) == 0
	})
	waitFor(t, 30*time.Second, "Vault to drop the revoked leases", func() bool {
		return len(leasesUnder(t, v, "openai/creds/r/")) == 0
	})
	t.Logf("revoked %d leases in %s", n, time.Since(start).Round(time.Millisecond))
	if d := f.Calls()[fakeopenai.OpDeleteServiceAccount]; d < n {
		t.Errorf("%d delete calls for %d accounts", d, n)
	}
}
