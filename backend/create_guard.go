package backend

import (
	"context"
	"fmt"
	"sync"
	"time"

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
// its record) only while its token is unmarked. So an
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

// commitCreate commits the account to the lease about to be returned by
// writing its record, committed from the start: rollback never deletes an
// account a committed record claims, so the create's WAL entry has nothing
// left to guard and is deleted in the background (wal_deleter.go). The
// record is written only while the token is unmarked, so a rollback that
// got there first wins and the issue fails.
// Once the record is written the live-key reservation becomes the
// record's (live_keys.go).
func (b *backend) commitCreate(ctx context.Context, s logical.Storage, walID, token string, rec *accountRecord, res *liveKeyReservation) error {
	lock := locksutil.LockForKey(b.createGuard.locks, token)
	lock.Lock()
	defer lock.Unlock()
	if b.createGuard.isRolledBack(token) {
		return errCreateRolledBack
	}
	if err := b.putRecord(ctx, s, rec); err != nil {
		// A failed put may still have been stored: remove it, or the
		// record would claim the account for a lease that never exists and
		// keep rollback off it (tidy would find it only at its expiry).
		if derr := b.deleteRecord(ctx, s, rec.ServiceAccountID); derr != nil {
			b.Logger().Error("could not undo a failed account record write; tidy removes the account once its lease could have ended",
				"service_account_id", rec.ServiceAccountID, "error", derr)
		}
		return &storageErr{fmt.Errorf("record issued account: %w", err)}
	}
	res.commit(rec.ServiceAccountID)
	crashpoint(b.Logger(), "issue.after_record")
	b.walDeleter.enqueue(ctx, s, walID)
	return nil
}
