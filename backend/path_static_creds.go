package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The static-creds/ path: a static role's current key. Not leased, as in
// Vault's database and AWS static roles: the key belongs to the role, not to
// the reader, and ttl tells the reader when to read again.

func pathStaticCreds(b *backend) *framework.Path {
	return &framework.Path{
		Pattern:      "static-creds/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix, OperationSuffix: "static-credentials"},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeLowerCaseString, Description: "Name of the static role.", Required: true},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathStaticCredsRead,
				Responses:    staticCredsResponses(),
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read"},
			},
		},
		HelpSynopsis: "Read a static role's current OpenAI API key.",
		HelpDescription: `Returns the role's current key (api_key) with its id, account and project,
last_vault_rotation (RFC 3339), the role's rotation_period or
rotation_schedule, and ttl: seconds until the next rotation, after which a
reader should read again. The previous key (previous_api_key_id) keeps working
until previous_api_key_ends_at. There is no lease: the key belongs to the
role and is rotated on its schedule, not revoked per reader.`,
	}
}

func (b *backend) pathStaticCredsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if resp := roleNameError(name); resp != nil {
		return resp, nil
	}
	r, err := getStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return logical.ErrorResponse("static role %q not found", name), nil
	}
	if r.Current == nil {
		// The first rotation failed; staticPeriodic retries it.
		return logical.ErrorResponse(
			"static role %q has no key yet: its first rotation failed and is retried every minute (or write static-roles/%s/rotate)", name, name), nil
	}
	ttl := int64(time.Until(r.nextRotation()).Seconds())
	data := map[string]interface{}{
		"api_key":             r.Current.Value,
		"api_key_id":          r.Current.ID,
		"service_account_id":  r.ServiceAccountID,
		"project_id":          r.ProjectID,
		"last_vault_rotation": rfc3339OrEmpty(r.LastRotated, true),
		"ttl":                 max(ttl, 0),
	}
	if r.Rotation.RotationPeriod > 0 {
		data["rotation_period"] = int64(r.Rotation.RotationPeriod.Seconds())
	} else {
		data["rotation_schedule"] = r.Rotation.RotationSchedule
	}
	addPreviousKey(data, r)
	return &logical.Response{Data: data}, nil
}
