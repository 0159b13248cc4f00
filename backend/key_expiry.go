package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// A key's OpenAI-side expiry that follows its lease (role field
// expiry_follows_lease, default true). The key is created to expire at its
// lease's first end plus config's expiry_grace, and every renewal first
// moves the key's expiry to the renewed lease's end plus the grace, then
// lets Vault extend the lease. So a key whose Vault vanishes dies within
// one TTL plus the grace instead of at max_ttl. Neither ever passes the
// lease's maximum lifetime, which stays the key's hard cap as before.
//
// Tidy deletes an account once its record's KeyExpiresAt has passed
// (tidy.go); a renewal that moved the key's expiry at OpenAI therefore
// writes the new expiry to the record, after OpenAI accepted it. If that
// write fails the renewal fails too, so the lease keeps its old end, which
// lies before the record's old KeyExpiresAt: tidy cannot overtake a lease.

// issueKeyLifetime is the OpenAI-side lifetime of a new key whose lease
// starts with ttl and can live maxTTL: the lease's first end plus the grace
// when the key follows its lease, never past maxTTL; else maxTTL.
func issueKeyLifetime(followsLease bool, ttl, maxTTL, grace time.Duration) time.Duration {
	if !followsLease || ttl <= 0 {
		return maxTTL
	}
	return min(ttl+grace, maxTTL)
}

// followsLease reports whether renewing the lease moves its key's expiry:
// only leases issued with the flag and a key id do. Leases written before
// (no flag) renew as they always did, without a call.
func (k apiKeyInternal) followsLease() bool {
	return k.ExpiryFollowsLease && k.APIKeyID != ""
}

// moveKeyExpiry sets the key's OpenAI-side expiry to ttl plus the grace
// from now, capped at the key's hard cap, before the lease is extended by
// ttl. One call; on any failure the renewal must fail, and the key keeps
// the expiry it had (a failed attempt that OpenAI applied nonetheless set
// an expiry for a lease end that is not granted: still within the cap, and
// the lease's own end still revokes the account).
func (b *backend) moveKeyExpiry(ctx context.Context, s logical.Storage, key apiKeyInternal, ttl time.Duration, leaseID string) error {
	// The config the client was built from: no storage read for the grace.
	client, cfg, err := b.cachedConfig(ctx, s)
	if err != nil {
		return fmt.Errorf("renew: the key's OpenAI-side expiry follows its lease and cannot be moved, so the lease is not extended: %w", err)
	}
	now := time.Now()
	target := now.Add(ttl + cfg.expiryGrace())
	if key.KeyExpiryCap > 0 {
		if hardCap := time.Unix(key.KeyExpiryCap, 0); target.After(hardCap) {
			target = hardCap
		}
	}
	secs := int64(target.Sub(now).Round(time.Second) / time.Second)
	if secs < 1 {
		// At the cap already: the key's expiry is final, and the lease
		// ends with it.
		return nil
	}
	update := keyUpdate{ExpiresInSeconds: secs}
	st, err := client.UpdateAPIKey(ctx, key.ProjectID, key.APIKeyID, update)
	if fresh := b.clientAfterAuthFailure(ctx, s, client, err); fresh != nil {
		st, err = fresh.UpdateAPIKey(ctx, key.ProjectID, key.APIKeyID, update)
	}
	if err != nil {
		return fmt.Errorf("renew: could not move the OpenAI-side expiry of key %s (service account %s) to %s, so the lease is not extended "+
			"and the key keeps its current expiry (set expiry_follows_lease=false on the role to renew without moving it): %w",
			key.APIKeyID, key.ServiceAccountID, formatTime(target), err)
	}
	expiresAt := now.Unix() + secs
	if st != nil && st.ExpiresAt > 0 {
		expiresAt = st.ExpiresAt
	}
	if err := b.recordKeyExpiry(ctx, s, key.ServiceAccountID, expiresAt, leaseID); err != nil {
		return fmt.Errorf("renew: the key's expiry moved at OpenAI but the account record was not updated, so the lease is not extended: %w", err)
	}
	return nil
}

// recordKeyExpiry writes a moved key expiry to the account's record. A
// missing record (a lease from before records, or one revoked meanwhile) is
// left missing: writing it would resurrect a revoked account's record. The
// same write records the lease's id when the ledger lacks it (ledger.go).
func (b *backend) recordKeyExpiry(ctx context.Context, s logical.Storage, saID string, expiresAt int64, leaseID string) error {
	r, err := getAccountRecord(ctx, s, saID)
	if err != nil || r == nil || (r.KeyExpiresAt == expiresAt && (leaseID == "" || r.LeaseID != "")) {
		return err
	}
	r.KeyExpiresAt = expiresAt
	if r.LeaseID == "" {
		r.LeaseID = leaseID
	}
	return b.putRecord(ctx, s, r)
}
