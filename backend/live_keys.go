package backend

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
)

// Live-key caps: a role's max_live_keys and the mount-wide max_live_keys in
// config (config_live_keys.go). 0 means unlimited.
//
// A key is live while its account record exists and is not revoked
// (accounts.go, ledger.go): pending
// records (an issue in flight, or one that failed and awaits rollback) count
// as well as committed ones, because their accounts exist at OpenAI. The
// records are the source of truth, so the count survives a restart; this
// file keeps an in-memory copy of them, loaded from storage on first use and
// kept exact by routing every record write and delete through it:
//
//   - issue: reserve before the create (the cap is checked here, under the
//     mutex, so N concurrent issuers against a cap of C admit exactly C);
//     the reservation becomes the account's entry when its record is
//     written (commitCreate), and is released if the issue fails before;
//   - revoke (Vault's expiry is a revoke too), WAL rollback and tidy mark
//     the record revoked and then forget the account (retireAccount).
//
// One liveKeys per backend instance, that is per mount. Records are local
// storage and every issue, revoke, rollback and tidy runs on the active
// node, whose backend instance is built afresh when it becomes active, so
// no other node changes the records under this copy and Invalidate has
// nothing to reset.

// maxMaxLiveKeys bounds both fields: past it a cap is a typo, not a limit.
const maxMaxLiveKeys = 100000

type liveKeys struct {
	// source lists the live accounts and their roles once, at load: the
	// ledger's index (ledger.go), so storage is read once for both.
	source func(context.Context, logical.Storage) (map[string]string, error)

	mu     sync.Mutex
	loaded bool
	// roleOf maps every recorded account id to its role.
	roleOf map[string]string
	// perRole counts recorded accounts per role (roleOf inverted).
	perRole map[string]int
	// reserved counts issues past the cap check whose record is not yet
	// written, per role, and in total.
	reserved      map[string]int
	reservedTotal int
}

func newLiveKeys(source func(context.Context, logical.Storage) (map[string]string, error)) *liveKeys {
	return &liveKeys{source: source, roleOf: map[string]string{}, perRole: map[string]int{}, reserved: map[string]int{}}
}

// liveKeyReservation is one issue's place under the caps. Exactly one of
// commit (its record is written) or release (the issue failed first) takes
// effect; release after commit does nothing, so callers defer release.
type liveKeyReservation struct {
	lk   *liveKeys
	role string
	done bool // guarded by lk.mu
}

// load takes the live accounts from source once. Called with mu held.
func (lk *liveKeys) load(ctx context.Context, s logical.Storage) error {
	if lk.loaded {
		return nil
	}
	roleOf, err := lk.source(ctx, s)
	if err != nil {
		return fmt.Errorf("count live keys: %w", err)
	}
	perRole := map[string]int{}
	for _, role := range roleOf {
		perRole[role]++
	}
	lk.roleOf, lk.perRole, lk.loaded = roleOf, perRole, true
	return nil
}

// perRoleCounts returns the live keys of each role (reservations not
// included), loading them on first use: the metrics' live-keys gauge.
func (lk *liveKeys) perRoleCounts(ctx context.Context, s logical.Storage) (map[string]int, error) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if err := lk.load(ctx, s); err != nil {
		return nil, err
	}
	out := make(map[string]int, len(lk.perRole))
	for role, n := range lk.perRole {
		out[role] = n
	}
	return out, nil
}

// errLiveKeyCap is a refusal by a cap; the caller answers it as a 400.
type errLiveKeyCap struct{ msg string }

func (e *errLiveKeyCap) Error() string { return e.msg }

// reserve admits one more key of role under roleCap and mountCap (0:
// unlimited) or refuses with an *errLiveKeyCap naming the cap and the live
// count. Every issue reserves, capped or not, so the count stays exact when
// a cap is set later.
func (lk *liveKeys) reserve(ctx context.Context, s logical.Storage, role string, roleCap, mountCap int) (*liveKeyReservation, error) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	if err := lk.load(ctx, s); err != nil {
		return nil, err
	}
	if live := lk.perRole[role] + lk.reserved[role]; roleCap > 0 && live >= roleCap {
		return nil, &errLiveKeyCap{fmt.Sprintf(
			"role %q has max_live_keys %d and %d of its keys are live (issues in flight included): "+
				"revoke one of its leases or raise the role's max_live_keys", role, roleCap, live)}
	}
	if live := len(lk.roleOf) + lk.reservedTotal; mountCap > 0 && live >= mountCap {
		return nil, &errLiveKeyCap{fmt.Sprintf(
			"mount max_live_keys %d reached: %d keys are live on this mount (issues in flight included), "+
				"refusing a key for role %q: revoke leases or raise max_live_keys in config", mountCap, live, role)}
	}
	lk.reserved[role]++
	lk.reservedTotal++
	return &liveKeyReservation{lk: lk, role: role}, nil
}

// unreserve drops the reservation's hold. Called with mu held.
func (r *liveKeyReservation) unreserve() bool {
	if r.done {
		return false
	}
	r.done = true
	r.lk.reserved[r.role]--
	if r.lk.reserved[r.role] == 0 {
		delete(r.lk.reserved, r.role)
	}
	r.lk.reservedTotal--
	return true
}

// commit turns the reservation into the recorded account id: called once
// the account's record is in storage.
func (r *liveKeyReservation) commit(id string) {
	if r == nil {
		return
	}
	r.lk.mu.Lock()
	defer r.lk.mu.Unlock()
	if r.unreserve() {
		r.lk.add(id, r.role)
	}
}

// release gives the place back when the issue wrote no record.
func (r *liveKeyReservation) release() {
	if r == nil {
		return
	}
	r.lk.mu.Lock()
	defer r.lk.mu.Unlock()
	r.unreserve()
}

// add counts a recorded account. Called with mu held.
func (lk *liveKeys) add(id, role string) {
	if _, ok := lk.roleOf[id]; ok {
		return
	}
	lk.roleOf[id] = role
	lk.perRole[role]++
}

// forget uncounts an account whose record was marked revoked. Idempotent: a
// revoke and a tidy retiring the same record uncount it once.
func (lk *liveKeys) forget(id string) {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	role, ok := lk.roleOf[id]
	if !ok {
		return
	}
	delete(lk.roleOf, id)
	lk.perRole[role]--
	if lk.perRole[role] == 0 {
		delete(lk.perRole, role)
	}
}

// reserveLiveKey applies the role's and the mount's caps to one issue. A
// refusal is a 400 error response rather than a 429: the request is
// well-formed, but it cannot succeed until an operator revokes leases or
// raises a cap, and Vault's API client retries 429 on its own (retryablehttp),
// which would only repeat the refusal; 400 is also what every other refusal
// a requester or operator can fix gets on this mount. cfg is the config
// the client was built from (cachedConfig), so the mount's cap costs
// no storage read.
func (b *backend) reserveLiveKey(ctx context.Context, s logical.Storage, roleName string, role *roleEntry, cfg *openaiConfig) (*liveKeyReservation, *logical.Response, error) {
	mountCap := 0
	if cfg != nil {
		mountCap = cfg.MaxLiveKeys
	}
	res, err := b.liveKeys.reserve(ctx, s, roleName, role.MaxLiveKeys, mountCap)
	if capErr, ok := err.(*errLiveKeyCap); ok {
		return nil, logical.ErrorResponse(capErr.msg), nil
	}
	return res, nil, err
}

// validMaxLiveKeys answers a 400 naming field for an out-of-range cap.
func validMaxLiveKeys(field string, n int) *logical.Response {
	if n < 0 || n > maxMaxLiveKeys {
		return logical.ErrorResponse("%s must be between 0 (unlimited) and %d (got %d)", field, maxMaxLiveKeys, n)
	}
	return nil
}
