package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-secure-stdlib/base62"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
	"github.com/mitchellh/mapstructure"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const walKindAdminKeyRotation = "admin_key_rotation"

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

// verifyAttempts and verifyBackoff allow for a new key taking a moment to
// work at OpenAI, which its documentation leaves open.
const (
	verifyAttempts = 5
	verifyBackoff  = 250 * time.Millisecond
)

// rotateEarlyFraction: a key with an expiry is rotated once less than this
// fraction of its lifetime remains.
const rotateEarlyFraction = 5

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
func (b *backend) rotateRoot(ctx context.Context, s logical.Storage) (*rotationResult, error) {
	b.configMu.Lock()
	defer b.configMu.Unlock()

	cfg, err := getConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errMissingConfig
	}
	oldClient := b.newClient(cfg.clientSettings())
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
	newClient := b.newClient(newCfg.clientSettings())

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
	client := b.newClient(cfg.clientSettings())

	if entry.NewKeyID != "" && cfg.AdminAPIKeyID == entry.NewKeyID {
		// Persisted before the crash: roll forward.
		if entry.OldKeyID != "" && !entry.KeepOldKey {
			cfg.PendingKeyDeletions = appendUnique(cfg.PendingKeyDeletions, entry.OldKeyID)
		}
		b.deleteTwinAdminKeys(ctx, client, entry.NewKeyName, entry.NewKeyID)
		return b.deletePendingAdminKeys(ctx, s, client, cfg)
	}

	// Not persisted: delete the new key, which nothing uses.
	var doomed []string
	if entry.NewKeyID != "" {
		doomed = []string{entry.NewKeyID}
	} else {
		err := client.ListAdminAPIKeys(ctx, func(k adminAPIKey) bool {
			if k.Name == entry.NewKeyName && k.ID != cfg.AdminAPIKeyID {
				doomed = append(doomed, k.ID)
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("rotation rollback: %w", err)
		}
	}
	for _, id := range doomed {
		if id == cfg.AdminAPIKeyID {
			continue
		}
		if err := client.DeleteAdminAPIKey(ctx, id); err != nil && !isNotFound(err) {
			return fmt.Errorf("rotation rollback: %w", err)
		}
		b.Logger().Info("deleted admin key from an interrupted rotation", "admin_api_key_id", id)
	}
	return nil
}

// deleteTwinAdminKeys removes keys an earlier attempt of a retried create
// made before its response was lost: same unique name, different id.
func (b *backend) deleteTwinAdminKeys(ctx context.Context, c adminClient, name, keepID string) {
	var twins []string
	err := c.ListAdminAPIKeys(ctx, func(k adminAPIKey) bool {
		if k.Name == name && k.ID != keepID {
			twins = append(twins, k.ID)
		}
		return true
	})
	for _, id := range twins {
		if derr := c.DeleteAdminAPIKey(ctx, id); derr != nil && !isNotFound(derr) {
			err = derr
		}
	}
	if err != nil {
		b.Logger().Warn("could not check for duplicate admin keys from a retried create", "name", name, "error", err)
	}
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

// scheduledRotation is when the engine's own schedule (rotation_period or
// rotation_schedule) next rotates, or zero when it has none: none set,
// disable_automated_rotation, or Vault's rotation manager owns it.
func (c *openaiConfig) scheduledRotation() time.Time {
	if c.RotationManagedByVault || c.Rotation.DisableAutomatedRotation {
		return time.Time{}
	}
	base := c.KeySetAt
	if c.LastRotated.After(base) {
		base = c.LastRotated
	}
	switch {
	case c.Rotation.RotationPeriod > 0:
		return base.Add(c.Rotation.RotationPeriod)
	case c.Rotation.RotationSchedule != "":
		if sched, err := rotation.DefaultScheduler.Parse(c.Rotation.RotationSchedule); err == nil {
			return sched.Next(base)
		}
	}
	return time.Time{}
}

// expiryRotation is when a key with an expiry must be rotated so it never
// expires in use: a fifth of its lifetime before it ends. It applies
// whoever owns the schedule, and with disable_automated_rotation, because
// an expired admin key stops every revocation (and rotate-root) at once.
// The lifetime is the key's own, from OpenAI's created_at when known (a
// supplied key with its own expiry too), else from when config got it.
func (c *openaiConfig) expiryRotation() time.Time {
	if c.AdminAPIKeyExpiresAt <= 0 {
		return time.Time{}
	}
	expires := time.Unix(c.AdminAPIKeyExpiresAt, 0)
	start := time.Unix(c.AdminAPIKeyCreatedAt, 0)
	switch {
	case c.AdminAPIKeyCreatedAt > 0:
	case c.AdminAPIKeyCreatedByEngine && c.AdminAPIKeyTTL > 0:
		start = expires.Add(-c.AdminAPIKeyTTL)
	default:
		start = c.KeySetAt
	}
	life := expires.Sub(start)
	if life < 0 {
		life = 0
	}
	return expires.Add(-life / rotateEarlyFraction)
}

// nextRotation is when the engine next rotates on its own, or zero if never.
func (c *openaiConfig) nextRotation() time.Time {
	next, early := c.scheduledRotation(), c.expiryRotation()
	if next.IsZero() || (!early.IsZero() && early.Before(next)) {
		return early
	}
	return next
}

// rotateIfDue runs from PeriodicFunc on the active node: the engine's own
// schedule (idle on Enterprise, where Vault's rotation manager owns it) and,
// always, rotation ahead of the key's expiry. A rotation that fails is
// retried on every tick but logged once per key: the state lasts, and an
// error returned here would be logged by Vault every minute.
func (b *backend) rotateIfDue(ctx context.Context, s logical.Storage) error {
	cfg, err := getConfig(ctx, s)
	if err != nil || cfg == nil {
		return err
	}
	if len(cfg.PendingKeyDeletions) > 0 {
		if err := b.retryPendingDeletions(ctx, s); err != nil {
			b.warnOnce("pending-deletions", "old admin key deletion still failing; retried every minute", "error", err)
		} else {
			b.forgetWarning("pending-deletions")
		}
	}
	now := time.Now()
	sched, early := cfg.scheduledRotation(), cfg.expiryRotation()
	dueSched := !sched.IsZero() && !now.Before(sched)
	dueExpiry := !early.IsZero() && !now.Before(early)
	if !dueSched && !dueExpiry {
		return nil
	}
	res, err := b.rotateRoot(ctx, s)
	if err != nil {
		if dueExpiry {
			b.warnOnce("rotate:"+cfg.AdminAPIKeyID, "the admin key expires soon and the engine cannot rotate it; once it expires no lease can be revoked: write a working admin_api_key to config before then",
				"admin_api_key_id", cfg.AdminAPIKeyID, "expires_at", formatTime(time.Unix(cfg.AdminAPIKeyExpiresAt, 0)), "error", err)
		} else {
			b.warnOnce("rotate:"+cfg.AdminAPIKeyID, "scheduled admin key rotation failed; retried every minute",
				"admin_api_key_id", cfg.AdminAPIKeyID, "error", err)
		}
		return nil
	}
	b.forgetWarning("rotate:" + cfg.AdminAPIKeyID)
	b.Logger().Info("admin key rotated by the engine", "admin_api_key_id", res.KeyID, "ahead_of_expiry", dueExpiry && !dueSched)
	return nil
}

func (b *backend) retryPendingDeletions(ctx context.Context, s logical.Storage) error {
	b.configMu.Lock()
	defer b.configMu.Unlock()
	cfg, err := getConfig(ctx, s)
	if err != nil || cfg == nil {
		return err
	}
	return b.deletePendingAdminKeys(ctx, s, b.newClient(cfg.clientSettings()), cfg)
}

// registerRotation hands the schedule to Vault's rotation manager where it
// exists (Enterprise) and reports whether it did; on Community Edition,
// which refuses, the engine's own PeriodicFunc schedule applies instead.
func (b *backend) registerRotation(ctx context.Context, req *logical.Request, p automatedrotationutil.AutomatedRotationParams) (bool, error) {
	if p.ShouldDeregisterRotationJob() {
		err := b.System().DeregisterRotationJob(ctx, &rotation.RotationJobDeregisterRequest{MountPoint: req.MountPoint, ReqPath: req.Path})
		if err != nil && !isRotationManagerUnsupported(err) {
			return false, err
		}
		return false, nil
	}
	_, err := b.System().RegisterRotationJob(ctx, &rotation.RotationJobConfigureRequest{
		Name:             "openai-admin-key",
		MountPoint:       req.MountPoint,
		ReqPath:          req.Path,
		RotationSchedule: p.RotationSchedule,
		RotationWindow:   p.RotationWindow,
		RotationPeriod:   p.RotationPeriod,
		RotationPolicy:   p.RotationPolicy,
	})
	if err == nil {
		return true, nil
	}
	if isRotationManagerUnsupported(err) {
		return false, nil
	}
	return false, err
}

// isRotationManagerUnsupported matches by message: the error crosses the
// plugin's gRPC boundary and loses its identity on the way. A Vault older
// than this SDK lacks the RPC altogether and answers Unimplemented.
func isRotationManagerUnsupported(err error) bool {
	return err != nil && (errors.Is(err, automatedrotationutil.ErrRotationManagerUnsupported) ||
		strings.Contains(err.Error(), automatedrotationutil.ErrRotationManagerUnsupported.Error()) ||
		status.Code(err) == codes.Unimplemented)
}
