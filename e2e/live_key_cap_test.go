//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// issueConcurrently starts n issuers from mount/creds/role at once (released
// together) and returns what they got.
func issueConcurrently(v *Vault, role string, n int) (creds []*Creds, errs []error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c, err := tryIssue(v, "openai", role, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				creds = append(creds, c)
			}
		}()
	}
	close(start)
	wg.Wait()
	return creds, errs
}

// wantCapRefusal fails unless err is a 400 whose message contains want.
func wantCapRefusal(t *testing.T, what string, err error, want string) {
	t.Helper()
	code, msg := responseError(err)
	if code != http.StatusBadRequest || !strings.Contains(msg, want) {
		t.Errorf("%s: HTTP %d %q, want 400 containing %q", what, code, msg, want)
	}
}

// The role cap under 64 concurrent issuers against max_live_keys 10: exactly
// 10 leases in Vault and 10 accounts at the fake, every other issuer refused
// with a 400 naming the role and its cap. After a restart of Vault (file
// storage) the cap still holds; revoking one lease frees one place, and only one.
func TestRoleLiveKeyCapConcurrentAndAcrossRestart(t *testing.T) {
	t.Parallel()
	const limit, issuers = 10, 64
	v := startVault(t, VaultOptions{FileStorage: true})
	f := newFake(t)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, nil)
	writeRole(t, v, "openai", "r", map[string]any{"ttl": "1h", "max_live_keys": limit})
	const refusal = `role "r" has max_live_keys 10 and 10 of its keys are live`

	start := time.Now()
	creds, errs := issueConcurrently(v, "r", issuers)
	t.Logf("%d concurrent issuers against max_live_keys %d: %d issued, %d refused, in %s",
		issuers, limit, len(creds), len(errs), time.Since(start).Round(time.Millisecond))
	if len(creds) != limit || len(errs) != issuers-limit {
		t.Errorf("%d issued and %d refused, want %d and %d", len(creds), len(errs), limit, issuers-limit)
	}
	for i, err := range errs {
		wantCapRefusal(t, "a refused concurrent issuer", err, refusal)
		if i >= 2 && t.Failed() {
			break // one message shows the pattern
		}
	}
	checkCapState := func(when string, want []*Creds) {
		t.Helper()
		if n := len(leasesUnder(t, v, "openai/creds/r/")); n != len(want) {
			t.Errorf("%s: Vault holds %d leases, want %d", when, n, len(want))
		}
		live := f.LiveIDs()
		if len(live) != len(want) {
			t.Errorf("%s: %d accounts at the fake, want %d", when, len(live), len(want))
		}
		for _, c := range want {
			if _, ok := live[c.ServiceAccountID]; !ok {
				t.Errorf("%s: the issued account %s is not at the fake", when, c.ServiceAccountID)
			}
		}
	}
	checkCapState("after the concurrent issue", creds)

	v.Restart()
	checkCapState("after the restart", creds)
	_, err := tryIssue(v, "openai", "r", nil)
	wantCapRefusal(t, "an 11th issue after the restart", err, refusal)

	if err := v.Client.Sys().Revoke(creds[0].LeaseID); err != nil {
		t.Fatalf("revoking one lease: %v", err)
	}
	if f.Has(creds[0].ServiceAccountID) {
		t.Errorf("the revoked lease's account is still at the fake")
	}
	next, err := tryIssue(v, "openai", "r", nil)
	if err != nil {
		t.Fatalf("an issue after revoking one of %d live keys: %v", limit, err)
	}
	_, err = tryIssue(v, "openai", "r", nil)
	wantCapRefusal(t, "an issue after the freed place was taken", err, refusal)
	checkCapState("after revoke and reissue", append(creds[1:], next))
}

// The mount-wide cap in config counts keys of every role together: with
// max_live_keys 3 on the mount and 16 concurrent issuers over two uncapped
// roles, exactly 3 keys are live; the rest are refused with a 400 naming the
// mount's cap. Revoking one lease lets exactly one more issue through, from
// either role.
func TestMountLiveKeyCap(t *testing.T) {
	t.Parallel()
	const limit = 3
	v := startVault(t, VaultOptions{})
	f := newFake(t)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, map[string]any{"max_live_keys": limit})
	writeRole(t, v, "openai", "a", map[string]any{"ttl": "1h"})
	writeRole(t, v, "openai", "b", map[string]any{"ttl": "1h"})
	const refusal = "mount max_live_keys 3 reached: 3 keys are live on this mount"

	var mu sync.Mutex
	var creds []*Creds
	var errs []error
	var wg sync.WaitGroup
	for _, role := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, e := issueConcurrently(v, role, 8)
			mu.Lock()
			creds, errs = append(creds, c...), append(errs, e...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(creds) != limit || len(errs) != 16-limit {
		t.Fatalf("%d issued and %d refused over two roles, want %d and %d", len(creds), len(errs), limit, 16-limit)
	}
	wantCapRefusal(t, "a refused issuer", errs[0], refusal)
	if n := len(f.LiveAccounts()); n != limit {
		t.Errorf("%d accounts at the fake, want %d", n, limit)
	}
	if n := len(leasesUnder(t, v, "openai/creds/a/")) + len(leasesUnder(t, v, "openai/creds/b/")); n != limit {
		t.Errorf("Vault holds %d leases over both roles, want %d", n, limit)
	}

	if err := v.Client.Sys().Revoke(creds[0].LeaseID); err != nil {
		t.Fatalf("revoking one lease: %v", err)
	}
	// The freed place goes to whichever role asks: take it from the role the
	// revoked key did not come from, if that one issued at all.
	other := "a"
	if strings.HasPrefix(creds[0].LeaseID, "openai/creds/a/") {
		other = "b"
	}
	if _, err := tryIssue(v, "openai", other, nil); err != nil {
		t.Fatalf("an issue from role %s after revoking one of %d live keys: %v", other, limit, err)
	}
	for _, role := range []string{"a", "b"} {
		_, err := tryIssue(v, "openai", role, nil)
		wantCapRefusal(t, "role "+role+" once the mount is full again", err, refusal)
	}
	if n := len(f.LiveAccounts()); n != limit {
		t.Errorf("%d accounts at the fake at the end, want %d", n, limit)
	}
}
