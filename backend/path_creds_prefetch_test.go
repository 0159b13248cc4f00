package backend

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// countingMaxTTL answers MaxLeaseTTL with a value a test can change (a mount
// tune) and counts the calls, which the prefetch makes from its own goroutine.
type countingMaxTTL struct {
	logical.StaticSystemView
	max   atomic.Int64
	calls atomic.Int64
}

func (s *countingMaxTTL) MaxLeaseTTL() time.Duration {
	s.calls.Add(1)
	return time.Duration(s.max.Load())
}

// An issue asks Vault for the mount's max TTL once (the prefetched call, not
// a second one in the handler), uses its answer, and never reuses it for the
// next issue: a tune between two issues applies to the second.
func TestCreds_MountMaxTTLAskedOncePerIssueAndNeverCached(t *testing.T) {
	sys := &countingMaxTTL{StaticSystemView: logical.StaticSystemView{DefaultLeaseTTLVal: testDefaultLeaseTTL}}
	sys.max.Store(int64(testMaxLeaseTTL))
	e := newTestEnv(t, withSystemView(sys))
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "30m"})

	for _, mountMax := range []time.Duration{testMaxLeaseTTL, 2 * time.Hour} {
		sys.max.Store(int64(mountMax))
		before := sys.calls.Load()
		resp := e.issue("app", nil)
		if got := sys.calls.Load() - before; got != 1 {
			t.Fatalf("mount max %s: %d MaxLeaseTTL calls for one issue, want 1", mountMax, got)
		}
		if resp.Secret.MaxTTL != mountMax {
			t.Fatalf("lease max_ttl %s, want the mount's current max %s", resp.Secret.MaxTTL, mountMax)
		}
		// The record's expiry (what tidy judges by) follows the same value.
		sa := resp.Data["service_account_id"].(string)
		rec, err := getAccountRecord(t.Context(), e.storage, sa)
		if err != nil || rec == nil {
			t.Fatalf("record of %s: %v %v", sa, rec, err)
		}
		if life := time.Duration(rec.ExpiresAt-rec.CreatedAt) * time.Second; life != mountMax {
			t.Fatalf("record lifetime %s, want %s", life, mountMax)
		}
	}

	// Other paths start no call.
	before := sys.calls.Load()
	e.mustOK(logical.ReadOperation, "roles/app", nil)
	if got := sys.calls.Load() - before; got != 0 {
		t.Fatalf("a role read made %d MaxLeaseTTL calls", got)
	}
}
