package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/helper/automatedrotationutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// The mount's stored connection to OpenAI and its accessors. The path that
// writes it is path_config.go; fields owned by one feature are parsed in
// that feature's config_*.go file.

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

	// Root credential lifecycle (rotate_root.go, rotation_schedule.go).
	AdminAPIKeyTTL         time.Duration                                 `json:"admin_api_key_ttl,omitempty"`
	AdminAPIKeyExpiresAt   int64                                         `json:"admin_api_key_expires_at,omitempty"`
	KeySetAt               time.Time                                     `json:"key_set_at"`
	LastRotated            time.Time                                     `json:"last_rotated"`
	PendingKeyDeletions    []string                                      `json:"pending_key_deletions,omitempty"`
	Rotation               automatedrotationutil.AutomatedRotationParams `json:"rotation"`
	RotationManagedByVault bool                                          `json:"rotation_managed_by_vault,omitempty"`
	// AdminAPIKeyCreatedAt is the current key's creation at OpenAI (0: unknown),
	// so the lifetime of a key with an expiry is known (rotation_schedule.go).
	AdminAPIKeyCreatedAt int64 `json:"admin_api_key_created_at,omitempty"`
	// AdminAPIKeyCreatedByEngine: the current key came from a rotation, so
	// nothing outside this mount can be using it (supplied_key.go).
	AdminAPIKeyCreatedByEngine bool `json:"admin_api_key_created_by_engine,omitempty"`
	// KeepSuppliedKeyOnRotate is delete_supplied_key_on_rotate=false, stored
	// inverted so configs from before it existed keep deleting.
	KeepSuppliedKeyOnRotate bool `json:"keep_supplied_key_on_rotate,omitempty"`

	// RetryBudget bounds one call's retries; 0 means defaultRetryBudget (config_retry.go).
	RetryBudget time.Duration `json:"retry_budget,omitempty"`

	// TidyInterval is nil for configs written before it existed (config_tidy.go).
	TidyInterval *time.Duration `json:"tidy_interval,omitempty"`
	// LedgerRetention is nil until written (config_ledger.go).
	LedgerRetention *time.Duration `json:"ledger_retention,omitempty"`

	// MaxLiveKeys caps the mount's live keys; 0 is unlimited (config_live_keys.go).
	MaxLiveKeys int `json:"max_live_keys,omitempty"`

	// ExpiryGrace is expiry_grace; 0 means defaultExpiryGrace (config_expiry.go).
	ExpiryGrace time.Duration `json:"expiry_grace,omitempty"`
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

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
