package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

// Crash recovery: every kind of WAL entry the engine writes, and its
// rollback. Vault calls walRollback for an entry older than the rollback age
// (backend.go); an error keeps the entry for the next try.
const (
	walKindServiceAccount   = "service_account"
	walKindAdminKeyRotation = "admin_key_rotation"
)

// walServiceAccount guards one create. Rollback deletes the accounts in the
// project whose name carries Token (every attempt of one create sends the
// same name, so twins from lost responses carry it too), created after the
// entry, except KeepID (the one a lease owns, set when a create succeeded
// after an earlier attempt that may have created a twin) and except any
// account a committed record claims for a lease.
type walServiceAccount struct {
	ProjectID string `json:"project_id" mapstructure:"project_id"`
	Name      string `json:"name" mapstructure:"name"`
	// Token is the unique part the engine appended to Name (uniqueName).
	// Entries written before tokens existed have none (see rollbackLegacy).
	Token     string `json:"token,omitempty" mapstructure:"token"`
	KeepID    string `json:"keep_id,omitempty" mapstructure:"keep_id"`
	CreatedAt int64  `json:"created_at" mapstructure:"created_at"`
	// ExpiresAt is when OpenAI itself expires the key; past it plus
	// walGiveUpAfter, rollback stops trying.
	ExpiresAt int64 `json:"expires_at" mapstructure:"expires_at"`
}

// walGiveUpAfter is how long past the key's own expiry a rollback that keeps
// failing is retried before it is dropped: by then the key is dead at OpenAI.
const walGiveUpAfter = 24 * time.Hour

// walAdminKeyRotation guards one rotation. Rollback reads config: if it
// already holds the new key the rotation is rolled forward (the old key is
// deleted), otherwise back (the new key is deleted, by id or else by name).
type walAdminKeyRotation struct {
	OldKeyID   string `json:"old_key_id" mapstructure:"old_key_id"`
	NewKeyName string `json:"new_key_name" mapstructure:"new_key_name"`
	NewKeyID   string `json:"new_key_id,omitempty" mapstructure:"new_key_id"`
	CreatedAt  int64  `json:"created_at" mapstructure:"created_at"`
	// KeepOldKey: the old key was supplied and delete_supplied_key_on_rotate
	// is false, so rolling forward must not delete it (supplied_key.go).
	KeepOldKey bool `json:"keep_old_key,omitempty" mapstructure:"keep_old_key"`
}

// rotationWALGiveUpAfter bounds how long a rotation rollback that keeps
// failing is retried (for example while the stored key is rejected).
const rotationWALGiveUpAfter = 7 * 24 * time.Hour

// clockSkew tolerates drift between Vault's clock and OpenAI's: when
// matching an account to the WAL entry that guarded its creation, and when
// tidy judges a key expired at OpenAI (tidy.go).
const clockSkew = 10 * time.Minute

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
	case walKindStaticKey:
		return b.rollbackStaticKey(ctx, req.Storage, data)
	case walKindStaticAccount:
		return b.rollbackStaticAccount(ctx, req.Storage, data)
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
	if entry.Token != "" && !nameHasToken(entry.Name, entry.Token) {
		log.Error("dropping WAL entry whose name does not carry its token")
		return nil
	}
	client, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	if entry.Token != "" {
		b.createGuard.markRolledBack(entry.Token)
	}

	earliest := entry.CreatedAt - int64(clockSkew.Seconds())
	var candidates []serviceAccount
	sameName := 0
	err = client.ListServiceAccounts(ctx, entry.ProjectID, func(sa serviceAccount) bool {
		if sa.ID == entry.KeepID {
			return true
		}
		if entry.Token != "" {
			if nameHasToken(sa.Name, entry.Token) && sa.CreatedAt >= earliest {
				candidates = append(candidates, sa)
			}
			return true
		}
		if sa.Name == entry.Name {
			sameName++
			if sa.CreatedAt >= earliest {
				candidates = append(candidates, sa)
			}
		}
		return true
	})
	if err != nil {
		// Only an archived project is gone (account_gone.go): a 404 for the
		// project means this admin key cannot see it, and the entry waits.
		gone, gerr := b.confirmProjectGone(ctx, client, entry.ProjectID, err)
		if gone {
			log.Info("project is archived; nothing to roll back")
			return nil
		}
		return fmt.Errorf("rollback: %w", gerr)
	}
	if entry.Token == "" && sameName > 1 {
		// An entry from before names carried a token: several accounts share
		// the name, and any of them may belong to a live lease, another mount
		// or a person. Deleting by name alone is what defect 1 was about.
		ids := make([]string, 0, len(candidates))
		for _, sa := range candidates {
			ids = append(ids, sa.ID)
		}
		log.Warn("not rolling back an entry written before unique names: its name is not unique in the project; check these accounts by hand",
			"service_account_ids", ids, "same_name", sameName)
		return nil
	}

	deleted, kept := 0, 0
	for _, sa := range candidates {
		claimed, err := accountClaimedByLease(ctx, s, sa.ID)
		if err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		if claimed {
			log.Warn("not rolling back an account a lease owns", "service_account_id", sa.ID)
			kept++
			continue
		}
		if err := client.DeleteServiceAccount(ctx, entry.ProjectID, sa.ID); err != nil {
			if gone, gerr := b.confirmAccountGone(ctx, client, entry.ProjectID, sa.ID, err); !gone {
				return fmt.Errorf("rollback: %w", gerr)
			}
		}
		// A record exists when an earlier build left it pending, or a
		// failed record write could not be undone: the ledger keeps it,
		// revoked by rollback.
		r, err := b.retireAccount(ctx, s, sa.ID, revokedByRollback, "")
		if err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		fields := []interface{}{"service_account_id", sa.ID, "service_account_name", sa.Name}
		if r != nil {
			fields = append(r.logFields(), "service_account_name", sa.Name)
		}
		log.Info("rolled back service account from an interrupted issue", fields...)
		b.metrics.accountRolledBack()
		deleted++
	}
	// Entries of committed issues normally go right after the response
	// (wal_deleter.go); one that reaches rollback was left by a crash or a
	// failed request, so it is worth a line either way.
	log.Info("settled the WAL entry of an issue", "deleted", deleted, "kept_for_lease", kept)
	return nil
}

func (b *backend) rollbackAdminKeyRotation(ctx context.Context, s logical.Storage, data interface{}) error {
	var entry walAdminKeyRotation
	if err := mapstructure.WeakDecode(data, &entry); err != nil {
		b.Logger().Error("dropping undecodable rotation WAL entry", "error", err)
		return nil
	}
	if time.Since(time.Unix(entry.CreatedAt, 0)) > rotationWALGiveUpAfter {
		b.Logger().Error("dropping rotation WAL entry after retrying for a week", "new_key_name", entry.NewKeyName)
		return nil
	}

	b.configMu.Lock()
	defer b.configMu.Unlock()
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return err
	}
	if cfg == nil {
		return nil // config deleted: nothing left to rotate or to keep
	}
	client := b.buildClient(cfg.clientSettings())

	if entry.NewKeyID != "" && cfg.AdminAPIKeyID == entry.NewKeyID {
		// Persisted before the crash: roll forward.
		if entry.OldKeyID != "" && !entry.KeepOldKey {
			cfg.PendingKeyDeletions = appendUnique(cfg.PendingKeyDeletions, entry.OldKeyID)
		}
		b.deleteTwinAdminKeys(ctx, client, entry.NewKeyName, entry.NewKeyID)
		return b.deletePendingAdminKeys(ctx, s, client, cfg)
	}

	// Not persisted: delete the new key, which nothing uses; by id when the
	// entry recorded it, else every key of its (unique) name.
	if entry.NewKeyID != "" {
		err = b.deleteAdminKey(ctx, client, entry.NewKeyID)
	} else {
		err = b.deleteAdminKeysNamed(ctx, client, entry.NewKeyName, cfg.AdminAPIKeyID)
	}
	if err != nil {
		return fmt.Errorf("rotation rollback: %w", err)
	}
	return nil
}

// deleteTwinAdminKeys removes keys an earlier attempt of a retried create
// made before its response was lost: same unique name, different id. A
// failure is logged, not returned: the rotation itself has succeeded.
func (b *backend) deleteTwinAdminKeys(ctx context.Context, c adminClient, name, keepID string) {
	if err := b.deleteAdminKeysNamed(ctx, c, name, keepID); err != nil {
		b.Logger().Warn("could not check for duplicate admin keys from a retried create", "name", name, "error", err)
	}
}

// deleteAdminKeysNamed deletes every admin key called name except keepID.
// A rotated key's name is unique to its rotation (rotatedKeyName), so each
// one found is a leftover of that rotation. Every key found is tried even
// after a failure; the first error is returned.
func (b *backend) deleteAdminKeysNamed(ctx context.Context, c adminClient, name, keepID string) error {
	var doomed []string
	firstErr := c.ListAdminAPIKeys(ctx, func(k adminAPIKey) bool {
		if k.Name == name && k.ID != keepID {
			doomed = append(doomed, k.ID)
		}
		return true
	})
	for _, id := range doomed {
		if err := b.deleteAdminKey(ctx, c, id); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// deleteAdminKey deletes a key a rotation left behind; already gone is done.
func (b *backend) deleteAdminKey(ctx context.Context, c adminClient, id string) error {
	if err := c.DeleteAdminAPIKey(ctx, id); err != nil && !isNotFound(err) {
		return err
	}
	b.Logger().Info("deleted admin key from an interrupted or retried rotation", "admin_api_key_id", id)
	return nil
}
