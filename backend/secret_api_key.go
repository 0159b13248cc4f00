package backend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const secretAPIKeyType = "openai_api_key"

// apiKeyInternal is what a lease remembers. Revocation needs nothing else, so
// it works after the role is changed or deleted.
type apiKeyInternal struct {
	ServiceAccountID string
	ProjectID        string
	APIKeyID         string
	Role             string
	MaxTTLSeconds    int64
	// ExpiryFollowsLease: renewing moves the key's OpenAI-side expiry
	// (key_expiry.go); never set on leases issued before it existed.
	ExpiryFollowsLease bool
	// KeyExpiryCap (Unix seconds) is the latest expiry the key may be given:
	// the start of its issue plus the lease's maximum lifetime.
	KeyExpiryCap int64
}

func (k apiKeyInternal) toMap() map[string]interface{} {
	m := map[string]interface{}{
		"service_account_id": k.ServiceAccountID,
		"project_id":         k.ProjectID,
		"api_key_id":         k.APIKeyID,
		"role":               k.Role,
		"max_ttl":            k.MaxTTLSeconds,
	}
	if k.ExpiryFollowsLease {
		m["expiry_follows_lease"] = true
		m["key_expiry_cap"] = k.KeyExpiryCap
	}
	return m
}

// decodeAPIKeyInternal reads a lease's internal data tolerantly: numbers may
// arrive as float64 or json.Number after a storage round trip, and fields a
// later version added may be absent from leases an earlier one wrote.
func decodeAPIKeyInternal(m map[string]interface{}) (apiKeyInternal, error) {
	str := func(k string) string { s, _ := m[k].(string); return s }
	k := apiKeyInternal{
		ServiceAccountID: str("service_account_id"),
		ProjectID:        str("project_id"),
		APIKeyID:         str("api_key_id"),
		Role:             str("role"),
	}
	k.MaxTTLSeconds = int64Of(m["max_ttl"])
	k.ExpiryFollowsLease, _ = m["expiry_follows_lease"].(bool)
	k.KeyExpiryCap = int64Of(m["key_expiry_cap"])
	if k.ServiceAccountID == "" || k.ProjectID == "" {
		return k, errors.New("lease internal data lacks service_account_id or project_id")
	}
	if !openaiIDPattern.MatchString(k.ProjectID) || !openaiIDPattern.MatchString(k.ServiceAccountID) {
		return k, errors.New("lease internal data holds a malformed project or service account id")
	}
	return k, nil
}

// int64Of reads a number however a storage round trip left it; 0 if absent.
func int64Of(v interface{}) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	case fmt.Stringer: // json.Number
		n, _ := strconv.ParseInt(v.String(), 10, 64)
		return n
	}
	return 0
}

func secretAPIKey(b *backend) *framework.Secret {
	return &framework.Secret{
		Type: secretAPIKeyType,
		// The data of a creds response, declared once (responses.go).
		Fields: credsFields(),
		Renew:  b.secretAPIKeyRenew,
		Revoke: b.secretAPIKeyRevoke,
	}
}

// secretAPIKeyRenew extends a lease within the max lifetime fixed at issue
// (a role since tightened applies). A lease whose key follows it first moves
// the key's OpenAI-side expiry (key_expiry.go); others make no call.
func (b *backend) secretAPIKeyRenew(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	key, err := decodeAPIKeyInternal(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	// A key the budget check killed (budget.go) must not look renewed.
	if resp, err := b.refuseRevokedRenewal(ctx, req.Storage, key.ServiceAccountID, req.Secret.LeaseID); resp != nil || err != nil {
		return resp, err
	}
	maxTTL := time.Duration(key.MaxTTLSeconds) * time.Second
	var roleTTL time.Duration
	if key.Role != "" {
		role, err := getRole(ctx, req.Storage, key.Role)
		if err != nil {
			return nil, err
		}
		if role != nil {
			roleTTL = role.TTL
			if role.MaxTTL > 0 && (maxTTL <= 0 || role.MaxTTL < maxTTL) {
				maxTTL = role.MaxTTL
			}
		}
	}
	// CalculateTTL's warnings are dropped: Vault's expiration manager runs
	// the same calculation on this response (vault/expiration.go, renew) and
	// adds the "TTL ... capped" warning itself, so adding it here printed it
	// twice.
	ttl, _, err := framework.CalculateTTL(b.System(), req.Secret.Increment, roleTTL, 0, maxTTL, 0, req.Secret.IssueTime)
	if err != nil {
		return nil, err
	}
	if key.followsLease() {
		if err := b.moveKeyExpiry(ctx, req.Storage, key, ttl, req.Secret.LeaseID); err != nil {
			return nil, err
		}
	}
	// The ledger learns the lease's id here at the latest (a no-op once
	// known, or when the expiry write above recorded it). A failure fails
	// the renewal: Vault retries it, and the lease keeps its old end.
	if err := b.noteLeaseID(ctx, req.Storage, key.ServiceAccountID, req.Secret.LeaseID); err != nil {
		return nil, fmt.Errorf("renew: record the lease id in the ledger: %w", err)
	}
	b.leaseEnds.set(key.ServiceAccountID, time.Now().Add(ttl))
	b.Logger().Debug("renewed key lease", "role", key.Role, "project_id", key.ProjectID, "service_account_id", key.ServiceAccountID,
		"api_key_id", key.APIKeyID, "lease_id", req.Secret.LeaseID, "ttl_s", int64(ttl.Seconds()))
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	return resp, nil
}

// revokeBudget bounds one revocation's own delete retries. Vault's
// expiration manager retries a failed revocation itself (with backoff, up to
// six times before the lease is marked irrevocable), and revocations run one
// after another in "vault lease revoke -prefix" and "secrets disable", so a
// revocation that rides out a long outage on its own would stall all of them
// (issue 11: 45s per lease with OpenAI down). Within the budget, throttling
// and 5xx are still retried; past it the lease goes back to Vault.
// While OpenAI is unreachable the budget shrinks further (revoke_outage.go).
const revokeBudget = 10 * time.Second

// secretAPIKeyRevoke deletes the service account, and with it the key. An
// account already gone (deleted by hand, expired, rolled back, its project
// archived) is success; a 404 that may mean "project not visible to this
// admin key" is not (account_gone.go): the lease and its record stay.
func (b *backend) secretAPIKeyRevoke(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	key, err := decodeAPIKeyInternal(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	// A key the budget check killed (budget.go) has no account left: it
	// marked the record only after OpenAI deleted it. Nothing to call.
	if done, err := b.revokeKilledByBudget(ctx, req.Storage, key, req.Secret.LeaseID); done || err != nil {
		return nil, err
	}
	client, err := b.getClient(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	// The budget bounds the OpenAI calls only; storage below keeps ctx.
	budget := b.revokeCallBudget(time.Now())
	callCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	err = client.DeleteServiceAccount(callCtx, key.ProjectID, key.ServiceAccountID)
	if fresh := b.clientAfterAuthFailure(ctx, req.Storage, client, err); fresh != nil {
		client = fresh
		err = client.DeleteServiceAccount(callCtx, key.ProjectID, key.ServiceAccountID)
	}
	b.noteRevokeOutcome(budget, err, time.Now())
	if gone, err := b.confirmAccountGone(callCtx, client, key.ProjectID, key.ServiceAccountID, err); !gone {
		return nil, fmt.Errorf("revoke service account %s: %w", key.ServiceAccountID, err)
	}
	// Only once OpenAI no longer has the account; a lease from before
	// records existed has none, which retiring tolerates.
	cause := revokeCause(req.Secret, b.leaseEnds.take(key.ServiceAccountID), time.Now())
	r, err := b.retireAccount(ctx, req.Storage, key.ServiceAccountID, cause, req.Secret.LeaseID)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &accountRecord{Role: key.Role, ProjectID: key.ProjectID, ServiceAccountID: key.ServiceAccountID,
			APIKeyID: key.APIKeyID, LeaseID: req.Secret.LeaseID}
	}
	b.Logger().Info("revoked key", append(r.logFields(), "cause", cause)...)
	return nil, nil
}

// expiryTolerance absorbs the delay between a lease's end and Vault's
// revocation call, and clock steps between them.
const expiryTolerance = 2 * time.Second

// revokeCause tells an expiry from an explicit revoke. Vault calls the same
// Revoke for both and says nothing of which it is, so it is inferred from
// the lease's end: a revocation at or after the end, less expiryTolerance,
// is an expiry; an earlier one was asked for. The end is renewedEnd when
// this process renewed the lease (leaseEnds), else the issue time plus the
// TTL, which Vault passes (its last renewal time it does not pass). So
// after a restart or failover, a renewed lease revoked by hand after its
// first TTL would have run out reads as an expiry; a revoke within 2s of
// the end reads as one too, and a lease without times as a revoke.
func revokeCause(s *logical.Secret, renewedEnd time.Time, now time.Time) string {
	end := renewedEnd
	if end.IsZero() {
		if s == nil || s.TTL <= 0 || s.IssueTime.IsZero() {
			return revokedByRevoke
		}
		end = s.IssueTime.Add(s.TTL)
	}
	if !now.Before(end.Add(-expiryTolerance)) {
		return revokedByExpiry
	}
	return revokedByRevoke
}

// leaseEnds remembers, in memory only (a renewal writes nothing for it),
// when each lease renewed on this node now ends, for revokeCause.
// Entries leave at revocation; one whose lease vanished otherwise (forced
// revocation) is dropped after maxKeyLifetime.
type leaseEnds struct {
	mu    sync.Mutex
	ends  map[string]time.Time // service account id -> lease end
	swept int                  // len(ends) after the last sweep
}

func (l *leaseEnds) set(id string, end time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ends == nil {
		l.ends = map[string]time.Time{}
	}
	// Sweep only when the map has doubled since the last sweep, so a
	// renewal costs amortised constant time.
	if len(l.ends) >= 2*l.swept+1024 {
		now := time.Now()
		for k, e := range l.ends {
			if now.Sub(e) > maxKeyLifetime {
				delete(l.ends, k)
			}
		}
		l.swept = len(l.ends)
	}
	l.ends[id] = end
}

func (l *leaseEnds) take(id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.ends[id]
	delete(l.ends, id)
	return end
}
