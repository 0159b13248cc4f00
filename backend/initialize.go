package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"
)

// initialize runs when Vault sets the mount up on the node that serves it:
// at unseal, at mount, at a plugin reload, and on the new active node after
// a failover. It starts loading the issuance ledger's index (which the
// live-key caps count from) in the background, so the first issue after a
// failover does not pay for reading every account record itself; requests
// arriving during the load wait for it, as they would have anyway. A failed
// load is logged and left to the first request, which retries it.
func (b *backend) initialize(_ context.Context, req *logical.InitializationRequest) error {
	s := req.Storage
	go func() {
		// Not the request's context: Vault cancels that when Initialize returns.
		if err := b.ledger.ensure(context.Background(), s); err != nil {
			b.Logger().Warn("loading the issuance ledger at start failed; the first request that needs it retries", "error", err)
			return
		}
		b.Logger().Debug("issuance ledger loaded at start")
	}()
	return nil
}
