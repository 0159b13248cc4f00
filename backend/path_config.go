package backend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathConfig(b *backend) *framework.Path {
	p := &framework.Path{
		Pattern: "config",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"admin_api_key": {
				Type:        framework.TypeString,
				Description: "OpenAI admin API key (sk-admin-...). Required on create; write-only, never returned.",
				DisplayAttrs: &framework.DisplayAttributes{
					Name:      "Admin API key",
					Sensitive: true,
				},
			},
			"admin_api_key_id": {
				Type:         framework.TypeString,
				Description:  "ID of the admin key (key_...). When omitted it is found by matching the key's redacted value in the organization's admin key list.",
				DisplayAttrs: &framework.DisplayAttributes{Name: "Admin API key ID"},
			},
			"organization_id": {
				Type:         framework.TypeString,
				Description:  "Optional organization ID, sent as the OpenAI-Organization header.",
				DisplayAttrs: &framework.DisplayAttributes{Name: "Organization ID"},
			},
			"base_url": {
				Type:         framework.TypeString,
				Description:  "OpenAI API base URL. Must be https unless the host is loopback.",
				Default:      defaultBaseURL,
				DisplayAttrs: &framework.DisplayAttributes{Name: "Base URL"},
			},
			"request_timeout": {
				Type:         framework.TypeDurationSecond,
				Description:  "Timeout of one attempt of an OpenAI call (retries get their own). At most 5m, and retry_budget plus request_timeout must stay below the WAL rollback age (5m by default), so with the default 30s budget at most 4m29s.",
				Default:      int(defaultRequestTimeout.Seconds()),
				DisplayAttrs: &framework.DisplayAttributes{Name: "Request timeout"},
			},
			"max_retries": {
				Type:         framework.TypeInt,
				Description:  "Retries of a failed OpenAI call (429, 408, 409, 5xx, connection errors), honouring Retry-After. 0 to 10.",
				Default:      defaultMaxRetries,
				DisplayAttrs: &framework.DisplayAttributes{Name: "Max retries"},
			},
			"admin_api_key_ttl": {
				Type:         framework.TypeDurationSecond,
				Description:  "Lifetime OpenAI gives admin keys created by rotation (0: no expiry). Such keys are rotated when a fifth of their lifetime remains.",
				DisplayAttrs: &framework.DisplayAttributes{Name: "Admin API key TTL"},
			},
		},
		ExistenceCheck: b.configExistenceCheck,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.CreateOperation: &framework.PathOperation{
				Callback:     b.pathConfigWrite,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "configure"},
				Responses:    configWriteResponses(),
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathConfigWrite,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "configure"},
				Responses:    configWriteResponses(),
			},
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathConfigRead,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "configuration"},
				Responses:    configReadResponses(),
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:     b.pathConfigDelete,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete", OperationSuffix: "configuration"},
				Responses:    configDeleteResponses(),
			},
		},
		HelpSynopsis:    "Configure the OpenAI admin API key and connection.",
		HelpDescription: pathConfigHelp,
	}
	automatedrotationutil.AddAutomatedRotationFields(p.Fields)
	describeRotationFields(p.Fields)
	addSuppliedKeyFields(p.Fields)
	addConfigGuardFields(p.Fields)
	addTidyConfigFields(p.Fields)
	addLedgerConfigFields(p.Fields)
	addLiveKeysConfigFields(p.Fields)
	addExpiryConfigFields(p.Fields)
	addRetryConfigFields(p.Fields)
	return p
}

const pathConfigHelp = `
The engine authenticates to OpenAI's Admin API with an organization admin key.
The key is verified against OpenAI on write (a rejected key is not stored),
stored seal-wrapped, and never returned by read. Updating config with a new
admin_api_key replaces the old one.

Rotation: rotation_period (or rotation_schedule, cron) rotates the admin key
automatically. On Vault Enterprise the schedule is registered with Vault's
rotation manager; on Community Edition the engine runs it itself from its
periodic function on the active node. Whoever owns the schedule, and even
with disable_automated_rotation, the engine rotates a key that has an expiry
when a fifth of its lifetime is left, so it never expires in use. Read shows
admin_api_key_expires_at, last_rotated, next_rotation and any old keys still
pending deletion.

Rotation deletes the old key at OpenAI. A key you supplied may be shared with
another mount, cluster or tool: set delete_supplied_key_on_rotate=false to
keep it (keys the engine created itself are always deleted).

expiry_grace (default 5m) is how long past its lease's current end a key of
a role with expiry_follows_lease stays valid at OpenAI.

Changing base_url or organization_id, or writing an admin key that cannot see
the projects of keys this mount issued, is refused while such keys are live
(they could no longer be revoked), unless force=true. Delete is refused the
same way, and while WAL rollbacks still need the admin key.
`

func (b *backend) configExistenceCheck(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	cfg, err := getConfig(ctx, req.Storage)
	return cfg != nil, err
}

func (b *backend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := getConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return nil, err
	}
	data := map[string]interface{}{
		"admin_api_key_id":            cfg.AdminAPIKeyID,
		"organization_id":             cfg.OrganizationID,
		"base_url":                    cfg.BaseURL,
		"request_timeout":             int64(cfg.RequestTimeout.Seconds()),
		"max_retries":                 cfg.MaxRetries,
		"admin_api_key_ttl":           int64(cfg.AdminAPIKeyTTL.Seconds()),
		"last_rotated":                formatTime(cfg.LastRotated),
		"pending_admin_key_deletions": append([]string{}, cfg.PendingKeyDeletions...),
		"rotation_managed_by":         "engine",
		"next_rotation":               formatTime(cfg.nextRotation()),
	}
	if cfg.RotationManagedByVault {
		data["rotation_managed_by"] = "vault"
	}
	if cfg.AdminAPIKeyExpiresAt > 0 {
		data["admin_api_key_expires_at"] = formatTime(time.Unix(cfg.AdminAPIKeyExpiresAt, 0))
	}
	cfg.Rotation.PopulateAutomatedRotationData(data)
	// The helper emits float seconds; every other duration here is an integer.
	data["rotation_period"] = int64(cfg.Rotation.RotationPeriod.Seconds())
	data["rotation_window"] = int64(cfg.Rotation.RotationWindow.Seconds())
	addSuppliedKeyData(cfg, data)
	addTidyConfigData(cfg, data)
	addLedgerConfigData(cfg, data)
	addLiveKeysConfigData(cfg, data)
	addExpiryConfigData(cfg, data)
	addRetryConfigData(cfg, data)
	return &logical.Response{Data: data}, nil
}

func (b *backend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.configMu.Lock()
	defer b.configMu.Unlock()

	cfg, err := getConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	var old *openaiConfig
	if cfg != nil {
		stored := *cfg
		old = &stored
	} else {
		cfg = &openaiConfig{BaseURL: defaultBaseURL, RequestTimeout: defaultRequestTimeout, MaxRetries: defaultMaxRetries}
	}
	keyChanged := false

	if v, ok := d.GetOk("admin_api_key"); ok {
		key := strings.TrimSpace(v.(string))
		if key == "" {
			return logical.ErrorResponse("admin_api_key must not be empty"), nil
		}
		if !headerSafe(key) {
			return logical.ErrorResponse("admin_api_key is not a valid key: at most %d visible ASCII characters", maxHeaderValue), nil
		}
		if key != cfg.AdminAPIKey {
			keyChanged = true
			cfg.AdminAPIKey = key
		}
	}
	if cfg.AdminAPIKey == "" {
		return logical.ErrorResponse("admin_api_key is required"), nil
	}
	if v, ok := d.GetOk("admin_api_key_id"); ok {
		cfg.AdminAPIKeyID = strings.TrimSpace(v.(string))
		// Not echoed: a key pasted into the wrong field must not come back.
		if id := cfg.AdminAPIKeyID; id != "" && (strings.HasPrefix(id, "sk-") || !openaiIDPattern.MatchString(id)) {
			return logical.ErrorResponse("admin_api_key_id must be a key id such as key_abc123, not the key itself"), nil
		}
	} else if keyChanged {
		cfg.AdminAPIKeyID = "" // the old key's id no longer applies
	}
	if v, ok := d.GetOk("organization_id"); ok {
		cfg.OrganizationID = strings.TrimSpace(v.(string))
		if cfg.OrganizationID != "" && !openaiIDPattern.MatchString(cfg.OrganizationID) {
			return logical.ErrorResponse("organization_id must be an OpenAI organization id such as org-abc123"), nil
		}
	}
	if v, ok := d.GetOk("base_url"); ok || req.Operation == logical.CreateOperation {
		if !ok {
			v = d.Get("base_url")
		}
		u, err := validateBaseURL(v.(string))
		if err != nil {
			return logical.ErrorResponse("base_url: %s", err), nil
		}
		cfg.BaseURL = u
	}
	if v, ok := d.GetOk("request_timeout"); ok {
		t := time.Duration(v.(int)) * time.Second
		if t <= 0 || t > maxRequestTimeout {
			return logical.ErrorResponse("request_timeout must be between 1s and %s", maxRequestTimeout), nil
		}
		cfg.RequestTimeout = t
	}
	if v, ok := d.GetOk("max_retries"); ok {
		n := v.(int)
		if n < 0 || n > maxMaxRetries {
			return logical.ErrorResponse("max_retries must be between 0 and %d", maxMaxRetries), nil
		}
		cfg.MaxRetries = n
	}

	rotationChanged, resp := parseRotationConfig(cfg, d)
	if resp != nil {
		return resp, nil
	}
	if resp := parseTidyConfig(cfg, d); resp != nil {
		return resp, nil
	}
	if resp := parseLedgerConfig(cfg, d); resp != nil {
		return resp, nil
	}
	if resp := parseLiveKeysConfig(cfg, d); resp != nil {
		return resp, nil
	}
	if resp := parseExpiryConfig(cfg, d); resp != nil {
		return resp, nil
	}
	if resp := parseRetryConfig(cfg, d); resp != nil {
		return resp, nil
	}
	parseSuppliedKeyConfig(cfg, d)
	if keyChanged || cfg.KeySetAt.IsZero() {
		cfg.KeySetAt = time.Now().UTC().Truncate(time.Second)
	}
	if keyChanged {
		cfg.AdminAPIKeyCreatedByEngine = false // written by an operator
	}
	if req.MountPoint != "" {
		cfg.MountLabel = strings.Trim(req.MountPoint, "/")
	}

	if resp, err := refuseConfigMove(ctx, req, d, old, cfg); resp != nil || err != nil {
		return resp, err
	}
	if _, ok := d.GetOk("admin_api_key_id"); !ok && old != nil && (old.BaseURL != cfg.BaseURL || old.OrganizationID != cfg.OrganizationID) {
		cfg.AdminAPIKeyID = "" // looked up again where config now points
	}
	client := b.buildClient(cfg.clientSettings())
	if resp, err := b.verifyAdminKey(ctx, cfg, client); resp != nil || err != nil {
		return resp, err
	}
	if resp, err := refuseUnseeingKey(ctx, req, d, old, cfg, client); resp != nil || err != nil {
		return resp, err
	}
	if rotationChanged {
		managed, err := b.registerRotation(ctx, req, cfg.Rotation)
		if err != nil {
			return nil, fmt.Errorf("register rotation with Vault: %w", err)
		}
		cfg.RotationManagedByVault = managed
	}
	if err := putConfig(ctx, req.Storage, cfg); err != nil {
		return nil, err
	}
	b.resetClient()
	return expiryNotice(cfg), nil
}

// upstreamConfigError turns a failed OpenAI call made while checking config
// into what the operator can act on: a rejected key or a refused lookup is
// theirs to fix (400 naming the field), throttling is a 429 "retry later",
// an unreachable base_url a 502 naming it. Other failures stay errors.
func upstreamConfigError(what string, err error) (*logical.Response, error) {
	switch {
	case isAuthError(err):
		return logical.ErrorResponse("admin_api_key was rejected by OpenAI: %s", err), nil
	case isThrottled(err):
		return nil, logical.CodedError(http.StatusTooManyRequests, fmt.Sprintf("%s: rate limited by OpenAI, retry later: %s", what, err))
	case isBadRequest(err), isClientError(err):
		return logical.ErrorResponse("%s: OpenAI refused the request (%s): check admin_api_key_id, organization_id and base_url", what, err), nil
	case isUnreachable(err):
		return nil, logical.CodedError(http.StatusBadGateway, fmt.Sprintf("%s: base_url: %s", what, err))
	default:
		return nil, fmt.Errorf("%s: %w", what, err)
	}
}

func (b *backend) pathConfigDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.configMu.Lock()
	defer b.configMu.Unlock()
	if resp, err := refuseConfigDelete(ctx, req, d); resp != nil || err != nil {
		return resp, err
	}
	if err := req.Storage.Delete(ctx, configStoragePath); err != nil {
		return nil, err
	}
	b.resetClient()
	return nil, nil
}
