package backend

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/mitchellh/mapstructure"
)

const walKindServiceAccount = "service_account"

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

// createdAtSkew tolerates clock drift between Vault and OpenAI when matching
// an account to the WAL entry that guarded its creation.
const createdAtSkew = 10 * time.Minute

// createCommitMargin is the time an issue may still need after its create
// call returns (twin entry, record, commit), kept free below the rollback age.
const createCommitMargin = time.Second

// rollbackMarkTTL is how long a rolled-back token is remembered, so that an
// issue still holding it fails its commit. Far longer than any create can
// last (its call is capped below the rollback age).
const rollbackMarkTTL = time.Hour

// createGuard makes an issue's commit and a rollback of the same create
// exclusive: a rollback marks the token first, and an issue commits (writes
// its record, deletes its WAL entry) only while its token is unmarked. So an
// account is either committed before rollback looks at it (and its
// committed record protects it), or its issue fails. In memory: both run on
// the active node, where every create happens.
type createGuard struct {
	locks []*locksutil.LockEntry

	mu         sync.Mutex
	rolledBack map[string]time.Time
}

func newCreateGuard() *createGuard {
	return &createGuard{locks: locksutil.CreateLocks(), rolledBack: map[string]time.Time{}}
}

// markRolledBack records that rollback is acting on token.
func (g *createGuard) markRolledBack(token string) {
	lock := locksutil.LockForKey(g.locks, token)
	lock.Lock()
	defer lock.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for t, at := range g.rolledBack {
		if now.Sub(at) > rollbackMarkTTL {
			delete(g.rolledBack, t)
		}
	}
	g.rolledBack[token] = now
}

func (g *createGuard) isRolledBack(token string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.rolledBack[token]
	return ok
}

// errCreateRolledBack: the issue outlived its WAL entry's rollback age.
var errCreateRolledBack = fmt.Errorf("issue took longer than the WAL rollback age and was rolled back; retry the request")

// commitCreate writes the account's record, still pending, then deletes the
// WAL entry, which commits the account to the lease about to be returned.
// If the delete fails the request fails, and rollback removes the account
// and its record.
func (b *backend) commitCreate(ctx context.Context, s logical.Storage, walID, token string, rec *accountRecord) error {
	lock := locksutil.LockForKey(b.createGuard.locks, token)
	lock.Lock()
	defer lock.Unlock()
	if b.createGuard.isRolledBack(token) {
		return errCreateRolledBack
	}
	if err := putAccountRecord(ctx, s, rec); err != nil {
		return fmt.Errorf("record issued account: %w", err)
	}
	if err := framework.DeleteWAL(ctx, s, walID); err != nil {
		return fmt.Errorf("commit issued key: %w", err)
	}
	return nil
}

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

	earliest := entry.CreatedAt - int64(createdAtSkew.Seconds())
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

	for _, sa := range candidates {
		claimed, err := accountClaimedByLease(ctx, s, sa.ID)
		if err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		if claimed {
			log.Warn("not rolling back an account a lease owns", "service_account_id", sa.ID)
			continue
		}
		if err := client.DeleteServiceAccount(ctx, entry.ProjectID, sa.ID); err != nil {
			if gone, gerr := b.confirmAccountGone(ctx, client, entry.ProjectID, sa.ID, err); !gone {
				return fmt.Errorf("rollback: %w", gerr)
			}
		}
		// A pending record exists when the issue failed after writing it.
		if err := deleteAccountRecord(ctx, s, sa.ID); err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		log.Info("rolled back service account from an interrupted issue", "service_account_id", sa.ID)
	}
	return nil
}
