package backend

import (
	"context"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
)

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

// redactedMatches reports whether key fits OpenAI's redacted form of a key,
// "<prefix>...<suffix>", without assuming the lengths of either part.
func redactedMatches(redacted, key string) bool {
	prefix, suffix, ok := strings.Cut(redacted, "...")
	if !ok || prefix == "" || suffix == "" {
		return false
	}
	return len(key) >= len(prefix)+len(suffix) && strings.HasPrefix(key, prefix) && strings.HasSuffix(key, suffix)
}
