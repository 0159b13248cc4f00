package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
)

// One rotation of a static role's key, the deletion of its previous key at
// the end of the overlap, and who drives the schedule (the engine's
// periodic function on Community Edition, Vault's rotation manager on
// Enterprise).
//
// A rotation is, under the role's lock:
//  1. delete a previous key still live (only a rotation ahead of schedule
//     finds one): the account never holds more than two of the engine's keys;
//  2. write a WAL entry naming the new key (unique token);
//  3. create the key on the account (expiry: next rotation + overlap + grace);
//  4. store it as current, the old current becoming previous until overlap
//     ends; this put is the commit point;
//  5. delete twins of a retried create, then the WAL entry.
//
// A crash before 4 leaves the WAL entry, whose rollback deletes the new key
// by name: the stored key is untouched and keeps working. A crash after 4
// rolls forward: the stored key is kept and only twins are deleted.

var errStaticRoleNotFound = errors.New("static role not found")

// staticKeyNameBase is the template part of a rotated key's name.
func staticKeyNameBase(role string) string { return "vault-static-" + role }

// staticAccountNameBase names an engine-owned static account.
func staticAccountNameBase(role string) string { return "vault-static-" + role }

// defaultStaticNameTemplate renders staticAccountNameBase: the name the
// engine's account gets unless the role's name_template says otherwise.
const defaultStaticNameTemplate = `vault-static-{{ .RoleName }}`

// rotateStaticRole rotates the role's key now.
func (b *backend) rotateStaticRole(ctx context.Context, s logical.Storage, name string) (*staticRole, error) {
	unlock := b.lockStaticRole(name)
	defer unlock()
	return b.rotateStaticRoleLocked(ctx, s, name)
}

func (b *backend) rotateStaticRoleLocked(ctx context.Context, s logical.Storage, name string) (_ *staticRole, err error) {
	defer func() {
		if !errors.Is(err, errStaticRoleNotFound) {
			b.metrics.staticRotation(name, err)
		}
	}()
	role, err := getStaticRole(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return nil, errStaticRoleNotFound
	}
	client, err := b.getClient(ctx, s)
	if err != nil {
		return nil, err
	}
	log := b.Logger().With("static_role", name, "service_account_id", role.ServiceAccountID)

	// 1. At most two of the engine's keys are ever live: a rotation ahead
	// of schedule ends the previous key's overlap early rather than make a
	// third. If it cannot be deleted, nothing is created.
	if prev := role.Previous; prev != nil {
		if err := b.deletePreviousStaticKey(ctx, s, client, name, role); err != nil {
			return nil, fmt.Errorf("previous key %s could not be deleted, so no new key was made (the current one keeps working): %w", prev.ID, err)
		}
	}

	// 2.
	keyName, token, err := uniqueName(staticKeyNameBase(name))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	life := role.keyLifetime(now)
	walID, err := framework.PutWAL(ctx, s, walKindStaticKey, &walStaticKey{
		Role: name, ProjectID: role.ProjectID, AccountID: role.ServiceAccountID,
		KeyName: keyName, Token: token, CreatedAt: now.Unix(), ExpiresAt: now.Add(life).Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("write WAL entry: %w", err)
	}
	crashpoint(b.Logger(), "static.after_wal")

	// 3.
	cctx, cancel := context.WithTimeout(ctx, b.createTimeLimit())
	k, err := client.CreateServiceAccountKey(cctx, role.ProjectID, role.ServiceAccountID, keyParams{
		Name: keyName, Scopes: role.Scopes, ExpiresInSeconds: int64(life.Seconds()),
	})
	cancel()
	if err != nil {
		if !mayHaveCreated(err) {
			b.deleteWALQuietly(ctx, s, walID)
		}
		// An ambiguous failure leaves the entry: rollback deletes the key
		// by name if one was made.
		return nil, fmt.Errorf("create key on service account %s: %w", role.ServiceAccountID, err)
	}
	crashpoint(b.Logger(), "static.after_create")
	newKey := &staticKey{ID: k.ID, Name: keyName, Value: k.Value, ExpiresAt: k.ExpiresAt}
	// The ledger entry before the commit: a key that ever worked is in it.
	if err := b.recordStaticKey(ctx, s, name, role, newKey, k.Value, now); err != nil {
		b.abandonStaticKey(ctx, s, client, role, k, walID)
		return nil, fmt.Errorf("record the new key in the ledger: %w", err)
	}

	// 4. The commit point.
	old := role.Current
	if old != nil {
		old.Value = "" // a previous key's value is never served again
		old.EndsAt = now.Add(role.Overlap)
	}
	role.Current = newKey
	role.Previous = old
	role.LastRotated = now
	if err := putStaticRole(ctx, s, name, role); err != nil {
		b.abandonStaticKey(ctx, s, client, role, k, walID)
		return nil, fmt.Errorf("store the new key: %w", err)
	}
	crashpoint(b.Logger(), "static.after_store")

	// 5. A create retried after a lost response may have made a twin.
	settled := true
	if k.EarlierAttemptMayHaveCreated {
		if _, err := b.deleteStaticKeysNamed(ctx, s, client, role.ProjectID, role.ServiceAccountID, token, map[string]bool{k.ID: true}); err != nil {
			log.Warn("could not delete a twin key of a retried create; rollback retries", "error", err)
			settled = false
		}
	}
	if settled {
		b.deleteWALQuietly(ctx, s, walID)
	}
	log.Info("static role key rotated", "api_key_id", k.ID, "previous_api_key_id", staticKeyID(old))
	b.forgetWarning("static-rotate:" + name)

	// No overlap: the old key goes at once.
	if old != nil && role.Overlap == 0 {
		if err := b.deletePreviousStaticKey(ctx, s, client, name, role); err != nil {
			log.Warn("previous key could not be deleted; retried every minute", "api_key_id", old.ID, "error", err)
		}
	}
	return role, nil
}

// abandonStaticKey deletes a key the role never stored (nobody can use it);
// if that fails, or a twin may exist, the WAL entry stays for rollback.
func (b *backend) abandonStaticKey(ctx context.Context, s logical.Storage, client adminClient, role *staticRole, k *createdKey, walID string) {
	derr := client.DeleteAPIKey(ctx, role.ProjectID, k.ID)
	if derr != nil && !isNotFound(derr) {
		return
	}
	b.endStaticKey(ctx, s, k.ID, revokedByRollback)
	if !k.EarlierAttemptMayHaveCreated {
		b.deleteWALQuietly(ctx, s, walID)
	}
}

func staticKeyID(k *staticKey) string {
	if k == nil {
		return ""
	}
	return k.ID
}

// deletePreviousStaticKey deletes role.Previous at OpenAI and forgets it.
// Called with the role's lock held.
func (b *backend) deletePreviousStaticKey(ctx context.Context, s logical.Storage, client adminClient, name string, role *staticRole) error {
	prev := role.Previous
	if err := client.DeleteAPIKey(ctx, role.ProjectID, prev.ID); err != nil && !isNotFound(err) {
		return err
	}
	crashpoint(b.Logger(), "static.after_previous_delete")
	role.Previous = nil
	if err := putStaticRole(ctx, s, name, role); err != nil {
		// Still stored: the next try deletes it again (404 counts as done).
		role.Previous = prev
		return fmt.Errorf("forget deleted previous key: %w", err)
	}
	b.endStaticKey(ctx, s, prev.ID, endedByRotation)
	b.Logger().Info("static role's previous key deleted", "static_role", name, "api_key_id", prev.ID)
	return nil
}

// staticTickSlack: Vault's tick comes once a minute with some jitter, so a
// rotation that falls due a moment after a tick would wait a whole extra
// minute (a 1m period would rotate every 2m). A tick this close before the
// due time rotates instead; readers were told ttl, and re-read at most this
// much early.
const staticTickSlack = 15 * time.Second

// staticPeriodic runs on the active node's tick: ends overlaps that are due
// (failed deletes are retried here every minute), and rotates roles that are
// due unless Vault's rotation manager owns their schedule. A role without a
// key (its first rotation failed) is always due.
func (b *backend) staticPeriodic(ctx context.Context, s logical.Storage) error {
	names, err := s.List(ctx, staticRoleStoragePrefix)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return nil
	}
	var client adminClient
	for _, name := range names {
		role, err := getStaticRole(ctx, s, name)
		if err != nil || role == nil {
			continue
		}
		now := time.Now()
		if role.Previous != nil && !now.Before(role.Previous.EndsAt) {
			if client == nil {
				if client, err = b.getClient(ctx, s); err != nil {
					return err
				}
			}
			b.endStaticOverlap(ctx, s, client, name)
		}
		// A scheduled rotation never cuts a previous key's overlap short
		// (only a rotation asked for by hand does): it waits for the overlap.
		overlapOver := role.Previous == nil || !now.Before(role.Previous.EndsAt)
		due := role.Current == nil ||
			(!role.RotationManagedByVault && overlapOver && !now.Before(role.nextRotation().Add(-staticTickSlack)))
		if !due {
			continue
		}
		if _, err := b.rotateStaticRole(ctx, s, name); err != nil && !errors.Is(err, errStaticRoleNotFound) {
			b.warnOnce("static-rotate:"+name, "scheduled static role rotation failed; retried every minute (the current key keeps working until its expiry)",
				"static_role", name, "error", err)
		}
	}
	return nil
}

// endStaticOverlap deletes the role's previous key if its overlap is over,
// re-reading the role under its lock (a rotation may have run meanwhile).
func (b *backend) endStaticOverlap(ctx context.Context, s logical.Storage, client adminClient, name string) {
	unlock := b.lockStaticRole(name)
	defer unlock()
	role, err := getStaticRole(ctx, s, name)
	if err != nil || role == nil || role.Previous == nil || time.Now().Before(role.Previous.EndsAt) {
		return
	}
	if err := b.deletePreviousStaticKey(ctx, s, client, name, role); err != nil {
		b.warnOnce("static-prev:"+name+":"+role.Previous.ID, "static role's previous key could not be deleted; retried every minute",
			"static_role", name, "api_key_id", role.Previous.ID, "error", err)
	}
}

// registerStaticRotation hands the role's schedule to Vault's rotation
// manager where it exists (Enterprise) and reports whether it did; on
// Community Edition, which refuses, staticPeriodic drives it. The job's
// path is the role's, which rotateCredential recognises.
func (b *backend) registerStaticRotation(ctx context.Context, mount, name string, r *staticRole) (bool, error) {
	_, err := b.System().RegisterRotationJob(ctx, &rotation.RotationJobConfigureRequest{
		Name:             "openai-static-" + name,
		MountPoint:       mount,
		ReqPath:          staticRoleStoragePrefix + name,
		RotationSchedule: r.Rotation.RotationSchedule,
		RotationWindow:   r.Rotation.RotationWindow,
		RotationPeriod:   r.Rotation.RotationPeriod,
		RotationPolicy:   r.Rotation.RotationPolicy,
	})
	if err == nil {
		return true, nil
	}
	if isRotationManagerUnsupported(err) {
		return false, nil
	}
	return false, err
}

func (b *backend) deregisterStaticRotation(ctx context.Context, mount, name string) error {
	err := b.System().DeregisterRotationJob(ctx, &rotation.RotationJobDeregisterRequest{MountPoint: mount, ReqPath: staticRoleStoragePrefix + name})
	if err != nil && !isRotationManagerUnsupported(err) {
		return err
	}
	return nil
}

// staticRoleFromRotationPath names the static role a rotation-manager call
// is for, or "" for the admin key's own job.
func staticRoleFromRotationPath(path string) string {
	name, ok := strings.CutPrefix(path, staticRoleStoragePrefix)
	if !ok {
		return ""
	}
	return strings.TrimSuffix(name, "/rotate")
}
