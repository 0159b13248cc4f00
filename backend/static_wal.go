package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

// Crash recovery of static roles: a WAL entry is written before every
// create a static role makes (a rotation's key, an engine-owned account),
// naming the created object by a unique token in its name (uniqueName), so
// that rollback finds it by name even when the create's response was lost.
// The role's storage entry is the commit point: whatever it holds is kept,
// whatever carries the token and is not held is deleted.
const (
	walKindStaticKey     = "static_key"
	walKindStaticAccount = "static_account"
)

// walStaticKey guards one rotation's key create. Rollback keeps the key the
// role stored (rolled forward: the rotation committed) and deletes every
// other key on the account whose name carries Token (never stored, or a
// twin of a retried create). Keys without the token are never touched, so
// an operator's own keys on the account are safe.
type walStaticKey struct {
	Role      string `json:"role" mapstructure:"role"`
	ProjectID string `json:"project_id" mapstructure:"project_id"`
	AccountID string `json:"service_account_id" mapstructure:"service_account_id"`
	KeyName   string `json:"key_name" mapstructure:"key_name"`
	Token     string `json:"token" mapstructure:"token"`
	CreatedAt int64  `json:"created_at" mapstructure:"created_at"`
	// ExpiresAt is the key's OpenAI-side expiry; past it plus
	// walGiveUpAfter the key is dead anyway and rollback stops trying.
	ExpiresAt int64 `json:"expires_at" mapstructure:"expires_at"`
}

// walStaticAccount guards the create of an engine-owned static account.
// Rollback deletes accounts in the project whose name carries Token unless
// the role stores that account.
type walStaticAccount struct {
	Role      string `json:"role" mapstructure:"role"`
	ProjectID string `json:"project_id" mapstructure:"project_id"`
	Name      string `json:"name" mapstructure:"name"`
	Token     string `json:"token" mapstructure:"token"`
	CreatedAt int64  `json:"created_at" mapstructure:"created_at"`
}

// staticWALGiveUpAfter bounds retries of an account rollback that keeps
// failing (an account has no expiry to wait for).
const staticWALGiveUpAfter = 7 * 24 * time.Hour

func (b *backend) rollbackStaticKey(ctx context.Context, s logical.Storage, data interface{}) error {
	var e walStaticKey
	if err := mapstructure.WeakDecode(data, &e); err != nil || e.Role == "" || e.ProjectID == "" || e.AccountID == "" || !nameHasToken(e.KeyName, e.Token) {
		b.Logger().Error("dropping undecodable or incomplete static key WAL entry", "error", err)
		return nil
	}
	log := b.Logger().With("static_role", e.Role, "service_account_id", e.AccountID, "key_name", e.KeyName)
	if time.Now().After(time.Unix(e.ExpiresAt, 0).Add(walGiveUpAfter)) {
		log.Warn("dropping static key WAL entry past its key's expiry; the key is already dead at OpenAI")
		return nil
	}
	// The role lock makes rollback and a rotation of the same role
	// exclusive: a rotation in flight holds it until its WAL entry is gone.
	unlock := b.lockStaticRole(e.Role)
	defer unlock()
	role, err := getStaticRole(ctx, s, e.Role)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	if role != nil {
		for _, k := range []*staticKey{role.Current, role.Previous} {
			if k != nil && k.Name == e.KeyName {
				keep[k.ID] = true
			}
		}
	}
	client, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	deleted, err := b.deleteStaticKeysNamed(ctx, s, client, e.ProjectID, e.AccountID, e.Token, keep)
	if err != nil {
		if gone, _ := b.confirmProjectGone(ctx, client, e.ProjectID, err); gone {
			log.Info("project is archived; nothing to roll back")
			return nil
		}
		return fmt.Errorf("static key rollback: %w", err)
	}
	log.Info("settled the WAL entry of a static rotation", "deleted", deleted, "rolled_forward", len(keep) > 0)
	return nil
}

// deleteStaticKeysNamed deletes every key of accountID whose name carries
// token, except those in keep. Every key found is tried; the first error is
// returned.
func (b *backend) deleteStaticKeysNamed(ctx context.Context, s logical.Storage, client adminClient, projectID, accountID, token string, keep map[string]bool) (int, error) {
	var doomed []string
	firstErr := client.ListProjectAPIKeys(ctx, projectID, func(k projectAPIKey) bool {
		if k.ServiceAccountID == accountID && nameHasToken(k.Name, token) && !keep[k.ID] {
			doomed = append(doomed, k.ID)
		}
		return true
	})
	deleted := 0
	for _, id := range doomed {
		if err := client.DeleteAPIKey(ctx, projectID, id); err != nil && !isNotFound(err) {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		b.Logger().Info("deleted a static role key that was never stored", "api_key_id", id, "service_account_id", accountID)
		b.endStaticKey(ctx, s, id, revokedByRollback)
		deleted++
	}
	return deleted, firstErr
}

func (b *backend) rollbackStaticAccount(ctx context.Context, s logical.Storage, data interface{}) error {
	var e walStaticAccount
	if err := mapstructure.WeakDecode(data, &e); err != nil || e.Role == "" || e.ProjectID == "" || !nameHasToken(e.Name, e.Token) {
		b.Logger().Error("dropping undecodable or incomplete static account WAL entry", "error", err)
		return nil
	}
	log := b.Logger().With("static_role", e.Role, "service_account_name", e.Name)
	if time.Since(time.Unix(e.CreatedAt, 0)) > staticWALGiveUpAfter {
		log.Error("dropping static account WAL entry after retrying for a week; check the project for the account by hand")
		return nil
	}
	unlock := b.lockStaticRole(e.Role)
	defer unlock()
	role, err := getStaticRole(ctx, s, e.Role)
	if err != nil {
		return err
	}
	client, err := b.getClient(ctx, s)
	if err != nil {
		return err
	}
	var doomed []string
	err = client.ListServiceAccounts(ctx, e.ProjectID, func(sa serviceAccount) bool {
		if nameHasToken(sa.Name, e.Token) && (role == nil || role.ServiceAccountID != sa.ID) {
			doomed = append(doomed, sa.ID)
		}
		return true
	})
	if err != nil {
		if gone, _ := b.confirmProjectGone(ctx, client, e.ProjectID, err); gone {
			return nil
		}
		return fmt.Errorf("static account rollback: %w", err)
	}
	for _, id := range doomed {
		if err := client.DeleteServiceAccount(ctx, e.ProjectID, id); err != nil && !isNotFound(err) {
			return fmt.Errorf("static account rollback: %w", err)
		}
		log.Info("deleted a static role account that was never stored", "service_account_id", id)
	}
	log.Info("settled the WAL entry of a static account create", "deleted", len(doomed), "rolled_forward", role != nil)
	return nil
}

// staticRotationsInFlight lists the WAL entries of unsettled rotations of
// role: a role is not deleted under one (its rollback needs the role to
// know which key to keep).
func staticRotationsInFlight(ctx context.Context, s logical.Storage, role string) (int, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		e, err := framework.GetWAL(ctx, s, id)
		if err != nil || e == nil || e.Kind != walKindStaticKey {
			continue
		}
		var w walStaticKey
		if mapstructure.WeakDecode(e.Data, &w) == nil && w.Role == role {
			n++
		}
	}
	return n, nil
}
