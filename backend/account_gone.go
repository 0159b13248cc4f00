package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// When is a service account gone? Revocation, rollback and tidy all ask
// after a delete fails, and all must answer alike, because a wrong "gone"
// reports a live key revoked and forgets it.
//
//   - 404 from the delete: OpenAI answers 404 both for a missing account and
//     for a project the admin key cannot see (another organization, a wrong
//     base_url, a key from elsewhere). Only the first is "gone": the project is
//     fetched, and only if it answers does the 404 count.
//   - 400 from the delete: how OpenAI refuses calls on an archived project's
//     service accounts (ADMIN-API.md). OpenAI documents archived projects as
//     "cannot be used or updated", and offers no API to unarchive one, so the
//     project's keys no longer authenticate: the account is treated as gone
//     once the project itself says it is archived. Unconfirmed: whether a
//     project restored by OpenAI support gets its service-account keys back;
//     each key still expires at OpenAI at the end of its lease's lifetime.
//     Every other 400 stays a failure.

// errProjectNotVisible: the project of a recorded account answers 404 to the
// admin key. The account may well be alive in a project this key cannot see.
var errProjectNotVisible = errors.New("not visible to the admin key: wrong organization_id or base_url in config, or an admin key from another organization?")

// confirmAccountGone settles a failed service-account delete: gone is true
// when OpenAI no longer has the account (or its project is archived); else
// err says why it may still exist. A nil deleteErr is gone.
func (b *backend) confirmAccountGone(ctx context.Context, client adminClient, projectID, saID string, deleteErr error) (bool, error) {
	if deleteErr == nil {
		return true, nil
	}
	active, gone, err := b.projectAfterFailure(ctx, client, projectID, deleteErr)
	switch {
	case gone:
		return true, nil
	case active && isNotFound(deleteErr):
		return true, nil // the project answers, so the 404 was the account's
	case err != nil:
		return false, err // callers name the account
	default:
		return false, deleteErr
	}
}

// confirmProjectGone settles a failed call on a project's service accounts
// other than a delete (a listing): gone is true when the project is archived.
func (b *backend) confirmProjectGone(ctx context.Context, client adminClient, projectID string, callErr error) (bool, error) {
	if callErr == nil {
		return false, nil
	}
	_, gone, err := b.projectAfterFailure(ctx, client, projectID, callErr)
	if gone {
		return true, nil
	}
	if err == nil {
		err = callErr
	}
	return false, err
}

// projectAfterFailure fetches the project after a service-account call failed with
// callErr. OpenAI has no API that deletes a project (only archiving), so a
// 404 for the project means this admin key cannot see it, never "gone".
func (b *backend) projectAfterFailure(ctx context.Context, client adminClient, projectID string, callErr error) (active, gone bool, err error) {
	if !isNotFound(callErr) && !mayBeArchivedProjectRefusal(callErr) {
		return false, false, callErr
	}
	p, err := client.GetProject(ctx, projectID)
	switch {
	case isNotFound(err):
		b.warnOnce("invisible:"+projectID, "project of issued keys is not visible to the admin key; their revocation waits until config points at the right organization",
			"project_id", projectID)
		return false, false, fmt.Errorf("project %s %w", projectID, errProjectNotVisible)
	case err != nil:
		return false, false, fmt.Errorf("%w; checking project %s failed: %w", callErr, projectID, err)
	case projectArchived(p):
		b.warnOnce("archived:"+projectID, "project is archived: OpenAI refuses calls on its service accounts and its keys can no longer be used; treating its accounts as gone",
			"project_id", projectID)
		return false, true, nil
	default:
		return true, false, nil
	}
}

// onceLogged remembers, per backend, which conditions were already logged,
// so a state that lasts (an archived project, a key nobody can rotate) is
// logged once rather than on every one-minute tick.
var onceLogged sync.Map // struct{b *backend; key string} -> struct{}

func (b *backend) warnOnce(key, msg string, args ...interface{}) {
	if _, seen := onceLogged.LoadOrStore(onceKey{b, key}, struct{}{}); seen {
		b.Logger().Debug(msg, args...)
		return
	}
	b.Logger().Warn(msg, args...)
}

// forgetWarning lets a condition that cleared be logged again if it returns.
func (b *backend) forgetWarning(key string) { onceLogged.Delete(onceKey{b, key}) }

type onceKey struct {
	b   *backend
	key string
}
