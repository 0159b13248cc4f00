package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// accountStoragePrefix holds one record per service account this mount
// issued and has not yet revoked. Leases live in Vault's expiration manager,
// out of a plugin's reach; the records are the mount's own ledger of what it
// created, so tidy can find accounts whose lease is gone without a revoke and
// config delete can tell whether live keys depend on the admin key.
//
// Local storage: leases are local to the cluster that issued them (a
// performance secondary issues and revokes its own), and so are the records.
const accountStoragePrefix = "accounts/"

// accountRecord is what tidy needs to judge and delete an account without
// its lease. No secret: the key value is never stored.
type accountRecord struct {
	ServiceAccountID string `json:"service_account_id"`
	ProjectID        string `json:"project_id"`
	Name             string `json:"name"`
	Role             string `json:"role"`
	CreatedAt        int64  `json:"created_at"`
	// ExpiresAt is CreatedAt plus the lease's maximum lifetime: no lease,
	// renewals included, outlives it.
	ExpiresAt int64 `json:"expires_at"`
	// KeyExpiresAt is the key's expiry as OpenAI reported it (0: none).
	KeyExpiresAt int64 `json:"key_expires_at,omitempty"`
	// WALID marks a record written while its creation's WAL entry still
	// guarded it: pending (its account may still be rolled back) while the
	// entry exists, committed after. Earlier builds wrote it (they
	// committed by deleting the entry); records are now written committed
	// (create_guard.go), and pending ones already stored are still honoured.
	WALID string `json:"wal_id,omitempty"`

	// The issuance ledger (ledger.go): who received the key and how it
	// ended. Written with the record, so the issue path gains no write.
	APIKeyID    string   `json:"api_key_id,omitempty"`
	Scopes      []string `json:"scopes,omitempty"`
	DisplayName string   `json:"display_name,omitempty"`
	EntityID    string   `json:"entity_id,omitempty"`
	// RequestID is the issuing request's id, which Vault's audit log
	// carries in clear: the link from a ledger entry to its audit entry.
	RequestID string `json:"request_id,omitempty"`
	// LeaseID is unknown at issue (Vault assigns it after the plugin
	// answers); filled from the first renew or the revoke.
	LeaseID string `json:"lease_id,omitempty"`
	// KeyHash is the hex SHA-256 of the key value. A key carries 200+
	// random bits, so the hash cannot be reversed; the value is never kept.
	KeyHash string `json:"key_sha256,omitempty"`
	// KeyHint is the key's last 4 characters, as OpenAI's redacted_value
	// shows them.
	KeyHint string `json:"key_hint,omitempty"`
	// RevokedAt (unix) and RevokedBy (revokeCause) mark a dead key: the
	// record stays as ledger only until ledger_retention has passed.
	RevokedAt int64  `json:"revoked_at,omitempty"`
	RevokedBy string `json:"revoked_by,omitempty"`
}

// revoked reports whether the record is ledger only: its account is gone
// (or was never handed out) and nothing may treat it as a live key.
func (r *accountRecord) revoked() bool { return r.RevokedAt != 0 }

func newAccountRecord(sa *serviceAccountKey, projectID, role string, created time.Time, lifetime time.Duration) *accountRecord {
	return &accountRecord{
		ServiceAccountID: sa.ID,
		ProjectID:        projectID,
		Name:             sa.Name,
		Role:             role,
		CreatedAt:        created.Unix(),
		ExpiresAt:        created.Add(lifetime).Unix(),
		KeyExpiresAt:     sa.KeyExpiresAt,
	}
}

// committed reports whether the record's account was handed to a lease. A
// record with no WALID always was; an older pending record (entry still
// present) is an issue that failed and awaits rollback.
func (r *accountRecord) committed(ctx context.Context, s logical.Storage) (bool, error) {
	if r.WALID == "" {
		return true, nil
	}
	entry, err := framework.GetWAL(ctx, s, r.WALID)
	if err != nil {
		return false, fmt.Errorf("read WAL entry of account record %q: %w", r.ServiceAccountID, err)
	}
	return entry == nil, nil
}

// accountClaimedByLease reports whether a record claims the account for a
// lease: the record exists, is not revoked, and is committed. WAL rollback never deletes such
// an account, and neither may tidy unless the lease can no
// longer be alive (the record is stale). Accounts with no record, or a
// pending one, are not claimed.
func accountClaimedByLease(ctx context.Context, s logical.Storage, serviceAccountID string) (bool, error) {
	r, err := getAccountRecord(ctx, s, serviceAccountID)
	if err != nil || r == nil || r.revoked() {
		return false, err
	}
	return r.committed(ctx, s)
}

// keyDeadAt is when the account can no longer hold a usable key: OpenAI's
// expiry if it reported one, else the end of the lease's maximum lifetime.
func (r *accountRecord) keyDeadAt() time.Time {
	if r.KeyExpiresAt > 0 && (r.ExpiresAt == 0 || r.KeyExpiresAt < r.ExpiresAt) {
		return time.Unix(r.KeyExpiresAt, 0)
	}
	return time.Unix(r.ExpiresAt, 0)
}

func putAccountRecord(ctx context.Context, s logical.Storage, r *accountRecord) error {
	entry, err := logical.StorageEntryJSON(accountStoragePrefix+r.ServiceAccountID, r)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

func getAccountRecord(ctx context.Context, s logical.Storage, id string) (*accountRecord, error) {
	entry, err := s.Get(ctx, accountStoragePrefix+id)
	if err != nil || entry == nil {
		return nil, err
	}
	r := new(accountRecord)
	if err := entry.DecodeJSON(r); err != nil {
		return nil, fmt.Errorf("decode account record %q: %w", id, err)
	}
	return r, nil
}

// deleteAccountRecord removes a record: a failed write undone, or a revoked
// entry past ledger_retention. Deleting a record that never existed is not
// an error.
func deleteAccountRecord(ctx context.Context, s logical.Storage, id string) error {
	if err := s.Delete(ctx, accountStoragePrefix+id); err != nil {
		return fmt.Errorf("delete account record %q: %w", id, err)
	}
	return nil
}

// listAccountIDs returns the ids of every recorded account.
func listAccountIDs(ctx context.Context, s logical.Storage) ([]string, error) {
	ids, err := s.List(ctx, accountStoragePrefix)
	if err != nil {
		return nil, fmt.Errorf("list account records: %w", err)
	}
	return ids, nil
}
