package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// An issue's lease TTL, its maximum and its key's OpenAI-side expiry all
// follow from the mount's max lease TTL, which a plugin can only ask Vault
// for over gRPC; the call starts as the request arrives
// (path_creds_prefetch.go). The create's WAL entry needs none of them, so it
// is written while that answer is on its way, and the terms are settled
// after it: the round trip and the entry's write overlap instead of
// following each other (about 0.2 ms of a one-client issue). The entry keeps
// an upper bound of the lease's lifetime instead, for the one thing it uses
// it for (when a rollback that keeps failing gives up, wal.go): the role's
// max_ttl, or OpenAI's one-year limit on a key for a role without one.

// issueTerms are one issue's lease and key terms, settled once (an issue
// retried with a fresh admin key keeps them).
type issueTerms struct {
	sys       logical.SystemView
	role      *roleEntry
	requested time.Duration // the request's ttl (0: the role's)
	scopes    []string
	grace     time.Duration // config's expiry_grace

	settled  bool
	ttl      time.Duration
	maxTTL   time.Duration
	warnings []string
	spec     keySpec
	// keyExpiryCap: no key expiry may pass this, renewals included
	// (key_expiry.go).
	keyExpiryCap int64
}

// lifetimeBound is at least the lease's whole lifetime, known before the
// mount's max TTL is.
func (t *issueTerms) lifetimeBound() time.Duration {
	return effectiveMaxTTL(maxKeyLifetime, t.role.MaxTTL)
}

// settle computes the terms from the mount's max TTL (waiting for it if it
// is still on its way); later calls keep the first result.
func (t *issueTerms) settle(ctx context.Context) error {
	if t.settled {
		return nil
	}
	mountMax := mountMaxTTL(ctx, t.sys)
	maxTTL := effectiveMaxTTL(mountMax, t.role.MaxTTL)
	ttl, warnings, err := framework.CalculateTTL(fixedMaxTTL{t.sys, mountMax}, t.requested, t.role.TTL, 0, maxTTL, 0, time.Time{})
	if err != nil {
		return err
	}
	t.ttl, t.maxTTL, t.warnings = ttl, maxTTL, warnings
	t.spec = keySpec{Scopes: t.scopes, ExpiresIn: issueKeyLifetime(t.role.expiryFollowsLease(), ttl, maxTTL, t.grace)}
	t.keyExpiryCap = time.Now().Add(maxTTL).Unix()
	t.settled = true
	return nil
}

// fixedMaxTTL answers MaxLeaseTTL with a value already fetched in this
// request, so CalculateTTL does not ask Vault over gRPC a second time.
type fixedMaxTTL struct {
	logical.SystemView
	max time.Duration
}

func (s fixedMaxTTL) MaxLeaseTTL() time.Duration { return s.max }
