package backend

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// An issue needs the mount's max lease TTL, which a plugin can only ask
// Vault for over gRPC (SystemView.MaxLeaseTTL): about 0.2 ms of a one-client
// issue on a dev server. So it is asked for as soon as a creds request
// arrives, and waited for only once the create's WAL entry is written
// (issue_terms.go): the round trip overlaps the handler's own work and that
// write. (The SDK's framework also asks for the replication state before
// every handler; that answer is kept for a second, replication_state_cache.go.)
// The value is still this request's own (never cached across requests), so
// a mount tune applies to the next issue exactly as before.

type maxTTLPrefetchKey struct{}

// maxTTLPrefetch is one request's MaxLeaseTTL call, started before the
// framework routes the request. v is written once, before done closes.
type maxTTLPrefetch struct {
	done chan struct{}
	v    time.Duration
}

// prefetchIssueMaxTTL starts the MaxLeaseTTL call of a creds issue and
// returns ctx carrying it; other requests get ctx back unchanged. The call
// completes on its own even when the handler never waits for it (a request
// refused before the TTL is needed).
func (b *backend) prefetchIssueMaxTTL(ctx context.Context, req *logical.Request) context.Context {
	if req == nil || !isCredsIssue(req) {
		return ctx
	}
	sys := b.System()
	if sys == nil {
		return ctx
	}
	p := &maxTTLPrefetch{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.v = sys.MaxLeaseTTL()
	}()
	return context.WithValue(ctx, maxTTLPrefetchKey{}, p)
}

// isCredsIssue reports whether req reaches pathCredsIssue: a read or write
// of creds/<role> (static-creds/ is another path).
func isCredsIssue(req *logical.Request) bool {
	return (req.Operation == logical.ReadOperation || req.Operation == logical.UpdateOperation) &&
		strings.HasPrefix(req.Path, "creds/")
}

// mountMaxTTL is the mount's max lease TTL for this request: the prefetched
// answer when there is one, else asked now.
func mountMaxTTL(ctx context.Context, sys logical.SystemView) time.Duration {
	if p, ok := ctx.Value(maxTTLPrefetchKey{}).(*maxTTLPrefetch); ok {
		<-p.done
		return p.v
	}
	return sys.MaxLeaseTTL()
}
