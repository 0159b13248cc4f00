package backend

import (
	"context"
	"fmt"
	"time"
)

// Creating an issue's account and key. Without scopes this is the one call
// it always was: the account comes with its key. With scopes OpenAI needs
// two: an account created bare (create_service_account_only: no role, no
// key), then a key with the scopes on it. Both run under the one
// WAL entry (path_creds.go): the bare account's name carries the entry's
// token, so a crash anywhere from the first call on leaves an account that
// rollback finds and deletes, and deleting an account deletes its keys.
//
// When the key cannot be made, the issue deletes the bare account itself
// at once instead of leaving it to rollback, and drops the WAL entry only
// when that delete settled everything (see createScopedAccount).

// keySpec is what an issued key is created with.
type keySpec struct {
	// Scopes restrict the key (sorted); empty means an unscoped key, made
	// by the single create of today.
	Scopes []string
	// ExpiresIn is the key's OpenAI-side lifetime from its creation.
	ExpiresIn time.Duration
}

func (k keySpec) expiresInSeconds() int64 {
	return max(int64(k.ExpiresIn/time.Second), 1)
}

// cleanupBudget bounds the delete of an account an issue or a probe could
// not use: if it runs out, the WAL entry stays and rollback deletes it.
const cleanupBudget = 10 * time.Second

// createAccountWithKey makes the account and key of one issue, named name,
// within ctx (the create time limit). cleanupCtx is the request's
// own context, for deleting an unusable account once ctx may be spent. A
// returned error's mayHaveCreated says whether the WAL entry must stay.
func (b *backend) createAccountWithKey(ctx, cleanupCtx context.Context, client adminClient, projectID, name string, spec keySpec) (*serviceAccountKey, error) {
	if len(spec.Scopes) == 0 {
		return client.CreateServiceAccount(ctx, projectID, name, spec.expiresInSeconds())
	}
	return b.createScopedAccount(ctx, cleanupCtx, client, projectID, name, spec, "issue.after_bare_account")
}

// createScopedAccount is the two-call create: a bare account, then a key
// with the scopes. On failure after the account exists, the account is
// deleted at once; the error then reports "may have created" unless that
// delete succeeded and no earlier attempt of the account create may have
// left a twin, so the caller keeps its WAL entry exactly when rollback still
// has something to find. between names the crashpoint between the two calls
// (crashpoint_on.go), where the e2e suite kills Vault.
func (b *backend) createScopedAccount(ctx, cleanupCtx context.Context, client adminClient, projectID, name string, spec keySpec, between string) (*serviceAccountKey, error) {
	acct, err := client.CreateBareServiceAccount(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	crashpoint(b.Logger(), between)
	if acct.UnexpectedKeyID != "" {
		// A key we did not ask for, without scopes or expiry: never hand
		// out this account. Not an upstream error, so the WAL entry stays
		// and rollback checks that the account is gone.
		gone := b.deleteUnusedAccount(cleanupCtx, client, projectID, acct.ID)
		return nil, fmt.Errorf("create service account: OpenAI created account %s with key %s although create_service_account_only was set; "+
			"refusing to issue it (deleted: %t)", acct.ID, acct.UnexpectedKeyID, gone)
	}
	key, err := client.CreateServiceAccountKey(ctx, projectID, acct.ID, keyParams{
		Name: name, Scopes: spec.Scopes, ExpiresInSeconds: spec.expiresInSeconds(),
	})
	if err != nil {
		// Deleting the account also deletes any key an ambiguous attempt
		// of the key create may have made.
		gone := b.deleteUnusedAccount(cleanupCtx, client, projectID, acct.ID)
		return nil, withMayHaveCreated(err, !gone || acct.EarlierAttemptMayHaveCreated)
	}
	// A twin key from a lost key-create response lives on this account:
	// its value never left OpenAI, it expires with the key's first expiry,
	// and revoking the lease deletes it with the account.
	return &serviceAccountKey{
		serviceAccount:               acct.serviceAccount,
		KeyID:                        key.ID,
		KeyValue:                     key.Value,
		KeyExpiresAt:                 key.ExpiresAt,
		Attempts:                     acct.Attempts + key.Attempts,
		EarlierAttemptMayHaveCreated: acct.EarlierAttemptMayHaveCreated,
	}, nil
}

// deleteUnusedAccount deletes an account nobody was given; gone reports
// that OpenAI no longer has it. A failure is logged: the WAL entry that
// guards the account stays, and rollback deletes it later.
func (b *backend) deleteUnusedAccount(ctx context.Context, client adminClient, projectID, saID string) bool {
	ctx, cancel := context.WithTimeout(ctx, cleanupBudget)
	defer cancel()
	err := client.DeleteServiceAccount(ctx, projectID, saID)
	gone, err := b.confirmAccountGone(ctx, client, projectID, saID, err)
	if !gone {
		b.Logger().Warn("could not delete an unused service account; WAL rollback will delete it",
			"project_id", projectID, "service_account_id", saID, "error", err)
	}
	return gone
}
