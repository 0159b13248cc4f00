//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// scopesReadOnlyPolicy lets an application holding it ask the two-scope
// role "app" only for a key narrowed to api.model.read. update, not read:
// a read (or an update without scopes) would get all the role's scopes,
// which required_parameters refuses; allowed_parameters then admits scopes
// with exactly this value and no other parameter (ttl included).
const scopesReadOnlyPolicy = `path "openai/creds/app" {
  capabilities        = ["update"]
  required_parameters = ["scopes"]
  allowed_parameters  = {
    "scopes" = ["api.model.read"]
  }
}
`

// A Vault policy with allowed_parameters on creds/<role>, on the real
// Vault, with a token carrying only that policy: asking for the read-only
// subset (as a string, as a JSON list, or by the CLI) issues a key
// holding exactly api.model.read at the fake; asking for
// more, for something else, for nothing (the role's full scopes), by read,
// or with another parameter is a 403 from Vault, and creates nothing.
func TestScopesPolicyAllowedParameters(t *testing.T) {
	t.Parallel()
	v, f := setupEngine(t, nil)
	writeRole(t, v, "openai", "app", map[string]any{"ttl": "10m", "scopes": scopeModelRead + "," + scopeResponsesWrite})

	if err := v.Client.Sys().PutPolicy("openai-app-read-only", scopesReadOnlyPolicy); err != nil {
		t.Fatalf("writing the policy: %v", err)
	}
	tok, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{
		Policies: []string{"openai-app-read-only"}, NoDefaultPolicy: true, TTL: "1h",
	})
	if err != nil {
		t.Fatal(err)
	}
	v.AddSecret(tok.Auth.ClientToken)
	app, err := v.Client.Clone()
	if err != nil {
		t.Fatal(err)
	}
	app.SetToken(tok.Auth.ClientToken)

	// Allowed: the CLI's `vault write openai/creds/app scopes=api.model.read`
	// sends the value as this string.
	s, err := app.Logical().Write("openai/creds/app", map[string]any{"scopes": scopeModelRead})
	if err != nil {
		t.Fatalf("the policy refused the read-only subset it allows: %v", err)
	}
	key, _ := dataString(s, "api_key")
	v.AddSecret(key)
	keyID, _ := dataString(s, "api_key_id")
	if got := fakeKeyScopes(t, f, keyID); !slices.Equal(got, []string{scopeModelRead}) {
		t.Errorf("the allowed request's key has scopes %v at the fake, want exactly [%s]", got, scopeModelRead)
	}
	wantAnswer(t, "policy-narrowed key, GET /v1/models", f.ListModels(t, key), http.StatusOK, "")
	wantAnswer(t, "policy-narrowed key, POST /v1/responses", f.CreateResponse(t, key), http.StatusUnauthorized, "Missing scopes: "+scopeResponsesWrite)

	// Vault checks a list value element by element: the same subset sent as
	// a JSON list (the API's other form) is allowed too, and gets the same key.
	s, err = app.Logical().Write("openai/creds/app", map[string]any{"scopes": []string{scopeModelRead}})
	if err != nil {
		t.Fatalf("the policy refused the read-only subset as a JSON list: %v", err)
	}
	key, _ = dataString(s, "api_key")
	v.AddSecret(key)
	keyID, _ = dataString(s, "api_key_id")
	if got := fakeKeyScopes(t, f, keyID); !slices.Equal(got, []string{scopeModelRead}) {
		t.Errorf("the JSON-list request's key has scopes %v at the fake, want exactly [%s]", got, scopeModelRead)
	}

	// The README's command, run by the CLI with the app's token.
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(suite.vaultBin, args...)
		cmd.Env = append(cleanEnv(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+tok.Auth.ClientToken)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("running vault: %v", err)
		}
		return o.String(), e.String(), cmd.ProcessState.ExitCode()
	}
	out, errOut, code := cli("write", "-format=json", "openai/creds/app", "scopes="+scopeModelRead)
	var cliSecret api.Secret
	if code != 0 || json.Unmarshal([]byte(out), &cliSecret) != nil {
		t.Fatalf("vault write openai/creds/app scopes=%s with the app's token: exit %d: %s", scopeModelRead, code, v.redact(errOut))
	}
	cliKey, _ := dataString(&cliSecret, "api_key")
	v.AddSecret(cliKey)
	cliKeyID, _ := dataString(&cliSecret, "api_key_id")
	if got := fakeKeyScopes(t, f, cliKeyID); !slices.Equal(got, []string{scopeModelRead}) {
		t.Errorf("the CLI request's key has scopes %v at the fake, want exactly [%s]", got, scopeModelRead)
	}
	_, errOut, code = cli("write", "openai/creds/app", "scopes="+scopeModelRead+","+scopeResponsesWrite)
	if code != 2 || !strings.Contains(errOut, "permission denied") {
		t.Errorf("vault write openai/creds/app scopes=<both> with the app's token: exit %d, %q; want 2 and permission denied", code, v.redact(errOut))
	}

	refused := []struct {
		what string
		do   func() error
	}{
		{"both scopes", func() error {
			_, err := app.Logical().Write("openai/creds/app", map[string]any{"scopes": scopeModelRead + "," + scopeResponsesWrite})
			return err
		}},
		{"the other scope", func() error {
			_, err := app.Logical().Write("openai/creds/app", map[string]any{"scopes": scopeResponsesWrite})
			return err
		}},
		{"both scopes as a JSON list", func() error {
			_, err := app.Logical().Write("openai/creds/app", map[string]any{"scopes": []string{scopeModelRead, scopeResponsesWrite}})
			return err
		}},
		{"no scopes (the role's full set)", func() error {
			_, err := app.Logical().Write("openai/creds/app", map[string]any{})
			return err
		}},
		{"a read (the role's full set)", func() error {
			_, err := app.Logical().Read("openai/creds/app")
			return err
		}},
		{"the subset plus a ttl", func() error {
			_, err := app.Logical().Write("openai/creds/app", map[string]any{"scopes": scopeModelRead, "ttl": "5m"})
			return err
		}},
	}
	for _, r := range refused {
		code, msg := responseError(r.do())
		if code != http.StatusForbidden || !strings.Contains(msg, "permission denied") {
			t.Errorf("%s: HTTP %d %q, want Vault's 403 permission denied", r.what, code, msg)
		}
	}

	// The same requests that were refused are the policy's doing: the root
	// token gets the role's full set.
	full := issueSecret(t, v, "openai", "app", map[string]any{})
	fullID, _ := dataString(full, "api_key_id")
	if got := fakeKeyScopes(t, f, fullID); !slices.Equal(got, []string{scopeModelRead, scopeResponsesWrite}) {
		t.Errorf("the root token's key has scopes %v, want the role's two", got)
	}
	// Three keys for the app, one for root: refused requests created nothing.
	if n := len(f.LiveAccounts()); n != 4 {
		t.Errorf("%d live accounts at the fake, want 4 (refused requests must create none)", n)
	}
}
