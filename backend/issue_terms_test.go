package backend

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// walWatchingSystemView answers MaxLeaseTTL, once watching is set, only after
// a WAL entry exists in storage (or after five seconds), and records which.
type walWatchingSystemView struct {
	logical.StaticSystemView
	storage  logical.Storage
	watching atomic.Bool
	sawWAL   atomic.Bool
	asked    atomic.Int32
}

func (s *walWatchingSystemView) MaxLeaseTTL() time.Duration {
	if s.watching.Load() {
		s.asked.Add(1)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if keys, _ := s.storage.List(context.Background(), "wal/"); len(keys) > 0 {
				s.sawWAL.Store(true)
				break
			}
		}
	}
	return s.StaticSystemView.MaxLeaseTTL()
}

// The create's WAL entry is written while the mount's max TTL is still on its
// way: an issue whose max-TTL answer waits for a WAL entry completes, and
// the answer found the entry there.
func TestIssueTerms_WALEntryDoesNotWaitForTheMaxTTL(t *testing.T) {
	e := newTestEnv(t)
	sys := &walWatchingSystemView{StaticSystemView: *e.staticSystem(), storage: e.storage}
	e.withSystem(sys)
	e.configure()
	e.writeRole("app", map[string]interface{}{"ttl": "10m", "max_ttl": "1h"})
	if keys, err := e.storage.List(context.Background(), "wal/"); err != nil || len(keys) != 0 {
		t.Fatalf("WAL entries before the issue: %v %v", keys, err)
	}

	sys.watching.Store(true)
	start := time.Now()
	resp := e.issue("app", nil)
	sys.watching.Store(false)
	if sys.asked.Load() == 0 {
		t.Fatal("the issue never asked for the mount's max TTL")
	}
	if !sys.sawWAL.Load() {
		t.Fatalf("the max-TTL answer waited %s and found no WAL entry: the entry's write waited for it", time.Since(start).Round(time.Millisecond))
	}
	// The terms still come from the max TTL and the role.
	if resp.Secret.TTL != 10*time.Minute || resp.Secret.MaxTTL != time.Hour {
		t.Fatalf("lease TTL %s, max %s; want 10m, 1h", resp.Secret.TTL, resp.Secret.MaxTTL)
	}
}

// The WAL entry's expiry bounds the lease's lifetime from above without the
// mount's max TTL: the role's max_ttl, else OpenAI's one-year limit.
func TestIssueTerms_LifetimeBound(t *testing.T) {
	for _, tc := range []struct {
		roleMax, want time.Duration
	}{
		{0, maxKeyLifetime},
		{time.Hour, time.Hour},
		{2 * maxKeyLifetime, maxKeyLifetime},
	} {
		terms := &issueTerms{role: &roleEntry{MaxTTL: tc.roleMax}}
		if got := terms.lifetimeBound(); got != tc.want {
			t.Errorf("role max_ttl %s: bound %s, want %s", tc.roleMax, got, tc.want)
		}
	}
}
