package backend

import (
	"context"
	"errors"

	"github.com/hashicorp/vault/sdk/logical"
)

// periodicFunc runs on Vault's fixed one-minute tick. Only the node that may
// write (the active node, or a performance primary) acts, so two nodes never
// rotate the same key.
func (b *backend) periodicFunc(ctx context.Context, req *logical.Request) error {
	// These gate themselves: records are local, so they also run on performance secondaries.
	b.periodicTidy(ctx, req.Storage)
	b.periodicPruneLedger(ctx, req.Storage)
	b.enforceBudgets(ctx, req.Storage)
	if !b.WriteSafeReplicationState() {
		return nil
	}
	var errs []error
	if err := b.rotateIfDue(ctx, req.Storage); err != nil {
		errs = append(errs, err)
	}
	if err := b.staticPeriodic(ctx, req.Storage); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
