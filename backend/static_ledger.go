package backend

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The issuance ledger's entries for static roles' keys. A static role's
// keys share one account, so they cannot be account records (one per
// account, accounts.go): each key has its own entry, static-keys/<api_key_id>,
// written when the key is created and before the role stores it (a key
// that ever existed is in the ledger), and marked ended with a cause when
// the engine deletes it. keys/ list, read and lookup answer from both
// kinds; static entries carry static_role instead of role. Never the value:
// its hash and last 4 characters, as for issued keys.

const staticKeyLedgerPrefix = "static-keys/"

// How a static key ended (revoked_by); a key never stored ends by
// revokedByRollback.
const (
	endedByRotation   = "rotation"    // a later rotation replaced it and its overlap ended
	endedByRoleDelete = "role_delete" // its static role was deleted
)

type staticKeyEntry struct {
	APIKeyID         string   `json:"api_key_id"`
	StaticRole       string   `json:"static_role"`
	ProjectID        string   `json:"project_id"`
	ServiceAccountID string   `json:"service_account_id"`
	AccountName      string   `json:"service_account_name,omitempty"`
	Scopes           []string `json:"scopes,omitempty"`
	CreatedAt        int64    `json:"created_at"`
	KeyExpiresAt     int64    `json:"key_expires_at,omitempty"`
	KeyHash          string   `json:"key_sha256,omitempty"`
	KeyHint          string   `json:"key_hint,omitempty"`
	EndedAt          int64    `json:"ended_at,omitempty"`
	EndedBy          string   `json:"ended_by,omitempty"`
}

// staticLedger holds every static entry in memory (they are few: at most
// two live per role, plus ended ones for ledger_retention), loaded once.
type staticLedger struct {
	loadOnce
	byKey map[string]staticKeyEntry
}

func (x *staticLedger) ensure(ctx context.Context, s logical.Storage) error {
	return x.ensureLoaded(func() error {
		ids, err := s.List(ctx, staticKeyLedgerPrefix)
		if err != nil {
			return fmt.Errorf("load the static keys' ledger: %w", err)
		}
		x.byKey = make(map[string]staticKeyEntry, len(ids))
		for _, id := range ids {
			e, err := getStaticKeyEntry(ctx, s, id)
			if err != nil {
				return fmt.Errorf("load the static keys' ledger: %w", err)
			}
			if e != nil {
				x.byKey[id] = *e
			}
		}
		return nil
	})
}

// entries returns a copy of the entries matching keep.
func (x *staticLedger) entries(keep func(staticKeyEntry) bool) []staticKeyEntry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []staticKeyEntry
	for _, e := range x.byKey {
		if keep(e) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].APIKeyID < out[j].APIKeyID })
	return out
}

func (x *staticLedger) get(keyID string) (staticKeyEntry, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e, ok := x.byKey[keyID]
	return e, ok
}

func getStaticKeyEntry(ctx context.Context, s logical.Storage, keyID string) (*staticKeyEntry, error) {
	se, err := s.Get(ctx, staticKeyLedgerPrefix+keyID)
	if err != nil || se == nil {
		return nil, err
	}
	var e staticKeyEntry
	if err := se.DecodeJSON(&e); err != nil {
		return nil, fmt.Errorf("decode static key ledger entry %q: %w", keyID, err)
	}
	return &e, nil
}

// putStaticKeyEntry writes an entry and keeps the in-memory copy exact.
func (b *backend) putStaticKeyEntry(ctx context.Context, s logical.Storage, e *staticKeyEntry) error {
	se, err := logical.StorageEntryJSON(staticKeyLedgerPrefix+e.APIKeyID, e)
	if err != nil {
		return err
	}
	if err := s.Put(ctx, se); err != nil {
		return err
	}
	x := b.ledger.static
	x.mu.Lock()
	if x.loaded {
		x.byKey[e.APIKeyID] = *e
	}
	x.mu.Unlock()
	return nil
}

// recordStaticKey writes the ledger entry of a key just created for role.
func (b *backend) recordStaticKey(ctx context.Context, s logical.Storage, name string, role *staticRole, k *staticKey, value string, created time.Time) error {
	e := &staticKeyEntry{
		APIKeyID: k.ID, StaticRole: name, ProjectID: role.ProjectID, ServiceAccountID: role.ServiceAccountID,
		AccountName: role.ServiceAccountName, Scopes: append([]string(nil), role.Scopes...),
		CreatedAt: created.Unix(), KeyExpiresAt: k.ExpiresAt,
	}
	if value != "" {
		e.KeyHash, e.KeyHint = keySHA256(value), keyHint(value)
	}
	return b.putStaticKeyEntry(ctx, s, e)
}

// endStaticKey marks a static key's entry ended by cause once OpenAI no
// longer has the key. An entry already ended keeps its first cause; a key
// without an entry (made before the ledger covered static keys, or a twin
// whose create answer was lost) is not an error.
func (b *backend) endStaticKey(ctx context.Context, s logical.Storage, keyID, cause string) {
	e, err := getStaticKeyEntry(ctx, s, keyID)
	if err == nil && (e == nil || e.EndedAt != 0) {
		return
	}
	if err == nil {
		e.EndedAt, e.EndedBy = time.Now().Unix(), cause
		err = b.putStaticKeyEntry(ctx, s, e)
	}
	if err != nil {
		// The key is gone at OpenAI either way; the entry says live until
		// the next end of the same key (a retried delete) or its pruning.
		b.Logger().Warn("ledger: could not mark a static key ended", "api_key_id", keyID, "revoked_by", cause, "error", err)
	}
}

// staticKeyEntryData is one static entry as keys/<api_key_id> and
// keys/lookup show it: the fields of an issued key's entry (ledgerEntryData),
// those that belong to a lease or a requester empty.
func staticKeyEntryData(e staticKeyEntry) map[string]interface{} {
	scopes := e.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]interface{}{
		"api_key_id":           e.APIKeyID,
		"service_account_id":   e.ServiceAccountID,
		"service_account_name": e.AccountName,
		"project_id":           e.ProjectID,
		"role":                 "",
		"static_role":          e.StaticRole,
		"scopes":               scopes,
		"display_name":         "",
		"entity_id":            "",
		"request_id":           "",
		"lease_id":             "",
		"issued_at":            unixRFC3339(e.CreatedAt),
		"expires_at":           unixRFC3339(e.KeyExpiresAt),
		"key_expires_at":       unixRFC3339(e.KeyExpiresAt),
		"key_hint":             e.KeyHint,
		"key_sha256":           e.KeyHash,
		"state":                stateOf(e.EndedAt),
		"revoked_at":           unixRFC3339(e.EndedAt),
		"revoked_by":           e.EndedBy,
	}
}

// pruneStaticLedger deletes ended static entries older than retention,
// at most ledgerPruneBatch per call.
func (b *backend) pruneStaticLedger(ctx context.Context, s logical.Storage, now time.Time, retention time.Duration) (int, error) {
	x := b.ledger.static
	if err := x.ensure(ctx, s); err != nil {
		return 0, err
	}
	cutoff := now.Add(-retention).Unix()
	due := x.entries(func(e staticKeyEntry) bool { return e.EndedAt != 0 && e.EndedAt < cutoff })
	pruned := 0
	for _, e := range due[:min(len(due), ledgerPruneBatch)] {
		if err := s.Delete(ctx, staticKeyLedgerPrefix+e.APIKeyID); err != nil {
			return pruned, err
		}
		x.mu.Lock()
		delete(x.byKey, e.APIKeyID)
		x.mu.Unlock()
		pruned++
	}
	return pruned, nil
}
