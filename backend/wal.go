package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

const walKindServiceAccount = "service_account"

// walServiceAccount guards one create. Rollback deletes every account in the
// project with this exact name, except KeepID (the one a lease owns, set when
// a retried create succeeded and an earlier attempt may have left a twin).
type walServiceAccount struct {
	ProjectID string `json:"project_id" mapstructure:"project_id"`
	Name      string `json:"name" mapstructure:"name"`
	KeepID    string `json:"keep_id,omitempty" mapstructure:"keep_id"`
	CreatedAt int64  `json:"created_at" mapstructure:"created_at"`
	// ExpiresAt is when OpenAI itself expires the key; past it plus
	// walGiveUpAfter, rollback stops trying.
	ExpiresAt int64 `json:"expires_at" mapstructure:"expires_at"`
}

// walGiveUpAfter is how long past the key's own expiry a rollback that keeps
// failing is retried before it is dropped: by then the key is dead at OpenAI.
const walGiveUpAfter = 24 * time.Hour

// createdAtSkew tolerates clock drift between Vault and OpenAI when matching
// an account to the WAL entry that guarded its creation.
const createdAtSkew = 10 * time.Minute

func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data interface{}) error {
	switch kind {
	case walKindServiceAccount:
		var entry walServiceAccount
		if err := mapstructure.WeakDecode(data, &entry); err != nil {
			b.Logger().Error("dropping undecodable WAL entry", "kind", kind, "error", err)
			return nil
		}
		return b.rollbackServiceAccount(ctx, req.Storage, &entry)
	case walKindAdminKeyRotation:
		return b.rollbackAdminKeyRotation(ctx, req.Storage, data)
	default:
		// Returning an error would retry this forever; nothing can handle it.
		b.Logger().Error("dropping WAL entry of unknown kind", "kind", kind)
		return nil
	}
}

func (b *backend) rollbackServiceAccount(ctx context.Context, s logical.Storage, entry *walServiceAccount) error {
	log := b.Logger().With("project_id", entry.ProjectID, "service_account_name", entry.Name)
	if entry.ProjectID == "" || entry.Name == "" {
		log.Error("dropping WAL entry without project or name")
		return nil
	}
	if time.Now().After(time.Unix(entry.ExpiresAt, 0).Add(walGiveUpAfter)) {
		log.Warn("dropping WAL entry past its key's expiry; the key is already dead at OpenAI")
		return nil
	}
	client, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}

	earliest := entry.CreatedAt - int64(createdAtSkew.Seconds())
	var orphans []string
	err = client.ListServiceAccounts(ctx, entry.ProjectID, func(sa serviceAccount) bool {
		if sa.Name == entry.Name && sa.ID != entry.KeepID && sa.CreatedAt >= earliest {
			orphans = append(orphans, sa.ID)
		}
		return true
	})
	if isNotFound(err) {
		log.Info("project is gone; nothing to roll back")
		return nil
	}
	if err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	for _, id := range orphans {
		if err := client.DeleteServiceAccount(ctx, entry.ProjectID, id); err != nil && !isNotFound(err) {
			return fmt.Errorf("rollback: %w", err)
		}
		// A record exists when the issue failed after writing it.
		if err := deleteAccountRecord(ctx, s, id); err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		log.Info("rolled back service account from an interrupted issue", "service_account_id", id)
	}
	return nil
}
