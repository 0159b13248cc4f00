package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathCreds(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "creds/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "generate",
			OperationSuffix: "api-key",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeLowerCaseString,
				Description: "Name of the role to issue a key for.",
				Required:    true,
			},
			"ttl": {
				Query:        true, // also read from a GET's query string
				Type:         framework.TypeDurationSecond,
				Description:  "Requested lease TTL; capped at the role's max_ttl (the response warns when it is).",
				DisplayAttrs: &framework.DisplayAttributes{Name: "TTL"},
			},
			"scopes": {
				Query: true, // also read from a GET's query string
				Type:  framework.TypeCommaStringSlice,
				Description: "Narrow the key to these of the role's scopes: a non-empty subset of them. " +
					"Without it the key carries all of the role's scopes. Refused for a role without scopes.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.pathCredsIssue, Responses: credsResponses()},
			// The same issue with a request body; Vault's convention names
			// such a twin operation ...-with-parameters.
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathCredsIssue,
				DisplayAttrs: &framework.DisplayAttributes{OperationSuffix: "api-key-with-parameters"},
				Responses:    credsResponses(),
			},
		},
		HelpSynopsis:    "Issue a short-lived OpenAI API key for a role.",
		HelpDescription: pathCredsHelp,
	}
}

const pathCredsHelp = `
Each read creates a new OpenAI project service account and returns its API
key (api_key) on a renewable lease. Revoking the lease, or letting it expire,
deletes the service account and with it the key. The key also carries an
OpenAI-side expiry: its lease's current end plus config's expiry_grace, moved
on each renewal (role expiry_follows_lease, the default), or else the lease's
maximum lifetime; so it dies on time even if Vault cannot revoke it.

A role with scopes issues keys restricted to them (two OpenAI calls: a bare
account, then its scoped key; one call without scopes). The request's scopes
narrow them to a non-empty subset of the role's; a role without scopes
refuses scopes in a request. The response lists the key's scopes (empty: all
permissions of the account).

The account is named by the role's name_template followed by "-" and a
12-character random token the engine appends (for example
vault-app-token-alice-1732350000-Ab3dE9xZk2Lm), so every name is unique and
crash recovery deletes only the accounts its own create made.

Once max_live_keys keys of the role (or of the whole mount, in config) are
live, issuing is refused with a 400 naming the cap and the live count, until
a lease is revoked or expires.

A 401 or 403 from OpenAI means the engine's admin key is rejected: the error
says so and names config; the requester cannot fix it.

Every issued key gets an entry in the issuance ledger (keys/<api_key_id>):
the requesting token's display name and entity id, this request's id, the
key's ids, scopes, SHA-256 and last 4 characters; never the key itself.
`

func (b *backend) pathCredsIssue(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	roleName := d.Get("name").(string)
	role, tmpl, tmplErr, err := b.issueRole(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return logical.ErrorResponse("name: unknown role %q", roleName), nil
	}
	requested := time.Duration(d.Get("ttl").(int)) * time.Second
	if requested < 0 {
		return logical.ErrorResponse("ttl must not be negative"), nil
	}

	client, cfg, err := b.cachedConfig(ctx, req.Storage)
	if errors.Is(err, errMissingConfig) {
		return logical.ErrorResponse(err.Error()), nil
	}
	if err != nil {
		return nil, err
	}

	rawScopes, scopesGiven := d.GetOk("scopes")
	requestedScopes, _ := rawScopes.([]string)
	scopes, scopeResp := narrowScopes(roleName, role.Scopes, requestedScopes, scopesGiven)
	if scopeResp != nil {
		return scopeResp, nil
	}

	if tmplErr != nil {
		return logical.ErrorResponse("name_template of role %q: %s", roleName, tmplErr), nil
	}
	base, err := tmpl.render(nameTemplateData{RoleName: roleName, DisplayName: req.DisplayName, MountAccessor: req.MountAccessor})
	if err != nil {
		return logical.ErrorResponse("name_template of role %q: %s", roleName, err), nil
	}

	res, capResp, err := b.reserveLiveKey(ctx, req.Storage, roleName, role, cfg)
	if capResp != nil {
		b.metrics.issueFailed(failCap)
		b.Logger().Info("issue refused by a live-key cap", "role", roleName, "project_id", role.ProjectID, "display_name", req.DisplayName)
		return capResp, nil
	}
	if err != nil {
		b.metrics.issueFailed(failStorage)
		return nil, err
	}
	// Released unless the account's record was written (commitCreate).
	defer res.release()

	terms := &issueTerms{sys: b.System(), role: role, requested: requested, scopes: scopes, grace: cfg.expiryGrace()}
	who := issuerOf(req)
	sa, rec, err := b.createServiceAccount(ctx, req.Storage, client, role.ProjectID, roleName, base, terms, who, res)
	if fresh := b.clientAfterAuthFailure(ctx, req.Storage, client, err); fresh != nil {
		sa, rec, err = b.createServiceAccount(ctx, req.Storage, fresh, role.ProjectID, roleName, base, terms, who, res)
	}
	if err != nil {
		cause := issueFailureCause(err)
		b.metrics.issueFailed(cause)
		b.Logger().Warn("issue failed", "role", roleName, "project_id", role.ProjectID, "display_name", req.DisplayName,
			"cause", cause, "error", err)
	}
	switch {
	case isAuthError(err):
		// Not the requester's fault, and nothing they can fix: an operator
		// must replace the admin key. A plain error is a 500, which is what
		// this is for the requester (the engine is misconfigured).
		return nil, fmt.Errorf("issue key for role %q: OpenAI rejected the engine's admin key (HTTP %d): write a working admin_api_key to %sconfig",
			roleName, httpStatus(err), req.MountPoint)
	case isClientError(err):
		return logical.ErrorResponse("issue key for role %q: %s", roleName, err), nil
	case isThrottled(err):
		// Nothing was issued and nothing is wrong with the request: a 429
		// tells the requester (and Vault's API client, which backs off and
		// retries it) to come back later, as config writes do.
		return nil, logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf("issue key for role %q: rate limited by OpenAI, retry later: %s", roleName, err))
	case err != nil:
		return nil, err
	}

	resp := b.Secret(secretAPIKeyType).Response(
		map[string]interface{}{
			"api_key":              sa.KeyValue,
			"api_key_id":           sa.KeyID,
			"service_account_id":   sa.ID,
			"service_account_name": sa.Name,
			"project_id":           role.ProjectID,
			"scopes":               append([]string{}, scopes...),
		},
		apiKeyInternal{
			ServiceAccountID:   sa.ID,
			ProjectID:          role.ProjectID,
			APIKeyID:           sa.KeyID,
			Role:               roleName,
			MaxTTLSeconds:      int64(terms.maxTTL.Seconds()),
			ExpiryFollowsLease: role.expiryFollowsLease() && sa.KeyID != "",
			KeyExpiryCap:       terms.keyExpiryCap,
		}.toMap(),
	)
	resp.Secret.TTL = terms.ttl
	resp.Secret.MaxTTL = terms.maxTTL
	for _, w := range terms.warnings {
		resp.AddWarning(w)
	}
	b.metrics.keyIssued(roleName)
	b.Logger().Info("issued key", append(rec.logFields(), "request_id", req.ID, "ttl_s", int64(terms.ttl.Seconds()),
		"scopes", len(scopes))...)
	return resp, nil
}

// effectiveMaxTTL is the lease's whole lifetime: the role's max_ttl within
// the mount's, and never past what OpenAI accepts as a key expiry.
func effectiveMaxTTL(mountMax, roleMax time.Duration) time.Duration {
	maxTTL := mountMax
	if roleMax > 0 && roleMax < maxTTL {
		maxTTL = roleMax
	}
	if maxTTL > maxKeyLifetime {
		maxTTL = maxKeyLifetime
	}
	return maxTTL
}

// createServiceAccount makes the upstream calls of an issue (one, or two
// with scopes: scoped_create.go), guarded by a WAL entry written first: if
// the process dies, or the response is lost after OpenAI created the account,
// rollback finds the account by the unique token in its name and deletes it.
// base is the template's part of the name. The issue's terms are settled
// after the entry is written (issue_terms.go). The returned record is the
// key's ledger entry, written committed.
func (b *backend) createServiceAccount(ctx context.Context, s logical.Storage, client adminClient, projectID, roleName, base string,
	terms *issueTerms, who ledgerIssuer, res *liveKeyReservation) (*serviceAccountKey, *accountRecord, error) {
	name, token, err := uniqueName(base)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	wal := &walServiceAccount{
		ProjectID: projectID,
		Name:      name,
		Token:     token,
		CreatedAt: now.Unix(),
		ExpiresAt: now.Add(terms.lifetimeBound()).Unix(),
	}
	walID, err := framework.PutWAL(ctx, s, walKindServiceAccount, wal)
	if err != nil {
		return nil, nil, &storageErr{fmt.Errorf("write WAL entry: %w", err)}
	}
	crashpoint(b.Logger(), "issue.after_wal")
	if err := terms.settle(ctx); err != nil {
		b.deleteWALQuietly(ctx, s, walID)
		return nil, nil, err
	}

	// The create must be over before rollback may act on its entry, whatever
	// the request's own deadline: the client bounds it by retry_budget plus
	// one request_timeout, and this caps it below the rollback age too.
	cctx, cancel := context.WithTimeout(ctx, b.createTimeLimit())
	sa, err := b.createAccountWithKey(cctx, ctx, client, projectID, name, terms.spec)
	cancel()
	crashpoint(b.Logger(), "issue.after_create")
	if err != nil {
		// Only when every attempt was refused is it certain that nothing
		// was created; otherwise the entry stays for rollback to settle.
		if !mayHaveCreated(err) {
			b.deleteWALQuietly(ctx, s, walID)
		}
		return nil, nil, err
	}

	if sa.EarlierAttemptMayHaveCreated {
		// An earlier attempt may have created a twin whose response was
		// lost. Leave an entry that removes every account carrying this
		// token but the one issued; rollback settles it once old enough.
		twin := *wal
		twin.KeepID = sa.ID
		if _, err := framework.PutWAL(ctx, s, walKindServiceAccount, &twin); err != nil {
			return nil, nil, &storageErr{fmt.Errorf("write WAL entry: %w", err)}
		}
	}

	rec := newAccountRecord(sa, projectID, roleName, now, terms.maxTTL)
	rec.recordIssue(sa, terms.spec.Scopes, who)
	if err := b.commitCreate(ctx, s, walID, token, rec, res); err != nil {
		return nil, nil, err
	}
	return sa, rec, nil
}

func (b *backend) deleteWALQuietly(ctx context.Context, s logical.Storage, walID string) {
	if err := framework.DeleteWAL(ctx, s, walID); err != nil {
		b.Logger().Warn("could not delete WAL entry; rollback will clear it", "wal_id", walID, "error", err)
	}
}

// createTimeLimit caps a create call below the WAL rollback age, so rollback
// never acts on an entry whose create may still succeed. Factory refuses
// ages too short for any create (backend.go).
func (b *backend) createTimeLimit() time.Duration {
	return max(b.WALRollbackMinAge-createCommitMargin, time.Second)
}
