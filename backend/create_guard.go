package backend

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
)

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
// Once the record is written the live-key reservation becomes the
// record's (live_keys.go): a pending record counts until rollback deletes it.
func (b *backend) commitCreate(ctx context.Context, s logical.Storage, walID, token string, rec *accountRecord, res *liveKeyReservation) error {
	lock := locksutil.LockForKey(b.createGuard.locks, token)
	lock.Lock()
	defer lock.Unlock()
	if b.createGuard.isRolledBack(token) {
		return errCreateRolledBack
	}
	if err := putAccountRecord(ctx, s, rec); err != nil {
		return fmt.Errorf("record issued account: %w", err)
	}
	res.commit(rec.ServiceAccountID)
	if err := framework.DeleteWAL(ctx, s, walID); err != nil {
		return fmt.Errorf("commit issued key: %w", err)
	}
	return nil
}
