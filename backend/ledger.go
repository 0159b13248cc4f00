package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/sync/errgroup"
)

// The issuance ledger. The account record (accounts.go) is the ledger
// entry: written once at issue with who received the key (display name,
// entity, request id), its id, scopes and a hash of its value, so issuing
// costs no extra write. Revocation, rollback and tidy no longer delete the
// record but mark it revoked (one put instead of one delete); the periodic
// function prunes revoked entries after ledger_retention (pruneLedger).
//
// ledgerIndex answers keys/ reads without reading every record: an
// in-memory copy of what lookups and listings need, loaded from storage
// once, like liveKeys (which takes its live set from here), and kept exact
// because every record write and delete goes through putRecord and
// deleteRecord. Records are local storage written only by the active node,
// so the reads that use it are forwarded there by performance standbys.

// revokeCause says how a key ended (revoked_by).
const (
	revokedByRevoke   = "revoke"   // the lease was revoked explicitly
	revokedByExpiry   = "expiry"   // the lease reached its end (inferred, revokeCause)
	revokedByRollback = "rollback" // WAL rollback of an interrupted issue
	revokedByTidy     = "tidy"     // the orphan sweep
	revokedByBudget   = "budget"   // over its role's token budget
)

// keySHA256 is what the ledger keeps of a key value.
func keySHA256(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// keyHint is the key's last 4 characters, as OpenAI's redacted_value ends.
func keyHint(key string) string {
	if len(key) < 4 {
		return ""
	}
	return key[len(key)-4:]
}

// ledgerIssuer is who asked for a key, from the issuing request.
type ledgerIssuer struct {
	DisplayName string
	EntityID    string
	RequestID   string
}

func issuerOf(req *logical.Request) ledgerIssuer {
	return ledgerIssuer{DisplayName: req.DisplayName, EntityID: req.EntityID, RequestID: req.ID}
}

// recordIssue fills a new record's ledger fields. The key value itself
// only passes through: hashed, and its last 4 characters kept.
func (r *accountRecord) recordIssue(sa *serviceAccountKey, scopes []string, who ledgerIssuer) {
	r.APIKeyID = sa.KeyID
	r.Scopes = append([]string(nil), scopes...)
	r.DisplayName, r.EntityID, r.RequestID = who.DisplayName, who.EntityID, who.RequestID
	if sa.KeyValue != "" {
		r.KeyHash, r.KeyHint = keySHA256(sa.KeyValue), keyHint(sa.KeyValue)
	}
}

// logFields are the hclog fields every line about a key carries; never
// the key value.
func (r *accountRecord) logFields() []interface{} {
	f := []interface{}{"role", r.Role, "project_id", r.ProjectID, "service_account_id", r.ServiceAccountID,
		"api_key_id", r.APIKeyID, "display_name", r.DisplayName}
	if r.LeaseID != "" {
		f = append(f, "lease_id", r.LeaseID)
	}
	return f
}

// ledgerEntry is what the index keeps of one record.
type ledgerEntry struct {
	role, apiKeyID, keyHash, keyHint string
	revokedAt                        int64
	leaseKnown                       bool
}

type ledgerIndex struct {
	loadOnce
	bySA   map[string]ledgerEntry // service account id -> entry
	byKey  map[string]string      // api key id -> service account id
	byHash map[string]string      // key hash -> service account id

	// static holds static roles' keys, which share accounts
	// (static_ledger.go).
	static *staticLedger
}

func newLedgerIndex() *ledgerIndex { return &ledgerIndex{static: &staticLedger{}} }

// ensure loads every record once.
func (x *ledgerIndex) ensure(ctx context.Context, s logical.Storage) error {
	return x.ensureLoaded(func() error {
		ids, err := listAccountIDs(ctx, s)
		if err != nil {
			return err
		}
		records, errs := readAccountRecords(ctx, s, ids)
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("load the issuance ledger: %w", err)
		}
		x.bySA, x.byKey, x.byHash = make(map[string]ledgerEntry, len(ids)), map[string]string{}, map[string]string{}
		for _, r := range records {
			if r != nil { // nil: deleted since the list
				x.setLocked(r)
			}
		}
		return nil
	})
}

// ledgerLoadWorkers bounds the concurrent record reads of a load. Each read
// is a gRPC round trip to Vault and, on Raft, a read of the local store:
// reading one after another, 10,800 records took about 6.5 s after a
// failover (bench-scale, loaded machine), with every issue waiting behind
// them; a few in flight hide most of the round trips.
const ledgerLoadWorkers = 16

// readAccountRecords reads the records of ids with ledgerLoadWorkers reads
// in flight; recs[i] is ids[i]'s record (nil when it was deleted since the
// list) and errs[i] its read error, so a caller decides whether one bad
// record fails the whole read (the ledger's load) or is skipped (the sweep).
func readAccountRecords(ctx context.Context, s logical.Storage, ids []string) (recs []*accountRecord, errs []error) {
	recs, errs = make([]*accountRecord, len(ids)), make([]error, len(ids))
	var g errgroup.Group
	g.SetLimit(ledgerLoadWorkers)
	for i, id := range ids {
		g.Go(func() error {
			recs[i], errs[i] = getAccountRecord(ctx, s, id)
			return nil
		})
	}
	_ = g.Wait() // the workers report through errs
	return recs, errs
}

func (x *ledgerIndex) setLocked(r *accountRecord) {
	if old, ok := x.bySA[r.ServiceAccountID]; ok {
		x.unindexLocked(r.ServiceAccountID, old)
	}
	x.bySA[r.ServiceAccountID] = ledgerEntry{role: r.Role, apiKeyID: r.APIKeyID, keyHash: r.KeyHash, keyHint: r.KeyHint,
		revokedAt: r.RevokedAt, leaseKnown: r.LeaseID != ""}
	if r.APIKeyID != "" {
		x.byKey[r.APIKeyID] = r.ServiceAccountID
	}
	if r.KeyHash != "" {
		x.byHash[r.KeyHash] = r.ServiceAccountID
	}
}

func (x *ledgerIndex) unindexLocked(id string, e ledgerEntry) {
	if x.byKey[e.apiKeyID] == id {
		delete(x.byKey, e.apiKeyID)
	}
	if x.byHash[e.keyHash] == id {
		delete(x.byHash, e.keyHash)
	}
	delete(x.bySA, id)
}

// set reflects a record just written. Before the load there is nothing to
// keep exact: the load reads storage, which already holds it.
func (x *ledgerIndex) set(r *accountRecord) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.loaded {
		x.setLocked(r)
	}
}

// remove reflects a record just deleted.
func (x *ledgerIndex) remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.bySA[id]; ok && x.loaded {
		x.unindexLocked(id, e)
	}
}

// liveRoles maps every live (not revoked) account to its role: liveKeys'
// source (live_keys.go).
func (x *ledgerIndex) liveRoles(ctx context.Context, s logical.Storage) (map[string]string, error) {
	if err := x.ensure(ctx, s); err != nil {
		return nil, err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[string]string, len(x.bySA))
	for id, e := range x.bySA {
		if e.revokedAt == 0 {
			out[id] = e.role
		}
	}
	return out, nil
}

func (x *ledgerIndex) entry(id string) (ledgerEntry, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.bySA[id]
	return e, ok
}

// putRecord writes a record and keeps the index exact: every record write
// goes through here.
func (b *backend) putRecord(ctx context.Context, s logical.Storage, r *accountRecord) error {
	if err := putAccountRecord(ctx, s, r); err != nil {
		return err
	}
	b.ledger.set(r)
	return nil
}

// deleteRecord removes a record (a failed write undone, or a pruned entry).
func (b *backend) deleteRecord(ctx context.Context, s logical.Storage, id string) error {
	if err := deleteAccountRecord(ctx, s, id); err != nil {
		return err
	}
	b.ledger.remove(id)
	return nil
}

// retireAccount marks an account's record revoked by cause once OpenAI no
// longer has the account, and uncounts it from the live-key caps: every
// end of a key goes through here (revoke, expiry, rollback, tidy, budget).
// One put, as the delete it replaces was one write. A record already
// revoked keeps its first cause (a budget revocation stays one when Vault
// revokes the lease later); leaseID, when given and not yet known, is
// recorded either way. A lease from before records existed has none, which
// is not an error. Returns the record (nil if none).
func (b *backend) retireAccount(ctx context.Context, s logical.Storage, id, cause, leaseID string) (*accountRecord, error) {
	r, err := getAccountRecord(ctx, s, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		b.liveKeys.forget(id)
		return nil, nil
	}
	changed := false
	if leaseID != "" && r.LeaseID == "" {
		r.LeaseID, changed = leaseID, true
	}
	transition := !r.revoked()
	if transition {
		r.RevokedAt, r.RevokedBy, changed = time.Now().Unix(), cause, true
	}
	if changed {
		if err := b.putRecord(ctx, s, r); err != nil {
			return nil, fmt.Errorf("mark account record %q revoked: %w", id, err)
		}
	}
	b.liveKeys.forget(id)
	if transition {
		b.metrics.keyRevoked(r.Role, cause)
	}
	return r, nil
}

// noteLeaseID records a lease's id when Vault passes one: Vault assigns it
// after the issue's answer, so the issue cannot. Vault 1.21 clears it on
// renew requests (renewEntry in vault/expiration.go) and passes it on a
// revoke only for a lease renewed at least once; the audit log's response
// to request_id always has it. The index says whether it is known, so
// later calls read nothing.
func (b *backend) noteLeaseID(ctx context.Context, s logical.Storage, id, leaseID string) error {
	if leaseID == "" {
		return nil
	}
	if err := b.ledger.ensure(ctx, s); err != nil {
		return err
	}
	if e, ok := b.ledger.entry(id); !ok || e.leaseKnown {
		return nil
	}
	r, err := getAccountRecord(ctx, s, id)
	if err != nil || r == nil || r.LeaseID != "" {
		return err
	}
	r.LeaseID = leaseID
	return b.putRecord(ctx, s, r)
}

// ledgerPruneBatch bounds the deletes of one periodic tick, so a large
// backlog (a retention just shortened) spreads over ticks instead of
// holding the periodic function.
const ledgerPruneBatch = 500

// pruneLedger deletes up to ledgerPruneBatch revoked entries whose
// revocation is older than retention, oldest first, and says how many it
// deleted and how many more are due.
func (b *backend) pruneLedger(ctx context.Context, s logical.Storage, now time.Time, retention time.Duration) (pruned, left int, err error) {
	if err := b.ledger.ensure(ctx, s); err != nil {
		return 0, 0, err
	}
	cutoff := now.Add(-retention).Unix()
	type due struct {
		id string
		at int64
	}
	var dues []due
	b.ledger.mu.RLock()
	for id, e := range b.ledger.bySA {
		if e.revokedAt != 0 && e.revokedAt < cutoff {
			dues = append(dues, due{id, e.revokedAt})
		}
	}
	b.ledger.mu.RUnlock()
	sort.Slice(dues, func(i, j int) bool {
		return dues[i].at < dues[j].at || dues[i].at == dues[j].at && dues[i].id < dues[j].id
	})
	for i, d := range dues {
		if i == ledgerPruneBatch {
			return pruned, len(dues) - i, nil
		}
		if err := b.deleteRecord(ctx, s, d.id); err != nil {
			return pruned, len(dues) - i, err
		}
		pruned++
	}
	return pruned, 0, nil
}

// periodicPruneLedger runs pruneLedger on the tick, where tidy may run
// (the active node of each cluster: the records are local storage).
func (b *backend) periodicPruneLedger(ctx context.Context, s logical.Storage) {
	if !b.tidyAllowed() {
		return
	}
	cfg, err := getConfig(ctx, s)
	if err != nil {
		return
	}
	pruned, left, err := b.pruneLedger(ctx, s, time.Now(), cfg.ledgerRetention())
	if err == nil {
		var static int
		static, err = b.pruneStaticLedger(ctx, s, time.Now(), cfg.ledgerRetention())
		pruned += static
	}
	log := b.Logger()
	switch {
	case err != nil:
		log.Warn("ledger: pruning revoked entries failed; will retry next tick", "pruned", pruned, "error", err)
	case pruned > 0:
		log.Info("ledger: pruned revoked entries past ledger_retention", "pruned", pruned, "still_due", left,
			"ledger_retention_s", int64(cfg.ledgerRetention().Seconds()))
	}
}
