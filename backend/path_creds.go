package backend

import (
	"context"
	"errors"
	"fmt"
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
				Type:         framework.TypeDurationSecond,
				Description:  "Requested lease TTL; capped at the role's max_ttl (the response warns when it is).",
				DisplayAttrs: &framework.DisplayAttributes{Name: "TTL"},
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   &framework.PathOperation{Callback: b.pathCredsIssue},
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathCredsIssue},
		},
		HelpSynopsis:    "Issue a short-lived OpenAI API key for a role.",
		HelpDescription: pathCredsHelp,
	}
}

const pathCredsHelp = `
Each read creates a new OpenAI project service account and returns its API
key (api_key) on a renewable lease. Revoking the lease, or letting it expire,
deletes the service account and with it the key. The key also carries an
OpenAI-side expiry equal to the lease's maximum lifetime, so it dies on time
even if Vault cannot revoke it.
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

	client, err := b.getClient(ctx, req.Storage)
	if errors.Is(err, errMissingConfig) {
		return logical.ErrorResponse(err.Error()), nil
	}
	if err != nil {
		return nil, err
	}

	sys := b.System()
	mountMax := sys.MaxLeaseTTL()
	maxTTL := effectiveMaxTTL(mountMax, role.MaxTTL)
	ttl, warnings, err := framework.CalculateTTL(fixedMaxTTL{sys, mountMax}, requested, role.TTL, 0, maxTTL, 0, time.Time{})
	if err != nil {
		return nil, err
	}

	if tmplErr != nil {
		return logical.ErrorResponse("name_template of role %q: %s", roleName, tmplErr), nil
	}
	name, err := tmpl.render(nameTemplateData{RoleName: roleName, DisplayName: req.DisplayName, MountAccessor: req.MountAccessor})
	if err != nil {
		return logical.ErrorResponse("name_template of role %q: %s", roleName, err), nil
	}

	sa, err := b.createServiceAccount(ctx, req.Storage, client, role.ProjectID, roleName, name, maxTTL)
	if fresh := b.clientAfterAuthFailure(ctx, req.Storage, client, err); fresh != nil {
		sa, err = b.createServiceAccount(ctx, req.Storage, fresh, role.ProjectID, roleName, name, maxTTL)
	}
	if err != nil {
		if isClientError(err) {
			return logical.ErrorResponse("issue key for role %q: %s", roleName, err), nil
		}
		return nil, err
	}

	resp := b.Secret(secretAPIKeyType).Response(
		map[string]interface{}{
			"api_key":              sa.KeyValue,
			"api_key_id":           sa.KeyID,
			"service_account_id":   sa.ID,
			"service_account_name": sa.Name,
			"project_id":           role.ProjectID,
		},
		apiKeyInternal{
			ServiceAccountID: sa.ID,
			ProjectID:        role.ProjectID,
			APIKeyID:         sa.KeyID,
			Role:             roleName,
			MaxTTLSeconds:    int64(maxTTL.Seconds()),
		}.toMap(),
	)
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	for _, w := range warnings {
		resp.AddWarning(w)
	}
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

// createServiceAccount makes the one upstream call of an issue, guarded by a
// WAL entry written first: if the process dies, or the response is lost after
// OpenAI created the account, rollback finds the account by name and deletes it.
func (b *backend) createServiceAccount(ctx context.Context, s logical.Storage, client adminClient, projectID, roleName, name string, lifetime time.Duration) (*serviceAccountKey, error) {
	now := time.Now()
	walID, err := framework.PutWAL(ctx, s, walKindServiceAccount, &walServiceAccount{
		ProjectID: projectID,
		Name:      name,
		CreatedAt: now.Unix(),
		ExpiresAt: now.Add(lifetime).Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("write WAL entry: %w", err)
	}

	sa, err := client.CreateServiceAccount(ctx, projectID, name, int64(lifetime.Seconds()))
	if err != nil {
		// A refused request created nothing; anything else may have, and
		// the WAL entry stays for rollback to settle.
		if isClientError(err) {
			b.deleteWALQuietly(ctx, s, walID)
		}
		return nil, err
	}

	if sa.Attempts > 1 {
		// An earlier attempt may have created a twin whose response was
		// lost. Leave an entry that removes every same-named account but
		// this one; rollback settles it once the entry is old enough.
		if _, err := framework.PutWAL(ctx, s, walKindServiceAccount, &walServiceAccount{
			ProjectID: projectID, Name: name, KeepID: sa.ID,
			CreatedAt: now.Unix(), ExpiresAt: now.Add(lifetime).Unix(),
		}); err != nil {
			return nil, fmt.Errorf("write WAL entry: %w", err)
		}
	}

	// The record is written while the WAL entry still guards the account, so
	// every account is always covered by one or the other (see accounts.go).
	if err := putAccountRecord(ctx, s, newAccountRecord(sa, projectID, roleName, now, lifetime)); err != nil {
		return nil, fmt.Errorf("record issued account: %w", err)
	}

	// Only once the WAL entry is gone may the account be handed to a lease;
	// if this delete fails the request fails and rollback removes the account.
	if err := framework.DeleteWAL(ctx, s, walID); err != nil {
		return nil, fmt.Errorf("commit issued key: %w", err)
	}
	return sa, nil
}

func (b *backend) deleteWALQuietly(ctx context.Context, s logical.Storage, walID string) {
	if err := framework.DeleteWAL(ctx, s, walID); err != nil {
		b.Logger().Warn("could not delete WAL entry; rollback will clear it", "wal_id", walID, "error", err)
	}
}
