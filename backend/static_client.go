package backend

import (
	"context"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/param"
)

// The one Admin API call static roles add: listing a project's keys. A
// rotation's create may have made a key whose response was lost, and the
// only way to find it again is by its name (which carries the rotation's
// unique token) among the project's keys, filtered to the role's account.

// projectAPIKey is a project key as the list shows it (never its value).
type projectAPIKey struct {
	ID        string
	Name      string
	CreatedAt int64
	ExpiresAt int64
	// ServiceAccountID is the owning account; empty for a user's key.
	ServiceAccountID string
}

func (c *sdkClient) ListProjectAPIKeys(ctx context.Context, projectID string, fn func(projectAPIKey) bool) error {
	g, ctx, done := c.guard(ctx)
	defer done()
	pager := c.api.Admin.Organization.Projects.APIKeys.ListAutoPaging(ctx, projectID,
		openai.AdminOrganizationProjectAPIKeyListParams{Limit: param.NewOpt[int64](listPageSize)}, g.option())
	for pager.Next() {
		k := pager.Current()
		pk := projectAPIKey{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt}
		if k.Owner.Type == "service_account" {
			pk.ServiceAccountID = k.Owner.ServiceAccount.ID
		}
		if !fn(pk) {
			return nil
		}
	}
	return g.upstreamError("list project API keys", pager.Err())
}

func (c *instrumentedClient) ListProjectAPIKeys(ctx context.Context, projectID string, fn func(projectAPIKey) bool) error {
	start := time.Now()
	err := c.next.ListProjectAPIKeys(ctx, projectID, fn)
	c.observe("list_project_api_keys", start, err)
	return err
}
