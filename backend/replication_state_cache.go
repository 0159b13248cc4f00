package backend

import (
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// The SDK's framework asks Vault for the node's replication state over gRPC
// before it runs any path operation (framework/backend.go, HandleRequest),
// to refuse writes a performance standby or secondary must forward, whether
// or not the path forwards at all: one round trip to Vault on every
// request, an issue's included (about 3% of the plugin's CPU per issue under
// load, plus Vault's share in answering it; make bench-profile). The state
// changes only when the node's role changes (an HA or replication
// transition), which Vault follows by setting the mount up again on the
// node that takes the new role; so the answer is kept for a second, and a
// node whose role changed meanwhile answers at most that long as before
// (a write it could not make fails in storage; a forwarded request is
// served where it lands). Vault's own standbys forward every request before
// it reaches a plugin, so on Vault CE the state never matters here.

// replicationStateTTL is how long one answer is kept.
const replicationStateTTL = time.Second

// replicationStateCache is the SystemView the backend is set up with: Vault's
// own, with ReplicationState answered from the last second's answer.
type replicationStateCache struct {
	logical.SystemView

	now func() time.Time

	mu    sync.Mutex
	state consts.ReplicationState
	at    time.Time // zero: nothing asked yet
}

func newReplicationStateCache(sys logical.SystemView) *replicationStateCache {
	return &replicationStateCache{SystemView: sys, now: time.Now}
}

func (c *replicationStateCache) ReplicationState() consts.ReplicationState {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.at.IsZero() || now.Sub(c.at) >= replicationStateTTL || now.Before(c.at) {
		c.state, c.at = c.SystemView.ReplicationState(), now
	}
	return c.state
}
