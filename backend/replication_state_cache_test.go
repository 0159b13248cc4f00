package backend

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// countingSystemView counts ReplicationState calls and answers state.
type countingSystemView struct {
	logical.StaticSystemView
	calls int
	state consts.ReplicationState
}

func (s *countingSystemView) ReplicationState() consts.ReplicationState {
	s.calls++
	return s.state
}

func TestReplicationStateCache_AsksOncePerSecond(t *testing.T) {
	sys := &countingSystemView{state: consts.ReplicationPerformanceStandby}
	c := newReplicationStateCache(sys)
	now := time.Unix(1_000_000, 0)
	c.now = func() time.Time { return now }

	for i := 0; i < 5; i++ {
		if got := c.ReplicationState(); got != consts.ReplicationPerformanceStandby {
			t.Fatalf("call %d: state %v, want %v", i, got, consts.ReplicationPerformanceStandby)
		}
	}
	if sys.calls != 1 {
		t.Fatalf("5 calls within a second asked Vault %d times, want 1", sys.calls)
	}

	// A changed state is seen once the answer is a second old, not before.
	sys.state = consts.ReplicationPerformanceSecondary
	now = now.Add(replicationStateTTL - time.Millisecond)
	if got := c.ReplicationState(); got != consts.ReplicationPerformanceStandby || sys.calls != 1 {
		t.Fatalf("just under the TTL: state %v after %d calls, want the kept answer after 1", got, sys.calls)
	}
	now = now.Add(time.Millisecond)
	if got := c.ReplicationState(); got != consts.ReplicationPerformanceSecondary || sys.calls != 2 {
		t.Fatalf("at the TTL: state %v after %d calls, want the new state after 2", got, sys.calls)
	}

	// A clock stepped back does not keep an answer from the future.
	now = now.Add(-time.Hour)
	c.ReplicationState()
	if sys.calls != 3 {
		t.Fatalf("after the clock stepped back: %d calls, want 3", sys.calls)
	}
}

// Requests routed by the framework ask the cache, not Vault, for the state:
// forty reads of a role within a second reach Vault's SystemView once.
func TestReplicationStateCache_FrameworkRequestsShareOneAnswer(t *testing.T) {
	sys := &countingSystemView{StaticSystemView: logical.StaticSystemView{DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: 24 * time.Hour}}
	conf := logical.TestBackendConfig()
	conf.System = sys
	conf.StorageView = &logical.InmemStorage{}
	raw, err := Factory(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	b := raw.(*backend)
	if _, ok := b.System().(*replicationStateCache); !ok {
		t.Fatalf("Factory set the backend up with %T, want the replication-state cache", b.System())
	}
	before := sys.calls
	for i := 0; i < 40; i++ {
		resp, err := b.HandleRequest(context.Background(), &logical.Request{
			Operation: logical.ListOperation, Path: "roles/", Storage: conf.StorageView,
		})
		if err != nil || (resp != nil && resp.IsError()) {
			t.Fatalf("list roles: %v %v", resp, err)
		}
	}
	if got := sys.calls - before; got > 1 {
		t.Fatalf("40 requests asked Vault for the replication state %d times, want at most 1", got)
	}
}
