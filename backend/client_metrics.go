package backend

import (
	"context"
	"strconv"
	"time"
)

// instrumentedClient times every call of an adminClient for the upstream
// latency histogram (metrics.go). A decorator, so the client and its error
// classification (client_errors.go) stay as they are; every client the
// engine builds is wrapped (buildClient).
type instrumentedClient struct {
	next adminClient
	m    *metrics
}

// buildClient is the one place clients are built: b.newClient (which
// tests replace) wrapped for metrics.
func (b *backend) buildClient(s clientSettings) adminClient {
	return &instrumentedClient{next: b.newClient(s), m: b.metrics}
}

// statusClass is the histogram's status label: 2xx, 429 (throttling, kept
// apart from other 4xx), 4xx, 5xx, or error (no HTTP answer).
func statusClass(err error) string {
	if err == nil {
		return "2xx"
	}
	s := httpStatus(err)
	switch {
	case s == 0:
		return "error"
	case s == 429:
		return "429"
	default:
		return strconv.Itoa(s/100) + "xx"
	}
}

func (c *instrumentedClient) observe(op string, start time.Time, err error) {
	c.m.upstreamLatency.WithLabelValues(op, statusClass(err)).Observe(time.Since(start).Seconds())
}

func (c *instrumentedClient) GetProject(ctx context.Context, projectID string) (*project, error) {
	start := time.Now()
	p, err := c.next.GetProject(ctx, projectID)
	c.observe("get_project", start, err)
	return p, err
}

func (c *instrumentedClient) CreateServiceAccount(ctx context.Context, projectID, name string, expiresInSeconds int64) (*serviceAccountKey, error) {
	start := time.Now()
	sa, err := c.next.CreateServiceAccount(ctx, projectID, name, expiresInSeconds)
	c.observe("create_service_account", start, err)
	return sa, err
}

func (c *instrumentedClient) DeleteServiceAccount(ctx context.Context, projectID, serviceAccountID string) error {
	start := time.Now()
	err := c.next.DeleteServiceAccount(ctx, projectID, serviceAccountID)
	c.observe("delete_service_account", start, err)
	return err
}

func (c *instrumentedClient) ListServiceAccounts(ctx context.Context, projectID string, fn func(serviceAccount) bool) error {
	start := time.Now()
	err := c.next.ListServiceAccounts(ctx, projectID, fn)
	c.observe("list_service_accounts", start, err)
	return err
}

func (c *instrumentedClient) CreateBareServiceAccount(ctx context.Context, projectID, name string) (*createdAccount, error) {
	start := time.Now()
	a, err := c.next.CreateBareServiceAccount(ctx, projectID, name)
	c.observe("create_bare_service_account", start, err)
	return a, err
}

func (c *instrumentedClient) CreateServiceAccountKey(ctx context.Context, projectID, serviceAccountID string, p keyParams) (*createdKey, error) {
	start := time.Now()
	k, err := c.next.CreateServiceAccountKey(ctx, projectID, serviceAccountID, p)
	c.observe("create_service_account_key", start, err)
	return k, err
}

func (c *instrumentedClient) UpdateAPIKey(ctx context.Context, projectID, keyID string, u keyUpdate) (*apiKeyState, error) {
	start := time.Now()
	st, err := c.next.UpdateAPIKey(ctx, projectID, keyID, u)
	c.observe("update_api_key", start, err)
	return st, err
}

func (c *instrumentedClient) DeleteAPIKey(ctx context.Context, projectID, keyID string) error {
	start := time.Now()
	err := c.next.DeleteAPIKey(ctx, projectID, keyID)
	c.observe("delete_api_key", start, err)
	return err
}

func (c *instrumentedClient) ListAdminAPIKeys(ctx context.Context, fn func(adminAPIKey) bool) error {
	start := time.Now()
	err := c.next.ListAdminAPIKeys(ctx, fn)
	c.observe("list_admin_api_keys", start, err)
	return err
}

func (c *instrumentedClient) GetAdminAPIKey(ctx context.Context, keyID string) (*adminAPIKey, error) {
	start := time.Now()
	k, err := c.next.GetAdminAPIKey(ctx, keyID)
	c.observe("get_admin_api_key", start, err)
	return k, err
}

func (c *instrumentedClient) CreateAdminAPIKey(ctx context.Context, name string, expiresInSeconds int64) (*adminAPIKey, string, error) {
	start := time.Now()
	k, v, err := c.next.CreateAdminAPIKey(ctx, name, expiresInSeconds)
	c.observe("create_admin_api_key", start, err)
	return k, v, err
}

func (c *instrumentedClient) DeleteAdminAPIKey(ctx context.Context, keyID string) error {
	start := time.Now()
	err := c.next.DeleteAdminAPIKey(ctx, keyID)
	c.observe("delete_admin_api_key", start, err)
	return err
}

// The usage reports are timed per query (all its pages), as the engine
// calls them (client_usage.go).
func (c *instrumentedClient) CompletionsUsage(ctx context.Context, q usageQuery) (*usageReport[keyUsage], error) {
	start := time.Now()
	r, err := c.next.CompletionsUsage(ctx, q)
	c.observe("usage_completions", start, err)
	return r, err
}

func (c *instrumentedClient) Costs(ctx context.Context, q usageQuery) (*usageReport[keyCost], error) {
	start := time.Now()
	r, err := c.next.Costs(ctx, q)
	c.observe("costs", start, err)
	return r, err
}
