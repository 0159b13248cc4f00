package backend

import (
	"context"
	"errors"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathConfigRotateRoot(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "config/rotate-root",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "rotate",
			OperationSuffix: "root-credentials",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigRotateRootUpdate,
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				Responses:                   rotateRootResponses(),
			},
		},
		HelpSynopsis:    "Rotate the OpenAI admin API key.",
		HelpDescription: pathConfigRotateRootHelp,
	}
}

const pathConfigRotateRootHelp = `
Creates a new admin API key named after this mount, verifies that it
authenticates, stores it, then deletes the old key AT OPENAI. A crash at any
step is settled by WAL rollback: forward if the new key was stored, back
otherwise. If the old key cannot be deleted yet, its id is kept in config as
pending and deletion is retried periodically. Returns the new admin_api_key_id.

The first rotation deletes the key you wrote to config. If that key is shared
with another mount, Vault cluster or tool, they lose access: write config with
delete_supplied_key_on_rotate=false first, and the supplied key is kept (it
keeps working, and deleting it is then yours to do). Keys created by earlier
rotations are only used by this mount and are always deleted.
`

func (b *backend) pathConfigRotateRootUpdate(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	res, err := b.rotateRoot(ctx, req.Storage)
	switch {
	case errors.Is(err, errMissingConfig), errors.Is(err, errCurrentKeyRejected):
		return logical.ErrorResponse(err.Error()), nil
	case err != nil:
		return nil, err
	}
	resp := &logical.Response{Data: map[string]interface{}{
		"admin_api_key_id": res.KeyID,
		"last_rotated":     formatTime(res.LastRotated),
	}}
	if res.OldKeyKept {
		resp.Data["old_admin_api_key_kept"] = res.OldKeyID
		resp.AddWarning("the old admin key " + res.OldKeyID + " was supplied to config and delete_supplied_key_on_rotate is false: it still works at OpenAI; delete it there once nothing else uses it")
	}
	if res.OldKeyPending {
		resp.AddWarning("the old admin key could not be deleted yet; it is listed in config as pending and deletion is retried periodically")
	}
	return resp, nil
}
