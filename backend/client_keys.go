package backend

import (
	"context"
	"errors"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
)

// The Admin API calls behind scoped keys and keys whose expiry follows their
// lease: a service account created without a key, a key created on it, and
// changing or deleting a project API key by id (ADMIN-API.md). The retry and
// ambiguity rules are the ones of client.go: creates record, per attempt,
// whether anything may have been created; updates and deletes are retried
// within the budget like every other call.

// createdAccount is a service account created without a key
// (create_service_account_only).
type createdAccount struct {
	serviceAccount
	// UnexpectedKeyID is set when OpenAI answered with a key although none
	// was asked for: the account is not bare, and the caller must not use it.
	UnexpectedKeyID string
	Attempts        int
	// EarlierAttemptMayHaveCreated: see serviceAccountKey.
	EarlierAttemptMayHaveCreated bool
}

// keyParams is what a key is created with on an existing service account.
type keyParams struct {
	Name             string
	Scopes           []string
	ExpiresInSeconds int64
}

// createdKey is a freshly created key with its one-time value.
type createdKey struct {
	ID        string
	Value     string
	ExpiresAt int64
	Attempts  int
	// EarlierAttemptMayHaveCreated: an attempt before the successful one
	// ended ambiguously and may have created a twin key on the same account.
	EarlierAttemptMayHaveCreated bool
}

// keyUpdate changes a project API key. At least one of the fields is set:
// OpenAI refuses an empty update.
type keyUpdate struct {
	// ExpiresInSeconds moves the expiry to this many seconds after the
	// request (0: unchanged).
	ExpiresInSeconds int64
	// Scopes replaces the key's scopes when SetScopes is true. OpenAI reads
	// an empty list as "all permissions of the owner", never as "none".
	Scopes    []string
	SetScopes bool
}

// apiKeyState is what OpenAI reports of a key after an update.
type apiKeyState struct {
	ID        string
	ExpiresAt int64
}

func (c *sdkClient) CreateBareServiceAccount(ctx context.Context, projectID, name string) (*createdAccount, error) {
	params := openai.AdminOrganizationProjectServiceAccountNewParams{
		Name:                     name,
		CreateServiceAccountOnly: param.NewOpt(true),
	}
	g, ctx, done := c.guardCreate(ctx)
	defer done()
	sa, err := c.api.Admin.Organization.Projects.ServiceAccounts.New(ctx, projectID, params, g.option())
	if err != nil {
		return nil, g.createError("create service account", err)
	}
	if sa.ID == "" {
		return nil, &upstreamErr{op: "create service account", cause: errors.New("OpenAI returned no account id"), mayHaveCreated: true}
	}
	attempts, earlier := g.outcome()
	return &createdAccount{
		serviceAccount:               serviceAccount{ID: sa.ID, Name: sa.Name, CreatedAt: sa.CreatedAt},
		UnexpectedKeyID:              unexpectedKey(sa.APIKey),
		Attempts:                     attempts,
		EarlierAttemptMayHaveCreated: earlier,
	}, nil
}

// unexpectedKey names the key a bare account should not have: its id, or a
// placeholder when OpenAI sent a value without one.
func unexpectedKey(k openai.AdminOrganizationProjectServiceAccountNewResponseAPIKey) string {
	switch {
	case k.ID != "":
		return k.ID
	case k.Value != "":
		return "(unnamed key)"
	}
	return ""
}

func (c *sdkClient) CreateServiceAccountKey(ctx context.Context, projectID, serviceAccountID string, p keyParams) (*createdKey, error) {
	params := openai.AdminOrganizationProjectServiceAccountAPIKeyNewParams{Scopes: p.Scopes}
	if p.Name != "" {
		params.Name = param.NewOpt(p.Name)
	}
	if p.ExpiresInSeconds > 0 {
		params.ExpiresInSeconds = param.NewOpt(p.ExpiresInSeconds)
	}
	g, ctx, done := c.guardCreate(ctx)
	defer done()
	k, err := c.api.Admin.Organization.Projects.ServiceAccounts.APIKeys.New(ctx, projectID, serviceAccountID, params, g.option())
	if err != nil {
		return nil, g.createError("create service account key", err)
	}
	if k.ID == "" || k.Value == "" {
		return nil, &upstreamErr{op: "create service account key", cause: errors.New("OpenAI returned no key id or value"), mayHaveCreated: true}
	}
	attempts, earlier := g.outcome()
	return &createdKey{ID: k.ID, Value: k.Value, ExpiresAt: k.ExpiresAt, Attempts: attempts, EarlierAttemptMayHaveCreated: earlier}, nil
}

// UpdateAPIKey may be retried freely: an expiry is relative to the request
// that sets it, so a retry sets it again from its own time.
func (c *sdkClient) UpdateAPIKey(ctx context.Context, projectID, keyID string, u keyUpdate) (*apiKeyState, error) {
	params := openai.AdminOrganizationProjectAPIKeyUpdateParams{ExpiresInSeconds: u.ExpiresInSeconds}
	if u.SetScopes {
		// Non-nil even when empty, so the field is sent ("all permissions").
		params.Scopes = append([]string{}, u.Scopes...)
	}
	g, ctx, done := c.guard(ctx)
	defer done()
	k, err := c.api.Admin.Organization.Projects.APIKeys.Update(ctx, projectID, keyID, params, g.option())
	if err != nil {
		return nil, g.upstreamError("update API key", err)
	}
	return &apiKeyState{ID: k.ID, ExpiresAt: k.ExpiresAt}, nil
}

// DeleteAPIKey deletes one key and leaves its service account; 404 when it
// is already gone. Like account deletes it rides out throttling (see
// deleteMinRetries).
func (c *sdkClient) DeleteAPIKey(ctx context.Context, projectID, keyID string) error {
	g, ctx, done := c.guard(ctx)
	defer done()
	_, err := c.api.Admin.Organization.Projects.APIKeys.Delete(ctx, projectID, keyID,
		option.WithMaxRetries(c.deleteRetries), g.option())
	return g.upstreamError("delete API key", err)
}
