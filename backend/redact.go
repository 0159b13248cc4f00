package backend

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
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

// sensitiveFields are request fields whose values must never come back in
// an error, even when sent with the wrong type (Vault's field validation
// quotes the value it could not convert).
var sensitiveFields = []string{"admin_api_key"}

// HandleRequest redacts key-shaped strings, and whatever the request sent in
// a sensitive field, from error responses and errors.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	// An issue's gRPC round trips overlap (path_creds_prefetch.go).
	ctx = b.prefetchIssueMaxTTL(ctx, req)
	resp, err := b.Backend.HandleRequest(ctx, req)
	if (err == nil && (resp == nil || !resp.IsError())) || req == nil {
		return resp, err
	}
	var values []string
	for _, f := range sensitiveFields {
		collectStrings(req.Data[f], &values)
	}
	scrub := func(s string) string {
		for _, v := range values {
			if len(v) >= 8 {
				s = strings.ReplaceAll(s, v, "[redacted]")
			}
		}
		return redactKeys(s)
	}
	if resp != nil && resp.IsError() {
		if msg, ok := resp.Data["error"].(string); ok {
			resp.Data["error"] = scrub(msg)
		}
	}
	if err != nil {
		if s := scrub(err.Error()); s != err.Error() {
			err = scrubbedError{msg: s, cause: err}
		}
	}
	return resp, err
}

// scrubbedError keeps the cause for errors.Is/As (Vault maps some causes to
// status codes) while showing only the redacted message.
type scrubbedError struct {
	msg   string
	cause error
}

func (e scrubbedError) Error() string { return e.msg }
func (e scrubbedError) Unwrap() error { return e.cause }

func collectStrings(v interface{}, out *[]string) {
	switch v := v.(type) {
	case string:
		*out = append(*out, v, strings.TrimSpace(v))
	case []interface{}:
		for _, x := range v {
			collectStrings(x, out)
		}
	case map[string]interface{}:
		for _, x := range v {
			collectStrings(x, out)
		}
	}
}
