package backend

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Token budgets: a role's max_tokens_per_key. The plugin cannot revoke a
// Vault lease (only Vault's expiration manager can), so a key over budget is
// killed where it lives: its service account is deleted at OpenAI, which
// ends the key at once, and its ledger record is marked revoked_by budget.
// Its lease stays in Vault until it ends, but cannot renew (the renewal
// fails naming the budget), and its revocation succeeds with no upstream
// call, the account being already gone.
//
// The check runs on the periodic tick (one minute) on each cluster's active
// node, like the sweep (records are local). Per role with a budget and live
// keys it asks OpenAI once for the usage of those keys (one completions
// query per usageKeyBatch keys, from the oldest key's issue), never once
// per key. A key is therefore killed within a minute of OpenAI reporting
// it over budget; OpenAI's own reporting delay, which it does not
// document, comes on top.

const (
	// maxMaxTokensPerKey bounds the field: past a trillion tokens a budget
	// is a typo, not a limit.
	maxMaxTokensPerKey = 1_000_000_000_000

	// budgetCheckLimit bounds one tick's budget checks: they share Vault's
	// periodic deadline with tidy and rotation. Roles not reached wait for
	// the next tick.
	budgetCheckLimit = 30 * time.Second
)

func validMaxTokensPerKey(n int64) *logical.Response {
	if n < 0 || n > maxMaxTokensPerKey {
		return logical.ErrorResponse("max_tokens_per_key must be between 0 (no budget) and %d (got %d)", int64(maxMaxTokensPerKey), n)
	}
	return nil
}

// enforceBudgets is the periodic budget check. Failures are logged, not
// returned: the next tick retries. Roles come from the in-memory live-key
// index and the role cache, so a tick with no budgeted live key reads no
// storage and calls nothing.
func (b *backend) enforceBudgets(ctx context.Context, s logical.Storage) {
	if !b.tidyAllowed() {
		return
	}
	liveByRole, err := b.liveKeys.idsByRole(ctx, s)
	if err != nil {
		b.Logger().Warn("token budgets: cannot read live keys", "error", err)
		return
	}
	budgets := map[string]int64{}
	for name := range liveByRole {
		role, _, _, err := b.issueRole(ctx, s, name)
		if err != nil {
			b.Logger().Warn("token budgets: cannot read role", "role", name, "error", err)
			continue
		}
		// A deleted role's keys keep no budget: it went with the role.
		if role != nil && role.MaxTokensPerKey > 0 {
			budgets[name] = role.MaxTokensPerKey
		}
	}
	if len(budgets) == 0 {
		return
	}
	client, err := b.getClient(ctx, s)
	if err != nil {
		return // not configured: nothing can be checked
	}
	ctx, cancel := context.WithTimeout(ctx, budgetCheckLimit)
	defer cancel()
	roles := make([]string, 0, len(budgets))
	for role := range budgets {
		roles = append(roles, role)
	}
	slices.Sort(roles)
	for _, role := range roles {
		// A failure that lasts (an outage, throttling) is logged once, not
		// every minute, until a check of the role succeeds again.
		if err := b.enforceRoleBudget(ctx, s, client, role, budgets[role], liveByRole[role]); err != nil {
			b.warnOnce("budget:"+role, "token budgets: check failed; retrying every tick", "role", role, "error", err)
		} else {
			b.forgetWarning("budget:" + role)
		}
	}
}

// enforceRoleBudget reads the usage of the role's live keys (ids: their
// service accounts) in one query and kills those over budget.
func (b *backend) enforceRoleBudget(ctx context.Context, s logical.Storage, client adminClient, role string, budget int64, ids []string) error {
	var recs []*accountRecord
	var keyIDs []string
	oldest := time.Now()
	for _, id := range ids {
		r, err := getAccountRecord(ctx, s, id)
		if err != nil {
			return err
		}
		if r == nil || r.revoked() || r.APIKeyID == "" || r.Role != role {
			continue
		}
		if committed, err := r.committed(ctx, s); err != nil || !committed {
			continue // an issue that failed: rollback deletes it
		}
		recs = append(recs, r)
		keyIDs = append(keyIDs, r.APIKeyID)
		if t := time.Unix(r.CreatedAt, 0); t.Before(oldest) {
			oldest = t
		}
	}
	if len(recs) == 0 {
		return nil
	}
	sums, err := keyUsageOf(ctx, client, keyIDs, oldest, time.Now(), false)
	if err != nil {
		return err
	}
	for _, r := range recs {
		u := sums.usage[r.APIKeyID]
		if spent := u.InputTokens + u.OutputTokens; spent > budget {
			if err := b.killOverBudget(ctx, s, client, r, spent, budget); err != nil {
				b.Logger().Warn("token budgets: could not revoke a key over budget; retrying at the next tick",
					"role", role, "api_key_id", r.APIKeyID, "service_account_id", r.ServiceAccountID, "error", err)
			}
		}
	}
	return nil
}

// killOverBudget deletes the key's service account at OpenAI and only then
// marks its record: a record never says revoked while the key may work.
func (b *backend) killOverBudget(ctx context.Context, s logical.Storage, client adminClient, r *accountRecord, spent, budget int64) error {
	err := client.DeleteServiceAccount(ctx, r.ProjectID, r.ServiceAccountID)
	if gone, err := b.confirmAccountGone(ctx, client, r.ProjectID, r.ServiceAccountID, err); !gone {
		return err
	}
	if _, err := b.retireAccount(ctx, s, r.ServiceAccountID, revokedByBudget, ""); err != nil {
		return err
	}
	b.Logger().Warn("key over its role's max_tokens_per_key: its service account was deleted at OpenAI; its lease can no longer renew",
		"role", r.Role, "api_key_id", r.APIKeyID, "display_name", r.DisplayName, "service_account_id", r.ServiceAccountID,
		"lease_id", r.LeaseID, "tokens", spent, "max_tokens_per_key", budget)
	b.metrics.budgetRevoked(r.Role)
	return nil
}

// revokedRecord returns the record of an account the ledger says is
// revoked, or nil; the in-memory index answers for live keys, so a renewal
// or revocation of a live key reads no more storage than before.
func (b *backend) revokedRecord(ctx context.Context, s logical.Storage, id string) (*accountRecord, error) {
	if err := b.ledger.ensure(ctx, s); err != nil {
		return nil, err
	}
	if e, ok := b.ledger.entry(id); !ok || e.revokedAt == 0 {
		return nil, nil
	}
	r, err := getAccountRecord(ctx, s, id)
	if err != nil || r == nil || !r.revoked() {
		return nil, err
	}
	return r, nil
}

// refuseRevokedRenewal answers a renewal of a lease whose key the ledger
// says is dead (over budget, or otherwise revoked) with an error saying why,
// instead of extending a lease whose key no longer works. The lease's id
// is recorded when Vault passes one (Vault 1.21 does not on renewals).
func (b *backend) refuseRevokedRenewal(ctx context.Context, s logical.Storage, id, leaseID string) (*logical.Response, error) {
	r, err := b.revokedRecord(ctx, s, id)
	if err != nil || r == nil {
		return nil, err
	}
	if err := b.noteLeaseID(ctx, s, id, leaseID); err != nil {
		b.Logger().Warn("renew: could not record the lease id in the ledger", append(r.logFields(), "error", err)...)
	}
	why := r.RevokedBy
	if why == revokedByBudget {
		why = "it exceeded the role's max_tokens_per_key"
	}
	// A plain error, not an error response: Vault prints a renewal's error
	// response as a Go struct dump, and its error as text.
	return nil, fmt.Errorf("key %s of role %q was revoked at %s (%s) and can no longer be renewed; request a new key",
		r.APIKeyID, r.Role, unixRFC3339(r.RevokedAt), why)
}

// revokeKilledByBudget settles the revocation of a lease whose key the
// budget check killed: no upstream call, the lease id recorded, the
// ledger's cause left at budget. done is false for any other key.
func (b *backend) revokeKilledByBudget(ctx context.Context, s logical.Storage, key apiKeyInternal, leaseID string) (done bool, err error) {
	r, err := b.revokedRecord(ctx, s, key.ServiceAccountID)
	if err != nil || r == nil || r.RevokedBy != revokedByBudget {
		return false, err
	}
	b.leaseEnds.take(key.ServiceAccountID)
	if r, err = b.retireAccount(ctx, s, key.ServiceAccountID, revokedByBudget, leaseID); err != nil {
		return false, err
	}
	b.Logger().Info("revoked key", append(r.logFields(), "cause", revokedByBudget, "already_gone", true)...)
	return true, nil
}

// idsByRole lists the live keys' service-account ids per role, from the
// in-memory copy of the records (live_keys.go), so a tick reads only the
// records of budgeted roles.
func (lk *liveKeys) idsByRole(ctx context.Context, s logical.Storage) (map[string][]string, error) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if err := lk.load(ctx, s); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for id, role := range lk.roleOf {
		out[role] = append(out[role], id)
	}
	return out, nil
}
