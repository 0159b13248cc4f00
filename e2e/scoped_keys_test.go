//go:build e2e

package e2e

// Scoped keys used as an application uses them: each issued key calls the
// fake's GET /v1/models (needs api.model.read) and POST /v1/responses (needs
// api.responses.write), and the fake answers as OpenAI does for a key with
// those scopes. The verdict is the fake's answer and its record of the key.

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/e2e/harness"
	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// harnessAnswer is the fake's answer to one inference call.
type harnessAnswer = harness.APIAnswer

const (
	scopeModelRead      = "api.model.read"
	scopeResponsesWrite = "api.responses.write"
)

// issueSecret writes mount/creds/role with data and returns Vault's whole
// answer (the harness's Creds drops the response's scopes); the key is
// registered as a secret of v.
func issueSecret(t *testing.T, v *Vault, mount, role string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := v.Client.Logical().Write(mount+"/creds/"+role, data)
	if err != nil {
		t.Fatalf("issuing from %s/creds/%s with %v: %v", mount, role, data, err)
	}
	if s == nil {
		t.Fatalf("issuing from %s/creds/%s: empty response", mount, role)
	}
	key, _ := dataString(s, "api_key")
	v.AddSecret(key)
	if key == "" {
		t.Fatalf("issuing from %s/creds/%s: no api_key in the response", mount, role)
	}
	return s
}

// responseScopes is the creds response's scopes field.
func responseScopes(s *api.Secret) []string {
	raw, _ := s.Data["scopes"].([]any)
	out := []string{}
	for _, x := range raw {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// fakeKeyScopes is the scopes the fake holds for a key id (fails if the key is not live).
func fakeKeyScopes(t *testing.T, f *Fake, keyID string) []string {
	t.Helper()
	k, ok := f.Key(keyID)
	if !ok {
		t.Fatalf("key %s is not at the fake", keyID)
	}
	return k.Scopes
}

// wantAnswer fails unless the call's status is want and, when want is a
// refusal, its body names the missing scope or reason.
func wantAnswer(t *testing.T, what string, got harnessAnswer, want int, bodyHas string) {
	t.Helper()
	if got.Status != want {
		t.Errorf("%s: HTTP %d, want %d (body %s)", what, got.Status, want, got.Body)
		return
	}
	if bodyHas != "" && !strings.Contains(got.Body, bodyHas) {
		t.Errorf("%s: HTTP %d as wanted, but the body lacks %q: %s", what, got.Status, bodyHas, got.Body)
	}
}

// A role with scopes api.model.read issues a key that lists models and is
// refused a response (401, "Missing scopes: api.responses.write"); a role
// without scopes issues a key that can do both; a request narrowing a
// two-scope role to api.model.read gets a key holding exactly that scope at
// the fake, which is refused a response although its role would allow it.
func TestScopedKeysAtTheFakeAPI(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{"ttl": "10m"}) // role r: no scopes
	writeRole(t, v, "openai", "read", map[string]any{"ttl": "10m", "scopes": scopeModelRead})
	writeRole(t, v, "openai", "both", map[string]any{"ttl": "10m", "scopes": scopeModelRead + "," + scopeResponsesWrite})

	t.Run("scoped", func(t *testing.T) {
		s := issueSecret(t, v, "openai", "read", map[string]any{})
		key, _ := dataString(s, "api_key")
		keyID, _ := dataString(s, "api_key_id")
		if got := fakeKeyScopes(t, f, keyID); !slices.Equal(got, []string{scopeModelRead}) {
			t.Errorf("the fake's key has scopes %v, want [%s]", got, scopeModelRead)
		}
		if got := responseScopes(s); !slices.Equal(got, []string{scopeModelRead}) {
			t.Errorf("the creds response says scopes %v, want [%s]", got, scopeModelRead)
		}
		wantAnswer(t, "scoped key, GET /v1/models", f.ListModels(t, key), http.StatusOK, "gpt-4o-mini")
		wantAnswer(t, "scoped key, POST /v1/responses", f.CreateResponse(t, key), http.StatusUnauthorized, "Missing scopes: "+scopeResponsesWrite)
	})

	t.Run("unscoped", func(t *testing.T) {
		c := issue(t, v, "openai", "r", nil)
		if got := fakeKeyScopes(t, f, c.APIKeyID); len(got) != 0 {
			t.Errorf("the unscoped role's key has scopes %v at the fake, want none (all permissions)", got)
		}
		wantAnswer(t, "unscoped key, GET /v1/models", f.ListModels(t, c.APIKey), http.StatusOK, "gpt-4o-mini")
		wantAnswer(t, "unscoped key, POST /v1/responses", f.CreateResponse(t, c.APIKey), http.StatusOK, `"object":"response"`)
	})

	t.Run("narrowed", func(t *testing.T) {
		// The role's own key may do both: the narrowing, not the role, refuses.
		full := issueSecret(t, v, "openai", "both", map[string]any{})
		fullKey, _ := dataString(full, "api_key")
		wantAnswer(t, "two-scope key, POST /v1/responses", f.CreateResponse(t, fullKey), http.StatusOK, `"object":"response"`)

		s := issueSecret(t, v, "openai", "both", map[string]any{"scopes": scopeModelRead})
		key, _ := dataString(s, "api_key")
		keyID, _ := dataString(s, "api_key_id")
		if got := fakeKeyScopes(t, f, keyID); !slices.Equal(got, []string{scopeModelRead}) {
			t.Errorf("the narrowed key has scopes %v at the fake, want exactly [%s]", got, scopeModelRead)
		}
		if got := responseScopes(s); !slices.Equal(got, []string{scopeModelRead}) {
			t.Errorf("the creds response says scopes %v, want [%s]", got, scopeModelRead)
		}
		wantAnswer(t, "narrowed key, GET /v1/models", f.ListModels(t, key), http.StatusOK, "gpt-4o-mini")
		wantAnswer(t, "narrowed key, POST /v1/responses", f.CreateResponse(t, key), http.StatusUnauthorized, "Missing scopes: "+scopeResponsesWrite)

		// Narrowing to a scope outside the role is a 400 naming it, and creates nothing.
		before := len(f.LiveAccounts())
		_, err := v.Client.Logical().Write("openai/creds/both", map[string]any{"scopes": scopeModelRead + ",api.files.write"})
		if code, msg := responseError(err); code != http.StatusBadRequest || !strings.Contains(msg, "api.files.write") {
			t.Errorf("narrowing outside the role: HTTP %d %q, want 400 naming api.files.write", code, msg)
		}
		if after := len(f.LiveAccounts()); after != before {
			t.Errorf("a refused narrowing left %d new account(s) at the fake", after-before)
		}
	})
}

// Issuing with scopes is exactly two upstream calls (a bare account, then
// its scoped key) and without scopes exactly one (the account with its key),
// counted by the fake. Revoking the scoped key's lease deletes its account,
// after which the fake refuses the key (401 invalid_api_key).
func TestScopedIssueCallCountsAndRevokedKeyRefused(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, map[string]any{"ttl": "10m"})
	writeRole(t, v, "openai", "read", map[string]any{"ttl": "10m", "scopes": scopeModelRead})

	total := func(m map[fakeopenai.Op]int) int {
		n := 0
		for _, c := range m {
			n += c
		}
		return n
	}

	// The role write's probe key is made and deleted before this point.
	f.ResetCalls()
	scoped := issue(t, v, "openai", "read", nil)
	calls := f.Calls()
	if total(calls) != 2 || calls[fakeopenai.OpCreateServiceAccount] != 1 || calls[fakeopenai.OpCreateServiceAccountKey] != 1 {
		t.Errorf("a scoped issue made calls %v, want exactly one %s and one %s",
			calls, fakeopenai.OpCreateServiceAccount, fakeopenai.OpCreateServiceAccountKey)
	}
	t.Logf("scoped issue: %v", calls)

	f.ResetCalls()
	plain := issue(t, v, "openai", "r", nil)
	calls = f.Calls()
	if total(calls) != 1 || calls[fakeopenai.OpCreateServiceAccount] != 1 {
		t.Errorf("an unscoped issue made calls %v, want exactly one %s", calls, fakeopenai.OpCreateServiceAccount)
	}
	t.Logf("unscoped issue: %v", calls)

	// One account each, each with exactly the one key the engine handed out.
	for _, c := range []*Creds{scoped, plain} {
		if ids := f.AccountKeyIDs(c.ProjectID, c.ServiceAccountID); !slices.Equal(ids, []string{c.APIKeyID}) {
			t.Errorf("account %s holds keys %v, want only the issued %s", c.ServiceAccountID, ids, c.APIKeyID)
		}
	}

	wantAnswer(t, "scoped key before revoke, GET /v1/models", f.ListModels(t, scoped.APIKey), http.StatusOK, "")
	if err := v.Client.Sys().Revoke(scoped.LeaseID); err != nil {
		t.Fatalf("revoking the scoped lease: %v", err)
	}
	if f.Has(scoped.ServiceAccountID) {
		t.Errorf("the revoked lease's account %s is still at the fake", scoped.ServiceAccountID)
	}
	if _, ok := f.Key(scoped.APIKeyID); ok {
		t.Errorf("the revoked lease's key %s is still at the fake", scoped.APIKeyID)
	}
	wantAnswer(t, "scoped key after revoke, GET /v1/models", f.ListModels(t, scoped.APIKey), http.StatusUnauthorized, "invalid_api_key")
	// The other key is untouched.
	wantAnswer(t, "unscoped key after the other's revoke, GET /v1/models", f.ListModels(t, plain.APIKey), http.StatusOK, "")
}
