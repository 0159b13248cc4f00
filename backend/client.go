package backend

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
)

// adminClient is the seam between the engine and OpenAI's Admin API. The
// production implementation is sdkClient; tests can wrap it to inject faults
// that the fake cannot express (for example a storage failure between calls).
type adminClient interface {
	GetProject(ctx context.Context, projectID string) (*project, error)
	CreateServiceAccount(ctx context.Context, projectID, name string, expiresInSeconds int64) (*serviceAccountKey, error)
	DeleteServiceAccount(ctx context.Context, projectID, serviceAccountID string) error
	// ListServiceAccounts calls fn for every account in the project, paging
	// as needed, until fn returns false.
	ListServiceAccounts(ctx context.Context, projectID string, fn func(serviceAccount) bool) error

	// Scoped keys and keys whose expiry follows their lease (client_keys.go).
	CreateBareServiceAccount(ctx context.Context, projectID, name string) (*createdAccount, error)
	CreateServiceAccountKey(ctx context.Context, projectID, serviceAccountID string, p keyParams) (*createdKey, error)
	UpdateAPIKey(ctx context.Context, projectID, keyID string, u keyUpdate) (*apiKeyState, error)
	DeleteAPIKey(ctx context.Context, projectID, keyID string) error
	// ListProjectAPIKeys: static roles find their keys by name (static_client.go).
	ListProjectAPIKeys(ctx context.Context, projectID string, fn func(projectAPIKey) bool) error

	// Usage and cost reports for a batch of keys (client_usage.go).
	CompletionsUsage(ctx context.Context, q usageQuery) (*usageReport[keyUsage], error)
	Costs(ctx context.Context, q usageQuery) (*usageReport[keyCost], error)

	ListAdminAPIKeys(ctx context.Context, fn func(adminAPIKey) bool) error
	GetAdminAPIKey(ctx context.Context, keyID string) (*adminAPIKey, error)
	CreateAdminAPIKey(ctx context.Context, name string, expiresInSeconds int64) (*adminAPIKey, string, error)
	DeleteAdminAPIKey(ctx context.Context, keyID string) error
}

type project struct {
	ID     string
	Name   string
	Status string
}

type serviceAccount struct {
	ID        string
	Name      string
	CreatedAt int64
}

// serviceAccountKey is a freshly created account with its one-time key value.
type serviceAccountKey struct {
	serviceAccount
	KeyID        string
	KeyValue     string
	KeyExpiresAt int64
	// Attempts is how many HTTP attempts the create took.
	Attempts int
	// EarlierAttemptMayHaveCreated is set when an attempt before the one
	// that succeeded ended ambiguously (no answer, 5xx, 408, 409): it may
	// have created a twin whose response was lost. Refused attempts (429 or
	// another 4xx) created nothing and do not set it.
	EarlierAttemptMayHaveCreated bool
}

type adminAPIKey struct {
	ID            string
	Name          string
	RedactedValue string
	CreatedAt     int64
	ExpiresAt     int64
}

// clientSettings is everything needed to build an sdkClient.
type clientSettings struct {
	BaseURL        string
	AdminAPIKey    string
	OrganizationID string
	RequestTimeout time.Duration
	// MaxRetries caps the retries of one call; negative means no cap other
	// than RetryBudget (the default, see config_retry.go).
	MaxRetries int
	// RetryBudget bounds how long one call keeps starting new attempts: a
	// call ends at most RetryBudget plus one RequestTimeout after it began.
	RetryBudget time.Duration
}

// deleteMinRetries is the retry floor for deleting a service account.
// Deletes are idempotent (404 = gone) and run where nobody waits on them:
// revocation, rollback, tidy. A revoke that fails goes back to Vault's
// expiration manager, whose next attempt is 10-30s away and which marks the
// lease irrevocable after six, so riding out throttling here is what lets
// revocation converge on its own. Eleven attempts at 30% throttling leave a
// ~2e-6 chance of failing; backoff (0.5s doubling to 8s, or Retry-After up to
// 2m) stays bounded by the retry budget and the caller's context. It only
// matters when max_retries is set lower: unset, every call's retries are
// bounded by the retry budget alone.
const deleteMinRetries = 10

// maxResponseBytes caps what we read from OpenAI: a list page of 100 objects
// is a few tens of kilobytes, so anything near this is hostile or broken.
const maxResponseBytes = 4 << 20

// listPageSize is the largest page the Admin API serves.
const listPageSize = 100

// uncappedRetries is the SDK's retry count when max_retries is not set: a
// backstop only, as the retry budget ends the call long before.
const uncappedRetries = 1000

type sdkClient struct {
	api           openai.Client
	deleteRetries int
	budget        time.Duration
	// callLimit bounds a whole create: the retry budget plus one attempt
	// that starts just before it runs out.
	callLimit time.Duration
}

func newSDKClient(s clientSettings) *sdkClient {
	transport := cleanhttp.DefaultPooledTransport()
	// Issue bursts reuse connections instead of opening one per request.
	transport.MaxIdleConnsPerHost = 256
	httpClient := &http.Client{Transport: cappedBodyTransport{transport}}

	opts := []option.RequestOption{
		option.WithHTTPClient(httpClient),
		option.WithBaseURL(s.BaseURL),
		option.WithAdminAPIKey(s.AdminAPIKey),
		// openai.NewClient also reads OPENAI_* from the process environment;
		// neutralise everything it could have picked up so only config counts.
		option.WithAPIKey(""),
		option.WithHeaderDel("OpenAI-Project"),
		option.WithHeaderDel("OpenAI-Organization"),
		option.WithMaxRetries(sdkRetries(s.MaxRetries)),
		option.WithRequestTimeout(s.RequestTimeout),
	}
	if s.OrganizationID != "" {
		opts = append(opts, option.WithOrganization(s.OrganizationID))
	}
	budget := s.RetryBudget
	if budget <= 0 {
		budget = defaultRetryBudget
	}
	return &sdkClient{
		api:           openai.NewClient(opts...),
		deleteRetries: deleteRetries(s.MaxRetries, deleteMinRetries),
		budget:        budget,
		callLimit:     budget + s.RequestTimeout,
	}
}

// deleteRetries is the retries of a service-account delete: max_retries as
// it applies, but at least floor.
func deleteRetries(maxRetries, floor int) int {
	return max(sdkRetries(maxRetries), floor)
}

func sdkRetries(maxRetries int) int {
	if maxRetries < 0 {
		return uncappedRetries
	}
	return maxRetries
}

// worstCaseCall is the longest one create can take under these settings:
// the retry budget, plus one attempt begun just before it ran out.
func (s clientSettings) worstCaseCall() time.Duration {
	budget := s.RetryBudget
	if budget <= 0 {
		budget = defaultRetryBudget
	}
	return budget + s.RequestTimeout
}

// cappedBodyTransport bounds every response body the SDK reads.
type cappedBodyTransport struct{ next http.RoundTripper }

func (t cappedBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{r: io.LimitReader(resp.Body, maxResponseBytes), c: resp.Body}
	return resp, nil
}

type cappedBody struct {
	r io.Reader
	c io.Closer
}

func (b *cappedBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *cappedBody) Close() error               { return b.c.Close() }

func (c *sdkClient) GetProject(ctx context.Context, projectID string) (*project, error) {
	g, ctx, done := c.guard(ctx)
	defer done()
	p, err := c.api.Admin.Organization.Projects.Get(ctx, projectID, g.option())
	if err != nil {
		return nil, g.upstreamError("get project", err)
	}
	return &project{ID: p.ID, Name: p.Name, Status: p.Status}, nil
}

func (c *sdkClient) CreateServiceAccount(ctx context.Context, projectID, name string, expiresInSeconds int64) (*serviceAccountKey, error) {
	params := openai.AdminOrganizationProjectServiceAccountNewParams{Name: name}
	if expiresInSeconds > 0 {
		params.ExpiresInSeconds = param.NewOpt(expiresInSeconds)
	}
	g, ctx, done := c.guardCreate(ctx)
	defer done()
	sa, err := c.api.Admin.Organization.Projects.ServiceAccounts.New(ctx, projectID, params, g.option())
	if err != nil {
		return nil, g.createError("create service account", err)
	}
	if sa.ID == "" || sa.APIKey.Value == "" {
		// The account may exist: keep the WAL entry that guards it.
		return nil, &upstreamErr{op: "create service account", cause: errors.New("OpenAI returned no account id or key"), mayHaveCreated: true}
	}
	attempts, earlier := g.outcome()
	return &serviceAccountKey{
		serviceAccount:               serviceAccount{ID: sa.ID, Name: sa.Name, CreatedAt: sa.CreatedAt},
		KeyID:                        sa.APIKey.ID,
		KeyValue:                     sa.APIKey.Value,
		KeyExpiresAt:                 sa.APIKey.ExpiresAt,
		Attempts:                     attempts,
		EarlierAttemptMayHaveCreated: earlier,
	}, nil
}

func (c *sdkClient) DeleteServiceAccount(ctx context.Context, projectID, serviceAccountID string) error {
	g, ctx, done := c.guard(ctx)
	defer done()
	_, err := c.api.Admin.Organization.Projects.ServiceAccounts.Delete(ctx, projectID, serviceAccountID,
		option.WithMaxRetries(c.deleteRetries), g.option())
	return g.upstreamError("delete service account", err)
}

func (c *sdkClient) ListServiceAccounts(ctx context.Context, projectID string, fn func(serviceAccount) bool) error {
	g, ctx, done := c.guard(ctx)
	defer done()
	pager := c.api.Admin.Organization.Projects.ServiceAccounts.ListAutoPaging(ctx, projectID,
		openai.AdminOrganizationProjectServiceAccountListParams{Limit: param.NewOpt[int64](listPageSize)}, g.option())
	for pager.Next() {
		sa := pager.Current()
		if !fn(serviceAccount{ID: sa.ID, Name: sa.Name, CreatedAt: sa.CreatedAt}) {
			return nil
		}
	}
	return g.upstreamError("list service accounts", pager.Err())
}

func (c *sdkClient) ListAdminAPIKeys(ctx context.Context, fn func(adminAPIKey) bool) error {
	g, ctx, done := c.guard(ctx)
	defer done()
	pager := c.api.Admin.Organization.AdminAPIKeys.ListAutoPaging(ctx,
		openai.AdminOrganizationAdminAPIKeyListParams{Limit: param.NewOpt[int64](listPageSize)}, g.option())
	for pager.Next() {
		if !fn(toAdminAPIKey(pager.Current())) {
			return nil
		}
	}
	return g.upstreamError("list admin API keys", pager.Err())
}

func (c *sdkClient) GetAdminAPIKey(ctx context.Context, keyID string) (*adminAPIKey, error) {
	g, ctx, done := c.guard(ctx)
	defer done()
	k, err := c.api.Admin.Organization.AdminAPIKeys.Get(ctx, keyID, g.option())
	if err != nil {
		return nil, g.upstreamError("get admin API key", err)
	}
	key := toAdminAPIKey(*k)
	return &key, nil
}

func (c *sdkClient) CreateAdminAPIKey(ctx context.Context, name string, expiresInSeconds int64) (*adminAPIKey, string, error) {
	params := openai.AdminOrganizationAdminAPIKeyNewParams{Name: name}
	if expiresInSeconds > 0 {
		params.ExpiresInSeconds = param.NewOpt(expiresInSeconds)
	}
	g, ctx, done := c.guardCreate(ctx)
	defer done()
	k, err := c.api.Admin.Organization.AdminAPIKeys.New(ctx, params, g.option())
	if err != nil {
		return nil, "", g.createError("create admin API key", err)
	}
	if k.ID == "" || k.Value == "" {
		return nil, "", &upstreamErr{op: "create admin API key", cause: errors.New("OpenAI returned no key id or value"), mayHaveCreated: true}
	}
	key := toAdminAPIKey(k.AdminAPIKey)
	return &key, k.Value, nil
}

func (c *sdkClient) DeleteAdminAPIKey(ctx context.Context, keyID string) error {
	g, ctx, done := c.guard(ctx)
	defer done()
	_, err := c.api.Admin.Organization.AdminAPIKeys.Delete(ctx, keyID, g.option())
	return g.upstreamError("delete admin API key", err)
}

func toAdminAPIKey(k openai.AdminAPIKey) adminAPIKey {
	return adminAPIKey{ID: k.ID, Name: k.Name, RedactedValue: k.RedactedValue, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt}
}
