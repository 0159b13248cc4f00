package backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
)

const (
	configStoragePath = "config"

	defaultBaseURL        = "https://api.openai.com/v1"
	defaultRequestTimeout = 30 * time.Second
	maxRequestTimeout     = 5 * time.Minute
	defaultMaxRetries     = 4
	maxMaxRetries         = 10
)

// openaiConfig is the mount's connection to OpenAI. It is seal-wrapped.
type openaiConfig struct {
	AdminAPIKey    string        `json:"admin_api_key"`
	AdminAPIKeyID  string        `json:"admin_api_key_id"`
	OrganizationID string        `json:"organization_id,omitempty"`
	BaseURL        string        `json:"base_url"`
	RequestTimeout time.Duration `json:"request_timeout"`
	MaxRetries     int           `json:"max_retries"`

	// MountLabel names the mount in rotated keys' names.
	MountLabel string `json:"mount_label,omitempty"`

	// Root credential lifecycle (see rotation.go).
	AdminAPIKeyTTL         time.Duration                                 `json:"admin_api_key_ttl,omitempty"`
	AdminAPIKeyExpiresAt   int64                                         `json:"admin_api_key_expires_at,omitempty"`
	KeySetAt               time.Time                                     `json:"key_set_at"`
	LastRotated            time.Time                                     `json:"last_rotated"`
	PendingKeyDeletions    []string                                      `json:"pending_key_deletions,omitempty"`
	Rotation               automatedrotationutil.AutomatedRotationParams `json:"rotation"`
	RotationManagedByVault bool                                          `json:"rotation_managed_by_vault,omitempty"`
	// AdminAPIKeyCreatedAt is the current key's creation at OpenAI (0: unknown),
	// so the lifetime of a key with an expiry is known (rotation.go).
	AdminAPIKeyCreatedAt int64 `json:"admin_api_key_created_at,omitempty"`
	// AdminAPIKeyCreatedByEngine: the current key came from a rotation, so
	// nothing outside this mount can be using it (supplied_key.go).
	AdminAPIKeyCreatedByEngine bool `json:"admin_api_key_created_by_engine,omitempty"`
	// KeepSuppliedKeyOnRotate is delete_supplied_key_on_rotate=false, stored
	// inverted so configs from before it existed keep deleting.
	KeepSuppliedKeyOnRotate bool `json:"keep_supplied_key_on_rotate,omitempty"`

	// RetryBudget bounds one call's retries; 0 means defaultRetryBudget (config_retry.go).
	RetryBudget time.Duration `json:"retry_budget,omitempty"`

	// TidyInterval is nil for configs written before it existed (sweep.go).
	TidyInterval *time.Duration `json:"tidy_interval,omitempty"`
}

// clientSettings is what every client built from this config uses (issue,
// revoke, verify, rotation): max_retries as it applies, so a config from
// before retry_budget is governed by the budget from the upgrade on.
func (c *openaiConfig) clientSettings() clientSettings {
	s := clientSettings{
		BaseURL:        c.BaseURL,
		AdminAPIKey:    c.AdminAPIKey,
		OrganizationID: c.OrganizationID,
		RequestTimeout: c.RequestTimeout,
		MaxRetries:     c.MaxRetries,
		RetryBudget:    c.retryBudget(),
	}
	if c.legacyDefaultRetries() {
		s.MaxRetries = maxRetriesUnset
	}
	return s
}

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
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathConfigWrite,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "configure"},
			},
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathConfigRead,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "configuration"},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:     b.pathConfigDelete,
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "delete", OperationSuffix: "configuration"},
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

Changing base_url or organization_id, or writing an admin key that cannot see
the projects of keys this mount issued, is refused while such keys are live
(they could no longer be revoked), unless force=true. Delete is refused the
same way, and while WAL rollbacks still need the admin key.
`

func getConfig(ctx context.Context, s logical.Storage) (*openaiConfig, error) {
	entry, err := s.Get(ctx, configStoragePath)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if entry == nil {
		return nil, nil
	}
	cfg := new(openaiConfig)
	if err := entry.DecodeJSON(cfg); err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	return cfg, nil
}

func putConfig(ctx context.Context, s logical.Storage, cfg *openaiConfig) error {
	entry, err := logical.StorageEntryJSON(configStoragePath, cfg)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}

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
	addRetryConfigData(cfg, data)
	return &logical.Response{Data: data}, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
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
		if id := cfg.AdminAPIKeyID; id != "" && (strings.HasPrefix(id, "sk-") || !projectIDPattern.MatchString(id)) {
			return logical.ErrorResponse("admin_api_key_id must be a key id such as key_abc123, not the key itself"), nil
		}
	} else if keyChanged {
		cfg.AdminAPIKeyID = "" // the old key's id no longer applies
	}
	if v, ok := d.GetOk("organization_id"); ok {
		cfg.OrganizationID = strings.TrimSpace(v.(string))
		if cfg.OrganizationID != "" && !projectIDPattern.MatchString(cfg.OrganizationID) {
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

	if v, ok := d.GetOk("admin_api_key_ttl"); ok {
		ttl := time.Duration(v.(int)) * time.Second
		if ttl != 0 && (ttl < time.Hour || ttl > maxKeyLifetime) {
			return logical.ErrorResponse("admin_api_key_ttl must be 0 or between 1h and %s", maxKeyLifetime), nil
		}
		cfg.AdminAPIKeyTTL = ttl
	}
	rotationChanged := false
	for _, f := range []string{"rotation_period", "rotation_schedule", "rotation_window", "disable_automated_rotation", "rotation_policy"} {
		if _, ok := d.GetOk(f); ok {
			rotationChanged = true
		}
	}
	if rotationChanged {
		if err := cfg.Rotation.ParseAutomatedRotationFields(d); err != nil {
			return logical.ErrorResponse("rotation: %s", err), nil
		}
		if p := cfg.Rotation.RotationPeriod; p < 0 || (p > 0 && p < time.Minute) {
			return logical.ErrorResponse("rotation_period must be 0 (off) or at least 1m"), nil
		}
	}
	if resp := parseTidyConfig(cfg, d); resp != nil {
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
	client := b.newClient(cfg.clientSettings())
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

// expiryNotice tells the operator, when the key has an expiry, that the
// engine will replace it ahead of time, and what happens to the old key:
// a supplied key may be shared, and rotation deletes it by default.
func expiryNotice(cfg *openaiConfig) *logical.Response {
	if cfg.AdminAPIKeyExpiresAt <= 0 {
		return nil
	}
	resp := &logical.Response{}
	msg := fmt.Sprintf("admin_api_key expires at %s; the engine rotates it at %s (a fifth of its lifetime before), whatever the rotation schedule",
		formatTime(time.Unix(cfg.AdminAPIKeyExpiresAt, 0)), formatTime(cfg.expiryRotation()))
	if cfg.deleteOldKeyOnRotate() {
		msg += ", and then deletes it at OpenAI: if it is shared, set delete_supplied_key_on_rotate=false"
	}
	resp.AddWarning(msg)
	return resp
}

// verifyAdminKey proves the key authenticates and pins its id, so a bad key
// is refused at write time rather than on the first issue. Operator mistakes
// come back as 4xx naming the field; only OpenAI's own failures do not.
func (b *backend) verifyAdminKey(ctx context.Context, cfg *openaiConfig, client adminClient) (*logical.Response, error) {
	if cfg.AdminAPIKeyID != "" {
		k, err := client.GetAdminAPIKey(ctx, cfg.AdminAPIKeyID)
		switch {
		case isNotFound(err):
			// Either the id is wrong or there is no Admin API at base_url:
			// the list (which needs no id) tells which.
			if lerr := client.ListAdminAPIKeys(ctx, func(adminAPIKey) bool { return false }); isNotFound(lerr) {
				return noAdminAPIAt(cfg.BaseURL, lerr), nil
			}
			return logical.ErrorResponse("admin_api_key_id %q was not found at OpenAI", cfg.AdminAPIKeyID), nil
		case err != nil:
			return upstreamConfigError("verify admin_api_key", err)
		case !redactedMatches(k.RedactedValue, cfg.AdminAPIKey):
			return logical.ErrorResponse("admin_api_key_id %q belongs to a different key than admin_api_key", cfg.AdminAPIKeyID), nil
		}
		cfg.AdminAPIKeyExpiresAt = k.ExpiresAt
		cfg.AdminAPIKeyCreatedAt = k.CreatedAt
		return nil, nil
	}

	var matches []string
	var found adminAPIKey
	err := client.ListAdminAPIKeys(ctx, func(k adminAPIKey) bool {
		if redactedMatches(k.RedactedValue, cfg.AdminAPIKey) {
			matches = append(matches, k.ID)
			found = k
		}
		return true
	})
	switch {
	case isNotFound(err):
		return noAdminAPIAt(cfg.BaseURL, err), nil
	case err != nil:
		return upstreamConfigError("verify admin_api_key", err)
	case len(matches) == 0:
		return logical.ErrorResponse("admin_api_key authenticated but is not in the organization's admin key list; set admin_api_key_id"), nil
	case len(matches) > 1:
		return logical.ErrorResponse("admin_api_key matches %d admin keys by redacted value (%s); set admin_api_key_id", len(matches), strings.Join(matches, ", ")), nil
	}
	cfg.AdminAPIKeyID = matches[0]
	cfg.AdminAPIKeyExpiresAt = found.ExpiresAt
	cfg.AdminAPIKeyCreatedAt = found.CreatedAt
	return nil, nil
}

// noAdminAPIAt: the admin key list itself answered 404, so base_url does
// not lead to OpenAI's Admin API (a /v2 or a missing /v1, a proxy path).
func noAdminAPIAt(baseURL string, err error) *logical.Response {
	return logical.ErrorResponse("base_url: %s answered 404 to the admin key list (%s): no OpenAI Admin API there; OpenAI's is %s", baseURL, err, defaultBaseURL)
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

// redactedMatches reports whether key fits OpenAI's redacted form of a key,
// "<prefix>...<suffix>", without assuming the lengths of either part.
func redactedMatches(redacted, key string) bool {
	prefix, suffix, ok := strings.Cut(redacted, "...")
	if !ok || prefix == "" || suffix == "" {
		return false
	}
	return len(key) >= len(prefix)+len(suffix) && strings.HasPrefix(key, prefix) && strings.HasSuffix(key, suffix)
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

// validateBaseURL accepts https anywhere and http only on loopback, where a
// local proxy or test double cannot be sniffed on the wire.
func validateBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", errors.New("must be an absolute URL with a host, e.g. https://api.openai.com/v1")
	}
	if u.User != nil {
		return "", errors.New("must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("must not have a query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return "", errors.New("must use https unless the host is loopback")
		}
	default:
		return "", errors.New("scheme must be https")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// describeRotationFields replaces the generic help of the automated rotation
// fields (written for database usernames) with what they do here.
func describeRotationFields(fields map[string]*framework.FieldSchema) {
	desc := map[string]string{
		"rotation_period": "Rotate the admin key this often (seconds or a duration such as 720h; at least 1m, 0 turns it off). " +
			"Mutually exclusive with rotation_schedule. A key with an expiry is also rotated when a fifth of its lifetime is left.",
		"rotation_schedule": "Cron schedule on which to rotate the admin key, e.g. \"0 3 * * SAT\". Mutually exclusive with rotation_period.",
		"rotation_window":   "With rotation_schedule: how long after the scheduled time a rotation may still start (Vault Enterprise).",
		"disable_automated_rotation": "Turn scheduled rotation of the admin key off. A key with an expiry is still rotated " +
			"when a fifth of its lifetime is left, so it never expires in use.",
		"rotation_policy": "Vault Enterprise rotation manager policy for retrying failed scheduled rotations.",
	}
	for name, d := range desc {
		if f, ok := fields[name]; ok {
			f.Description = d
		}
	}
}
