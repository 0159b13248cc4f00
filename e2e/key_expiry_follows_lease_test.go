//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// keyExpiry is the fake's expiry of a live key, as a time.
func keyExpiry(t *testing.T, f *Fake, keyID string) (expires, created int64) {
	t.Helper()
	k, ok := f.Key(keyID)
	if !ok {
		t.Fatalf("key %s is not at the fake", keyID)
	}
	if k.ExpiresAt == 0 {
		t.Fatalf("key %s has no expiry at the fake", keyID)
	}
	return k.ExpiresAt, k.CreatedAt
}

func callsTotal(m map[fakeopenai.Op]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// With expiry_follows_lease (the default) and config's default expiry_grace
// (5m), the fake's key expires at the lease's end plus the grace: at issue,
// and after each of three renewals, each of which makes exactly one upstream
// call (the key update). Scoped and unscoped keys alike. With
// expiry_follows_lease=false the key expires at max_ttl from its creation,
// and a renewal makes no upstream call and leaves that expiry alone.
func TestKeyExpiryFollowsLeaseThroughRenewals(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{"ttl": "30s", "max_ttl": "1h"})
	writeRole(t, v, "openai", "scoped", map[string]any{"ttl": "30s", "max_ttl": "1h", "scopes": scopeModelRead})
	writeRole(t, v, "openai", "fixed", map[string]any{"ttl": "30s", "max_ttl": "1h", "expiry_follows_lease": false})
	cfg, err := v.Client.Logical().Read("openai/config")
	if err != nil {
		t.Fatal(err)
	}
	graceNum, _ := cfg.Data["expiry_grace"].(json.Number)
	graceSecs, _ := graceNum.Int64()
	if graceSecs != 300 {
		t.Fatalf("config reads expiry_grace %v, want the default 300", cfg.Data["expiry_grace"])
	}
	const slack = 2.0 // seconds: rounding to whole seconds at Vault, the engine and the fake

	// Each subtest drives its own lease on the shared Vault; the call counts
	// are the fake's, so the renewal subtests do not run in parallel.
	for _, role := range []string{"r", "scoped"} {
		t.Run(role, func(t *testing.T) {
			c := issue(t, v, "openai", role, nil)
			check := func(when string) int64 {
				t.Helper()
				_, leaseEnd, ok := leaseTTL(v, c.LeaseID)
				if !ok {
					t.Fatalf("%s: lease %s not found", when, c.LeaseID)
				}
				exp, _ := keyExpiry(t, f, c.APIKeyID)
				delta := float64(exp) - (float64(leaseEnd.UnixNano())/1e9 + float64(graceSecs))
				t.Logf("%s: lease ends %s, key expires %s: key - (lease end + grace) = %+.1fs",
					when, leaseEnd.UTC().Format("15:04:05.0"), time.Unix(exp, 0).UTC().Format("15:04:05"), delta)
				if math.Abs(delta) > slack {
					t.Errorf("%s: the key's expiry is %+.1fs off the lease's end plus the grace", when, delta)
				}
				return exp
			}
			prev := check("issue")
			for i, inc := range []int{40, 50, 60} {
				f.ResetCalls()
				s, err := v.Client.Sys().Renew(c.LeaseID, inc)
				if err != nil {
					t.Fatalf("renewal %d: %v", i+1, err)
				}
				calls := f.Calls()
				if callsTotal(calls) != 1 || calls[fakeopenai.OpUpdateProjectKey] != 1 {
					t.Errorf("renewal %d made upstream calls %v, want exactly one %s", i+1, calls, fakeopenai.OpUpdateProjectKey)
				}
				if s.LeaseDuration != inc {
					t.Errorf("renewal %d: lease %ds, want %ds", i+1, s.LeaseDuration, inc)
				}
				exp := check(fmt.Sprintf("renewal %d (+%ds)", i+1, inc))
				if exp <= prev {
					t.Errorf("renewal %d did not move the key's expiry (%d, before %d)", i+1, exp, prev)
				}
				prev = exp
			}
		})
	}

	t.Run("expiry_follows_lease=false", func(t *testing.T) {
		c := issue(t, v, "openai", "fixed", nil)
		exp, created := keyExpiry(t, f, c.APIKeyID)
		if exp-created != 3600 {
			t.Errorf("the key expires %ds after its creation, want max_ttl 3600s", exp-created)
		}
		f.ResetCalls()
		s, err := v.Client.Sys().Renew(c.LeaseID, 60)
		if err != nil {
			t.Fatalf("renewal: %v", err)
		}
		if calls := f.Calls(); callsTotal(calls) != 0 {
			t.Errorf("a renewal with expiry_follows_lease=false made upstream calls %v, want none", calls)
		}
		if s.LeaseDuration != 60 {
			t.Errorf("renewal: lease %ds, want 60s", s.LeaseDuration)
		}
		if after, _ := keyExpiry(t, f, c.APIKeyID); after != exp {
			t.Errorf("the renewal moved the key's expiry from %d to %d", exp, after)
		}
	})
}

// A key whose Vault is killed (kill -9, plugin included, never restarted)
// dies at the fake within its lease's TTL plus expiry_grace, not at max_ttl:
// with ttl 15s and expiry_grace at its minimum (1m), GET /v1/models with the
// key answers 200 until about 75s after the issue and 401 from then on.
func TestKilledVaultKeyRefusedWithinTTLPlusGrace(t *testing.T) {
	t.Parallel()
	const ttl, grace = 15 * time.Second, time.Minute
	v := startVault(t, VaultOptions{})
	f := newFake(t)
	registerPlugin(t, v)
	mountPlugin(t, v, "openai")
	writeConfig(t, v, "openai", f, map[string]any{"expiry_grace": "1m"})
	writeRole(t, v, "openai", "r", map[string]any{"ttl": ttl.String(), "max_ttl": "1h", "scopes": scopeModelRead})

	// The key is made between these two instants: the upper bound is
	// measured from the issue's answer, the lower one from its start, so a
	// slow issue on a loaded machine moves neither.
	issued := time.Now()
	c := issue(t, v, "openai", "r", nil)
	answered := time.Now()
	exp, _ := keyExpiry(t, f, c.APIKeyID)
	t.Logf("key expires at the fake %.1fs after the issue request started (ttl %s + grace %s)",
		time.Unix(exp, 0).Sub(issued).Seconds(), ttl, grace)
	wantAnswer(t, "the key before the kill", f.ListModels(t, c.APIKey), http.StatusOK, "")
	v.Kill()
	wantAnswer(t, "the key just after the kill", f.ListModels(t, c.APIKey), http.StatusOK, "")

	limit := ttl + grace
	var lastOK time.Duration
	var refused harnessAnswer
	for {
		a := f.ListModels(t, c.APIKey)
		since := time.Since(issued)
		if a.Status != http.StatusOK {
			refused = a
			afterAnswer := time.Since(answered)
			t.Logf("refused %.1fs after the issue started, %.1fs after its answer (last 200 at %.1fs; ttl + grace = %s)",
				since.Seconds(), afterAnswer.Seconds(), lastOK.Seconds(), limit)
			if afterAnswer > limit+2*time.Second {
				t.Errorf("the key was refused only %.1fs after the issue, later than ttl + grace (%s)", afterAnswer.Seconds(), limit)
			}
			break
		}
		lastOK = since
		if since > limit+30*time.Second {
			t.Fatalf("the key still works %.1fs after the issue, well past ttl + grace (%s)", since.Seconds(), limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if refused.Status != http.StatusUnauthorized || !strings.Contains(refused.Body, "invalid_api_key") {
		t.Errorf("the expired key: HTTP %d %s, want 401 invalid_api_key", refused.Status, refused.Body)
	}
	// It lived its grace: an expiry at the lease's end alone (or earlier)
	// would leave no margin for a renewal in flight.
	if lastOK < limit-3*time.Second {
		t.Errorf("the key stopped working after %.1fs, well before ttl + grace (%s)", lastOK.Seconds(), limit)
	}
	// Nothing revoked it: the account is still at the fake, only its key expired.
	if !f.Has(c.ServiceAccountID) {
		t.Errorf("the account is gone from the fake, but no Vault was left to revoke it")
	}
}
