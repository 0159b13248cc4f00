package backend

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathTidy(b *backend) *framework.Path {
	return &framework.Path{
		Pattern: "tidy$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationVerb:   "tidy",
			OperationSuffix: "service-accounts",
		},
		Fields: map[string]*framework.FieldSchema{
			"dry_run": {
				Type:        framework.TypeBool,
				Description: "Report what would be deleted without deleting anything.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: b.pathTidyWrite, Responses: tidyResponses()},
		},
		HelpSynopsis:    "Delete service accounts this mount issued whose lease can no longer be alive.",
		HelpDescription: pathTidyHelp,
	}
}

const pathTidyHelp = `
The engine keeps a record of every account it issued until the lease is
revoked. Tidy deletes the accounts whose record is older than the lease's
maximum lifetime plus an hour's grace (the lease was lost, forced or marked
irrevocable) and those whose key OpenAI has already expired. It only touches
accounts it has a record of, and only when OpenAI still lists the account
under the recorded name. Accounts named "vault-..." without a record are
counted (untracked_marked) but never deleted: they may belong to another
mount. A static role's account is this mount's while the role exists (never
counted, never deleted); one named vault-static-... whose role is gone is
counted and logged, and left for an operator. The active node also runs this every tidy_interval (config).
`

func (b *backend) pathTidyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if !b.tidyAllowed() {
		return nil, logical.ErrReadOnly
	}
	dryRun := d.Get("dry_run").(bool)
	rep, err := b.tidy(ctx, req.Storage, time.Now(), dryRun, true)
	switch {
	case errors.Is(err, errTidyBusy), errors.Is(err, errMissingConfig):
		return logical.ErrorResponse(err.Error()), nil
	case err != nil:
		return nil, err
	}
	b.Logger().Info("tidy finished", rep.logArgs()...)
	resp := &logical.Response{Data: rep.data()}
	if rep.Incomplete {
		resp.AddWarning("tidy stopped early (" + rep.Reason + "); run it again later")
	}
	return resp, nil
}
