package backend

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// When the admin key is rotated (the operation itself is rotate_root.go):
// the engine's own schedule, rotation ahead of the key's expiry, and the
// hand-over to Vault Enterprise's rotation manager.

// rotateEarlyFraction: a key with an expiry is rotated once less than this
// fraction of its lifetime remains.
const rotateEarlyFraction = 5

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
	return b.deletePendingAdminKeys(ctx, s, b.buildClient(cfg.clientSettings()), cfg)
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

// rotateCredential is called by Vault Enterprise's rotation manager.
func (b *backend) rotateCredential(ctx context.Context, req *logical.Request) error {
	if name := staticRoleFromRotationPath(req.Path); name != "" {
		_, err := b.rotateStaticRole(ctx, req.Storage, name)
		return err
	}
	_, err := b.rotateRoot(ctx, req.Storage)
	return err
}
