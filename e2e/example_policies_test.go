//go:build e2e

package e2e

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

// examples/policies as written, on a real Vault: a token with only one of the
// policies (and Vault's default) has exactly the capabilities the policy's
// README says on every path of the mount (sys/capabilities-self), every call
// it is granted succeeds, and every other call is a 403.
func TestExamplePolicies(t *testing.T) {
	t.Parallel()
	v, f, root, env := exampleEngine(t)
	runScript(t, v, exampleBlock(t, "examples/policies/README.md", "policies"), root, env, time.Minute)
	writeRole(t, v, "openai", "other", nil)

	tokenFor := func(policy string) *api.Client {
		t.Helper()
		tok, err := v.Client.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		v.AddSecret(tok.Auth.ClientToken)
		c, err := v.Client.Clone()
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(tok.Auth.ClientToken)
		return c
	}
	app, operator, auditor := tokenFor("openai-app"), tokenFor("openai-operator"), tokenFor("openai-auditor")

	deny := []string{"deny"}
	paths := []string{
		"openai/creds/app", "openai/creds/other", "openai/config", "openai/config/rotate-root",
		"openai/roles/app", "openai/roles/", "openai/tidy", "openai/keys/", "openai/keys/k",
		"sys/leases/revoke-prefix/openai/creds/app", "sys/leases/lookup/openai/creds/app/",
		"sys/leases/revoke-prefix/openai/", "sys/policies/acl/x", "sys/mounts/openai",
	}
	want := map[string]map[string][]string{
		"openai-app": {
			"openai/creds/app": {"read", "update"},
		},
		"openai-operator": {
			"openai/config":             {"create", "delete", "read", "update"},
			"openai/config/rotate-root": {"update"},
			"openai/roles/app":          {"create", "delete", "list", "read", "update"},
			"openai/roles/":             {"create", "delete", "list", "read", "update"},
			"openai/tidy":               {"update"},
			"sys/leases/revoke-prefix/openai/creds/app": {"sudo", "update"},
			"sys/leases/lookup/openai/creds/app/":       {"list", "sudo"},
		},
		"openai-auditor": {
			"openai/config":    {"read"},
			"openai/roles/app": {"list", "read"},
			"openai/roles/":    {"list", "read"},
			"openai/keys/":     {"list", "read"},
			"openai/keys/k":    {"list", "read"},
		},
	}
	for policy, c := range map[string]*api.Client{"openai-app": app, "openai-operator": operator, "openai-auditor": auditor} {
		for _, p := range paths {
			g, err := c.Sys().CapabilitiesSelf(p)
			if err != nil {
				t.Fatalf("%s: capabilities-self on %s: %v", policy, p, err)
			}
			w := want[policy][p]
			if w == nil {
				w = deny
			}
			g = slices.Clone(g)
			slices.Sort(g)
			if !slices.Equal(g, w) {
				t.Errorf("%s on %s: capabilities %v, want %v", policy, p, g, w)
			}
		}
	}

	is403 := func(err error) bool {
		var re *api.ResponseError
		return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
	}
	type call struct {
		what string
		do   func() error
	}
	check := func(policy string, allowed, denied []call) {
		t.Helper()
		for _, c := range allowed {
			if err := c.do(); err != nil {
				t.Errorf("%s: %s: %v, want it allowed", policy, c.what, err)
			}
		}
		for _, c := range denied {
			if err := c.do(); !is403(err) {
				t.Errorf("%s: %s: %v, want 403", policy, c.what, err)
			}
		}
	}
	read := func(c *api.Client, path string) func() error {
		return func() error {
			s, err := c.Logical().Read(path)
			if k, ok := dataString(s, "api_key"); ok {
				v.AddSecret(k)
			}
			return err
		}
	}
	write := func(c *api.Client, path string, data map[string]any) func() error {
		return func() error {
			s, err := c.Logical().Write(path, data)
			if k, ok := dataString(s, "api_key"); ok {
				v.AddSecret(k)
			}
			return err
		}
	}
	list := func(c *api.Client, path string) func() error {
		return func() error { _, err := c.Logical().List(path); return err }
	}
	del := func(c *api.Client, path string) func() error {
		return func() error { _, err := c.Logical().Delete(path); return err }
	}
	// notForbidden: the policy lets the call through; the engine may still
	// answer 4xx (a lookup that matches nothing).
	notForbidden := func(do func() error) func() error {
		return func() error {
			if err := do(); is403(err) {
				return err
			}
			return nil
		}
	}
	configData := map[string]any{"admin_api_key": f.AdminKey(), "base_url": f.URL}

	// The app: issue (read and update), renew through the default policy.
	var lease, keyID string
	check("openai-app", []call{
		{"read openai/creds/app", func() error {
			s, err := app.Logical().Read("openai/creds/app")
			if err == nil {
				lease = s.LeaseID
				keyID, _ = dataString(s, "api_key_id")
				v.AddSecret(s.Data["api_key"].(string))
			}
			return err
		}},
		{"write openai/creds/app ttl=5s", write(app, "openai/creds/app", map[string]any{"ttl": "5s"})},
		{"renew its lease", func() error { _, err := app.Sys().Renew(lease, 10); return err }},
	}, []call{
		{"read openai/creds/other", read(app, "openai/creds/other")},
		{"read openai/config", read(app, "openai/config")},
		{"write openai/config", write(app, "openai/config", configData)},
		{"read openai/roles/app", read(app, "openai/roles/app")},
		{"list openai/roles", list(app, "openai/roles")},
		{"write openai/roles/app", write(app, "openai/roles/app", map[string]any{"ttl": "1h"})},
		{"write openai/tidy", write(app, "openai/tidy", nil)},
		{"write openai/config/rotate-root", write(app, "openai/config/rotate-root", nil)},
		{"list openai/keys", list(app, "openai/keys")},
		{"read openai/keys/<its key id>", read(app, "openai/keys/"+keyID)},
		{"revoke-prefix openai/creds/app", func() error { return app.Sys().RevokePrefix("openai/creds/app") }},
	})

	// The auditor: reads the set-up, writes nothing, issues nothing.
	check("openai-auditor", []call{
		{"read openai/config", func() error {
			s, err := auditor.Logical().Read("openai/config")
			if err == nil {
				if k, ok := s.Data["admin_api_key"]; ok && k != nil && k != "" {
					t.Errorf("openai/config returned the admin key to the auditor")
				}
			}
			return err
		}},
		{"read openai/roles/app", read(auditor, "openai/roles/app")},
		{"list openai/roles", list(auditor, "openai/roles")},
		{"list openai/keys", list(auditor, "openai/keys")},
		{"read openai/keys/<the app's key id>", read(auditor, "openai/keys/"+keyID)},
		{"read openai/keys/lookup redacted_value=... (no match may be a 404)", notForbidden(func() error {
			_, err := auditor.Logical().ReadWithData("openai/keys/lookup", map[string][]string{"redacted_value": {"sk-svcacct-...abcd"}})
			return err
		})},
	}, []call{
		{"read openai/creds/app", read(auditor, "openai/creds/app")},
		{"write openai/creds/app", write(auditor, "openai/creds/app", nil)},
		{"write openai/config", write(auditor, "openai/config", configData)},
		{"delete openai/config", del(auditor, "openai/config")},
		{"write openai/roles/app", write(auditor, "openai/roles/app", map[string]any{"ttl": "1h"})},
		{"delete openai/roles/app", del(auditor, "openai/roles/app")},
		{"write openai/tidy", write(auditor, "openai/tidy", nil)},
		{"write openai/config/rotate-root", write(auditor, "openai/config/rotate-root", nil)},
		{"revoke-prefix openai/creds/app", func() error { return auditor.Sys().RevokePrefix("openai/creds/app") }},
		{"write openai/keys/lookup (a full key value)", write(auditor, "openai/keys/lookup", map[string]any{"api_key": "sk-svcacct-x"})},
	})
	// The ledger entry the auditor reads is the app's key's, without the key.
	if s, err := auditor.Logical().Read("openai/keys/" + keyID); err != nil || s == nil || s.Data["api_key_id"] != keyID {
		t.Errorf("the auditor's read of openai/keys/%s: %v %v", keyID, s, err)
	} else if _, has := s.Data["api_key"]; has {
		t.Errorf("the ledger entry holds api_key")
	}

	// The operator: runs the mount and ends keys, never reads one.
	check("openai-operator", []call{
		{"read openai/config", read(operator, "openai/config")},
		{"write openai/config", write(operator, "openai/config", configData)},
		{"write openai/roles/ops", write(operator, "openai/roles/ops", map[string]any{"project_id": fakeopenai.ProjectActive, "ttl": "1m"})},
		{"read openai/roles/ops", read(operator, "openai/roles/ops")},
		{"list openai/roles", list(operator, "openai/roles")},
		{"delete openai/roles/ops", del(operator, "openai/roles/ops")},
		{"write openai/tidy", write(operator, "openai/tidy", nil)},
		{"write openai/config/rotate-root", write(operator, "openai/config/rotate-root", nil)},
		{"list leases under openai/creds/app", list(operator, "sys/leases/lookup/openai/creds/app/")},
		{"revoke-prefix openai/creds/app", func() error { return operator.Sys().RevokePrefix("openai/creds/app") }},
	}, []call{
		{"read openai/creds/app", read(operator, "openai/creds/app")},
		{"write openai/creds/app", write(operator, "openai/creds/app", map[string]any{"ttl": "1m"})},
		{"read openai/creds/other", read(operator, "openai/creds/other")},
		{"read openai/keys/<a key id>", read(operator, "openai/keys/"+keyID)},
		{"revoke-prefix openai/", func() error { return operator.Sys().RevokePrefix("openai/") }},
		{"write a policy", func() error { return operator.Sys().PutPolicy("x", `path "*" { capabilities = ["sudo"] }`) }},
		{"disable the mount", func() error { return operator.Sys().Unmount("openai") }},
		{"write an AppRole role", write(operator, "auth/approle/role/x", map[string]any{"token_policies": "root"})},
	})

	// The operator's prefix revocation ended the app's two keys; nothing else
	// issued any.
	waitFor(t, time.Minute, "no live account after the operator's revoke-prefix", func() bool { return len(f.LiveAccounts()) == 0 })
	waitFor(t, 30*time.Second, "Vault to drop the revoked leases", func() bool {
		return len(leasesUnder(t, v, "openai/creds/")) == 0
	})
	if strings.Contains(v.Log(), f.AdminKey()) {
		t.Errorf("the Vault log contains the admin key")
	}
}
