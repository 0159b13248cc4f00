package backend

import (
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The config field of keys whose expiry follows their lease (key_expiry.go),
// added to the config path by pathConfig.

const (
	defaultExpiryGrace = 5 * time.Minute
	// minExpiryGrace leaves room for clock skew between Vault and OpenAI
	// and for a renewal made at the last moment: a key must not die at
	// OpenAI while its lease is still valid.
	minExpiryGrace = time.Minute
	// maxExpiryGrace: past a day the point (a key dies soon after its
	// lease) is lost; max_ttl is the right knob for longer keys.
	maxExpiryGrace = 24 * time.Hour
)

func addExpiryConfigFields(fields map[string]*framework.FieldSchema) {
	fields["expiry_grace"] = &framework.FieldSchema{
		Type: framework.TypeDurationSecond,
		Description: "For roles with expiry_follows_lease: how long past its lease's current end a key stays valid at OpenAI " +
			"(clock skew, late renewals). Each renewal moves the key's expiry to the renewed lease's end plus this; " +
			"never past the lease's max_ttl. 1m to 24h; default 5m. Applies to issues and renewals from the write on.",
		DisplayAttrs: &framework.DisplayAttributes{Name: "Expiry grace"},
	}
}

// expiryGrace is expiry_grace; 0 (configs written before it existed) is the default.
func (c *openaiConfig) expiryGrace() time.Duration {
	if c.ExpiryGrace <= 0 {
		return defaultExpiryGrace
	}
	return c.ExpiryGrace
}

// parseExpiryConfig applies expiry_grace from a config write.
func parseExpiryConfig(cfg *openaiConfig, d *framework.FieldData) *logical.Response {
	v, ok := d.GetOk("expiry_grace")
	if !ok {
		return nil
	}
	g := time.Duration(v.(int)) * time.Second
	if g < minExpiryGrace || g > maxExpiryGrace {
		return logical.ErrorResponse("expiry_grace must be between %s and %s (got %s)", minExpiryGrace, maxExpiryGrace, g)
	}
	cfg.ExpiryGrace = g
	return nil
}

func addExpiryConfigData(cfg *openaiConfig, data map[string]interface{}) {
	data["expiry_grace"] = int64(cfg.expiryGrace().Seconds())
}
