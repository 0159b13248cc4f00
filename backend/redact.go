package backend

import (
	"fmt"
	"regexp"
)

// Values that hold a key print without it, however they are formatted
// (%v, %+v, %#v, %s, or as a panic value, which the runtime prints through
// String): a stray log line or a panic must not carry a secret.

func (c openaiConfig) String() string {
	return fmt.Sprintf("openaiConfig{admin_api_key_id=%s base_url=%s organization_id=%s admin_api_key=%s}",
		c.AdminAPIKeyID, c.BaseURL, c.OrganizationID, redactedIfSet(c.AdminAPIKey))
}

func (c openaiConfig) GoString() string { return c.String() }

func (s clientSettings) String() string {
	return fmt.Sprintf("clientSettings{base_url=%s organization_id=%s max_retries=%d admin_api_key=%s}",
		s.BaseURL, s.OrganizationID, s.MaxRetries, redactedIfSet(s.AdminAPIKey))
}

func (s clientSettings) GoString() string { return s.String() }

func (k serviceAccountKey) String() string {
	return fmt.Sprintf("serviceAccountKey{id=%s name=%s key_id=%s key=%s}", k.ID, k.Name, k.KeyID, redactedIfSet(k.KeyValue))
}

func (k serviceAccountKey) GoString() string { return k.String() }

func redactedIfSet(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// keyLike matches OpenAI key values (sk-..., sk-admin-..., sk-svcacct-...)
// and bearer tokens. An upstream error message is shown to users and logged;
// OpenAI masks keys in its own messages, but a proxy or a misbehaving server
// in base_url's place may echo the Authorization header back.
var keyLike = regexp.MustCompile(`(?i)\bsk-[a-z0-9_\-]{6,}|\bbearer\s+\S+`)

func redactKeys(s string) string {
	return keyLike.ReplaceAllString(s, "[redacted]")
}
