package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The scope probe: OpenAI publishes no list of scope names, so a role's
// scopes are tried once when they are written. The probe creates a bare
// account and a key with the role's scopes in the role's project, then
// deletes the account (and with it the key) whatever happened. A scope
// OpenAI refuses is then a 400 at role write carrying OpenAI's message,
// instead of a failure at every issue.
//
// The probe account is guarded like any issue's: a WAL entry is written
// before the create and its name carries the entry's token, so a crash or a
// failed delete leaves it to rollback. It takes no live-key place and writes
// no account record: it never belongs to a lease.

// probeKeyLifetime is the probe key's OpenAI-side expiry: if every delete
// fails, the key dies on its own within a minute.
const probeKeyLifetime = time.Minute

// probeNameBase is the template part of a probe account's name; the
// engine's token follows it (uniqueName).
func probeNameBase(roleName string) string {
	return "vault-scope-probe-" + roleName
}

// probeScopes makes one scoped key in projectID and deletes it. It answers
// a 400 naming scopes when OpenAI refuses them (or the probe itself), and
// an error when OpenAI could not be asked.
func (b *backend) probeScopes(ctx context.Context, s logical.Storage, projectID, roleName string, scopes []string) (*logical.Response, error) {
	client, err := b.getClient(ctx, s)
	if errors.Is(err, errMissingConfig) {
		return logical.ErrorResponse("scopes: cannot be checked: %s", err), nil
	}
	if err != nil {
		return nil, err
	}
	name, token, err := uniqueName(probeNameBase(roleName))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	walID, err := framework.PutWAL(ctx, s, walKindServiceAccount, &walServiceAccount{
		ProjectID: projectID,
		Name:      name,
		Token:     token,
		CreatedAt: now.Unix(),
		ExpiresAt: now.Add(probeKeyLifetime).Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("write WAL entry: %w", err)
	}

	cctx, cancel := context.WithTimeout(ctx, b.createTimeLimit())
	sa, err := b.createScopedAccount(cctx, ctx, client, projectID, name, keySpec{Scopes: scopes, ExpiresIn: probeKeyLifetime}, "probe.after_bare_account")
	cancel()
	settled := err != nil && !mayHaveCreated(err)
	if err == nil {
		gone := b.deleteUnusedAccount(ctx, client, projectID, sa.ID)
		settled = gone && !sa.EarlierAttemptMayHaveCreated
	}
	if settled {
		b.deleteWALQuietly(ctx, s, walID)
	}
	if err == nil {
		return nil, nil
	}

	list := strings.Join(scopes, ",")
	switch {
	case isThrottled(err):
		return nil, logical.CodedError(http.StatusTooManyRequests,
			fmt.Sprintf("scopes: could not try scopes %s in project %s, OpenAI is rate limiting: retry later: %s", list, projectID, err))
	case isClientError(err):
		// OpenAI's own words say which scope it refused (or why the
		// admin key may not make keys): nothing else knows scope names.
		return logical.ErrorResponse("scopes: OpenAI refused a key with scopes %s in project %s: %s", list, projectID, err), nil
	default:
		return nil, fmt.Errorf("scopes: could not try scopes %s in project %s: %w", list, projectID, err)
	}
}
