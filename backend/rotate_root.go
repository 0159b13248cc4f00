package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-secure-stdlib/base62"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// verifyAttempts and verifyBackoff allow for a new key taking a moment to
// work at OpenAI, which its documentation leaves open.
const (
	verifyAttempts = 5
	verifyBackoff  = 250 * time.Millisecond
)

// errCurrentKeyRejected is a user error: nothing the engine can do without a
// working key.
var errCurrentKeyRejected = errors.New("the stored admin key is rejected by OpenAI, so it cannot create its successor: write a new working key to config (admin_api_key)")

type rotationResult struct {
	KeyID       string
	LastRotated time.Time
	// OldKeyPending is set when the old key could not be deleted yet.
	OldKeyPending bool
	// OldKeyKept: the old key was supplied and is kept (supplied_key.go).
	OldKeyKept bool
	OldKeyID   string
}

// rotateRoot replaces the admin key: create, verify, persist, delete the old.
// configMu serialises it with config writes and other rotations, so
// concurrent rotations take turns and never share an old key.
func (b *backend) rotateRoot(ctx context.Context, s logical.Storage) (res *rotationResult, err error) {
	b.configMu.Lock()
	defer b.configMu.Unlock()
	// Every rotation, by hand or scheduled, is counted and logged once here.
	defer func() {
		b.metrics.rotation(err)
		if err != nil {
			b.Logger().Warn("admin key rotation failed", "error", err)
		}
	}()

	cfg, err := getConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errMissingConfig
	}
	oldClient := b.buildClient(cfg.clientSettings())
	oldKeyID := cfg.AdminAPIKeyID
	keepOld := !cfg.deleteOldKeyOnRotate()
	name := rotatedKeyName(cfg.MountLabel)

	walID, err := framework.PutWAL(ctx, s, walKindAdminKeyRotation, &walAdminKeyRotation{
		OldKeyID: oldKeyID, NewKeyName: name, CreatedAt: time.Now().Unix(), KeepOldKey: keepOld,
	})
	if err != nil {
		return nil, fmt.Errorf("write WAL entry: %w", err)
	}

	newKey, newValue, err := oldClient.CreateAdminAPIKey(ctx, name, int64(cfg.AdminAPIKeyTTL.Seconds()))
	if err != nil {
		// A refusal creates nothing, unless an earlier attempt of the same
		// call may have (a 5xx or a lost response before a 401 after a
		// concurrent change): then the entry stays for rollback to settle.
		if isClientError(err) && !mayHaveCreated(err) {
			b.deleteWALQuietly(ctx, s, walID)
		}
		if isAuthError(err) {
			return nil, errCurrentKeyRejected
		}
		return nil, fmt.Errorf("rotate admin key: %w", err)
	}

	// Record the id so a rollback deletes exactly this key.
	if id, err := framework.PutWAL(ctx, s, walKindAdminKeyRotation, &walAdminKeyRotation{
		OldKeyID: oldKeyID, NewKeyName: name, NewKeyID: newKey.ID, CreatedAt: time.Now().Unix(), KeepOldKey: keepOld,
	}); err == nil {
		b.deleteWALQuietly(ctx, s, walID)
		walID = id
	}

	newCfg := *cfg
	newCfg.AdminAPIKey = newValue
	newCfg.AdminAPIKeyID = newKey.ID
	newCfg.AdminAPIKeyExpiresAt = newKey.ExpiresAt
	newCfg.AdminAPIKeyCreatedAt = newKey.CreatedAt
	newCfg.AdminAPIKeyCreatedByEngine = true
	newClient := b.buildClient(newCfg.clientSettings())

	if err := verifyNewAdminKey(ctx, newClient, newKey.ID); err != nil {
		b.discardNewAdminKey(ctx, s, oldClient, newKey.ID, walID)
		return nil, fmt.Errorf("rotate admin key: the new key did not authenticate: %w", err)
	}

	now := time.Now().UTC().Truncate(time.Second)
	newCfg.LastRotated = now
	newCfg.KeySetAt = now
	if oldKeyID != "" && !keepOld {
		newCfg.PendingKeyDeletions = appendUnique(newCfg.PendingKeyDeletions, oldKeyID)
	}
	if err := putConfig(ctx, s, &newCfg); err != nil {
		b.discardNewAdminKey(ctx, s, oldClient, newKey.ID, walID)
		return nil, fmt.Errorf("rotate admin key: persist new key: %w", err)
	}
	b.resetClient()

	// From here the rotation has happened; the old key's deletion is retried
	// from the periodic function until it succeeds.
	result := &rotationResult{KeyID: newKey.ID, LastRotated: now, OldKeyKept: keepOld && oldKeyID != "", OldKeyID: oldKeyID}
	b.deleteTwinAdminKeys(ctx, newClient, name, newKey.ID)
	if err := b.deletePendingAdminKeys(ctx, s, newClient, &newCfg); err != nil {
		result.OldKeyPending = true
		b.Logger().Warn("old admin key not deleted yet; will retry", "admin_api_key_id", oldKeyID, "error", err)
	}
	b.deleteWALQuietly(ctx, s, walID)
	b.Logger().Info("admin key rotated", "admin_api_key_id", newKey.ID, "old_admin_api_key_id", oldKeyID, "old_key_kept", result.OldKeyKept)
	return result, nil
}

func verifyNewAdminKey(ctx context.Context, c adminClient, keyID string) error {
	var err error
	for i := 0; i < verifyAttempts; i++ {
		if _, err = c.GetAdminAPIKey(ctx, keyID); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(verifyBackoff << i):
		}
	}
	return err
}

// discardNewAdminKey undoes a rotation that failed before it was persisted.
// If the delete fails the WAL entry stays and rollback retries it.
func (b *backend) discardNewAdminKey(ctx context.Context, s logical.Storage, oldClient adminClient, newKeyID, walID string) {
	if err := oldClient.DeleteAdminAPIKey(ctx, newKeyID); err != nil && !isNotFound(err) {
		b.Logger().Warn("could not delete the unused new admin key; rollback will retry", "admin_api_key_id", newKeyID, "error", err)
		return
	}
	b.deleteWALQuietly(ctx, s, walID)
}

// deletePendingAdminKeys deletes old keys recorded in cfg, persisting the
// shrinking list. Caller holds configMu.
func (b *backend) deletePendingAdminKeys(ctx context.Context, s logical.Storage, c adminClient, cfg *openaiConfig) error {
	if len(cfg.PendingKeyDeletions) == 0 {
		return nil
	}
	var remaining []string
	var firstErr error
	for _, id := range cfg.PendingKeyDeletions {
		if id == cfg.AdminAPIKeyID {
			continue // never delete the key in use
		}
		if err := c.DeleteAdminAPIKey(ctx, id); err != nil && !isNotFound(err) {
			remaining = append(remaining, id)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	cfg.PendingKeyDeletions = remaining
	if err := putConfig(ctx, s, cfg); err != nil {
		return err
	}
	return firstErr
}

// rotatedKeyName says which Vault mount owns a key, for humans in OpenAI's console.
func rotatedKeyName(mountLabel string) string {
	suffix, err := base62.Random(6)
	if err != nil {
		suffix = "x"
	}
	label := sanitizeName(mountLabel)
	if label == "" {
		label = "openai"
	}
	return fmt.Sprintf("vault-%s-rotated-%d-%s", label, time.Now().Unix(), suffix)
}

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
